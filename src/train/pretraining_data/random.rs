//! CPython 3's `random.Random`, the generator `create_pretraining_data.py` draws every choice
//! from: the Mersenne Twister of `_randommodule.c` (seeded with `init_by_array` from the
//! integer seed's 32-bit words) and the methods of `random.py` (3.2 to 3.12) that the script
//! calls: `random()`, `randint()` (`randrange` -> `_randbelow_with_getrandbits`) and
//! `shuffle()`. Python 2 seeds and draws differently, so Google's own output differs between
//! Python 2 and 3; this is Python 3's.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// `random.Random(seed)` of CPython 3.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for an integer seed. Like CPython, the sign is dropped
    /// (`Random(-7)` is `Random(7)`) and the absolute value's 32-bit words, least significant
    /// first, are the key (`0` is the one-word key `[0]`).
    pub fn new(seed: i64) -> PyRandom {
        let n = seed.unsigned_abs();
        let low = n as u32;
        let high = (n >> 32) as u32;
        if high == 0 {
            PyRandom::from_key(&[low])
        } else {
            PyRandom::from_key(&[low, high])
        }
    }

    /// `init_by_array(key)` of the reference MT19937 (as `_randommodule.c` keeps it).
    fn from_key(key: &[u32]) -> PyRandom {
        let mut r = PyRandom {
            mt: [0; N],
            index: N,
        };
        r.init_genrand(19_650_218);
        let mt = &mut r.mt;
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000; // MSB is 1, assuring a non-zero initial array
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    /// Regenerates the 624 words of state.
    fn twist(&mut self) {
        let mt = &mut self.mt;
        for k in 0..N {
            let y = (mt[k] & UPPER_MASK) | (mt[(k + 1) % N] & LOWER_MASK);
            let mag = if y & 1 != 0 { MATRIX_A } else { 0 };
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// `genrand_uint32()`: the next tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random()`: a float in [0, 1) with 53 random bits (`genrand_res53`).
    pub fn random(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for `k <= 64`: 32-bit words, least significant first, the last one
    /// cut to the bits still wanted (so `getrandbits(k <= 32)` is one word `>> (32 - k)`).
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        debug_assert!(k <= 64);
        if k == 0 {
            return 0;
        }
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let low = u64::from(self.next_u32());
        let high = u64::from(self.next_u32() >> (64 - k));
        (high << 32) | low
    }

    /// `_randbelow_with_getrandbits(n)`: uniform in `[0, n)` by rejection over
    /// `n.bit_length()` bits (not `(n - 1)`'s: `n == 1` still draws). `n` must be positive.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let k = u64::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `randint(a, b)`: uniform in `[a, b]`, `a <= b`.
    pub fn randint(&mut self, a: u64, b: u64) -> u64 {
        debug_assert!(a <= b);
        a + self.randbelow(b - a + 1)
    }

    /// `shuffle(x)`: Fisher-Yates from the end, `j = _randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected value below was printed by CPython 3.11.7 (`random.Random(seed)`, the
    // same calls in the same order).

    /// getrandbits(32) x4, random() x3, randint(0, 30521) x6, randint(0, 0) x3,
    /// randint(2, 125) x4, shuffle(list(range(12))).
    type Draws = (Vec<u64>, Vec<f64>, Vec<u64>, Vec<u64>, Vec<u64>, Vec<u32>);

    fn draws(seed: i64) -> Draws {
        let mut r = PyRandom::new(seed);
        let bits: Vec<u64> = (0..4).map(|_| r.getrandbits(32)).collect();
        let floats: Vec<f64> = (0..3).map(|_| r.random()).collect();
        let vocab: Vec<u64> = (0..6).map(|_| r.randint(0, 30521)).collect();
        let zeros: Vec<u64> = (0..3).map(|_| r.randint(0, 0)).collect();
        let lens: Vec<u64> = (0..4).map(|_| r.randint(2, 125)).collect();
        let mut x: Vec<u32> = (0..12).collect();
        r.shuffle(&mut x);
        (bits, floats, vocab, zeros, lens, x)
    }

    #[test]
    fn seed_12345_matches_cpython() {
        let (bits, floats, vocab, zeros, lens, x) = draws(12345);
        assert_eq!(bits, [1789368711, 3146859322, 43676229, 3522623596]);
        assert_eq!(
            floats,
            [0.8252065092537432, 0.2986398551995928, 0.3684116894884757]
        );
        assert_eq!(vocab, [6345, 8855, 18546, 14294, 5298, 12224]);
        assert_eq!(zeros, [0, 0, 0]);
        assert_eq!(lens, [73, 82, 24, 80]);
        assert_eq!(x, [3, 10, 0, 9, 11, 7, 4, 6, 1, 5, 2, 8]);
    }

    #[test]
    fn other_seeds_match_cpython() {
        let (bits, floats, vocab, _, lens, x) = draws(0);
        assert_eq!(bits, [3626764237, 1654615998, 3255389356, 3823568514]);
        assert_eq!(
            floats,
            [0.420571580830845, 0.25891675029296335, 0.5112747213686085]
        );
        assert_eq!(vocab, [13268, 30088, 25683, 27192, 9938, 15617]);
        assert_eq!(lens, [38, 19, 98, 14]);
        assert_eq!(x, [3, 7, 1, 11, 6, 5, 0, 10, 2, 8, 4, 9]);

        // The sign is dropped.
        assert_eq!(draws(-7), draws(7));
        let (bits, _, vocab, _, _, x) = draws(7);
        assert_eq!(bits, [1390851128, 4071050724, 647892279, 1695753998]);
        assert_eq!(vocab, [11982, 19096, 1900, 29809, 16627, 7035]);
        assert_eq!(x, [7, 11, 2, 9, 4, 10, 5, 3, 1, 0, 6, 8]);

        // Two-word keys: 2**32, 2**40 + 5, 2**63.
        assert_eq!(
            draws(1 << 32).0,
            [485306839, 1508871100, 1794561286, 4014597330]
        );
        let (bits, floats, _, _, _, x) = draws((1 << 40) + 5);
        assert_eq!(bits, [2166296868, 2220160828, 1153647273, 2850991874]);
        assert_eq!(
            floats,
            [0.9257865475671585, 0.530959239292452, 0.8179643216302002]
        );
        assert_eq!(x, [2, 8, 4, 9, 5, 0, 7, 11, 1, 6, 10, 3]);
        assert_eq!(
            draws(i64::MIN).0,
            [2377109768, 1691753470, 4039908392, 899083848]
        );
    }

    #[test]
    fn wide_getrandbits_match_cpython() {
        let mut r = PyRandom::new(12345);
        draws_into(&mut r);
        assert_eq!(r.getrandbits(40), 919938922197);
        assert_eq!(r.getrandbits(64), 5940567713233535239);
        assert_eq!(r.getrandbits(1), 0);
        assert_eq!(r.getrandbits(32), 1970696522);
    }

    fn draws_into(r: &mut PyRandom) {
        for _ in 0..4 {
            r.getrandbits(32);
        }
        for _ in 0..3 {
            r.random();
        }
        for _ in 0..6 {
            r.randint(0, 30521);
        }
        for _ in 0..3 {
            r.randint(0, 0);
        }
        for _ in 0..4 {
            r.randint(2, 125);
        }
        r.shuffle(&mut [0u8; 12]);
    }
}
