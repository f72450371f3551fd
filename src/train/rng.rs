//! A small seeded RNG for dropout masks and head initialisation (PCG-XSH-RR 64/32).
//!
//! Not TensorFlow's generator: masks are reproducible for a given seed within libbert, not
//! bit-identical to TF's (no reference depends on TF's dropout draws).

/// PCG-XSH-RR with 64-bit state and 32-bit output (O'Neill 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const MUL: u64 = 6_364_136_223_846_793_005;
const INC: u64 = 1_442_695_040_888_963_407;

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng { state: 0 };
        r.next_u32();
        r.state = r.state.wrapping_add(seed);
        r.next_u32();
        r
    }

    /// The whole state, to checkpoint a training run ([`Rng::from_state`] resumes the stream).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// A generator continuing the stream whose [`Rng::state`] was `state`.
    pub fn from_state(state: u64) -> Rng {
        Rng { state }
    }

    /// Next 32 uniformly distributed bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MUL).wrapping_add(INC);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = ((self.next_u32() as f64) + 1.0) / 4_294_967_297.0; // (0, 1]
        let u2 = self.next_u32() as f64 / 4_294_967_296.0;
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `tf.truncated_normal(stddev)`: normal values redrawn while beyond two standard deviations.
    pub fn truncated_normal(&mut self, stddev: f32) -> f32 {
        loop {
            let x = self.normal();
            if x.abs() <= 2.0 {
                return (x * stddev as f64) as f32;
            }
        }
    }

    /// A dropout mask of `n` factors as `tf.nn.dropout` applies them: `1 / (1 − rate)` for a
    /// kept unit (probability `1 − rate`), `0` for a dropped one.
    pub fn dropout_mask(&mut self, n: usize, rate: f32) -> Vec<f32> {
        let keep = 1.0 - rate;
        let scale = 1.0 / keep;
        (0..n)
            .map(|_| if self.uniform() < keep { scale } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_dropout_rate_is_respected() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert!((0..100).all(|_| a.next_u32() == b.next_u32()));
        assert_ne!(Rng::new(1).next_u32(), Rng::new(2).next_u32());
        let m = Rng::new(3).dropout_mask(100_000, 0.1);
        let dropped = m.iter().filter(|&&x| x == 0.0).count() as f64 / 1e5;
        assert!((dropped - 0.1).abs() < 0.005, "{dropped}");
        assert!(m.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.9).abs() < 1e-6));
        let mut r = Rng::new(4);
        let xs: Vec<f32> = (0..10_000).map(|_| r.truncated_normal(0.02)).collect();
        assert!(xs.iter().all(|x| x.abs() <= 0.04));
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / 1e4;
        assert!(mean.abs() < 1e-3, "{mean}");
    }
}
