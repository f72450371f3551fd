//! Dropout masks that cost no memory: counter-based, so the backward pass (or a
//! recomputation under gradient checkpointing) regenerates them exactly.

use super::kernels::avx2_or_baseline;
use super::rng::Rng;

/// A dropout mask as `tf.nn.dropout` applies it (`1 / (1 − rate)` for a kept unit, 0 for a
/// dropped one), defined by a 64-bit key drawn from the trainer's [`Rng`]: element `i` is
/// kept when a hash of `(key, i)` read as a 24-bit uniform is below `1 − rate`. A mask costs
/// no memory and is the same whichever thread computes which element, and the backward pass
/// (or a recomputation under gradient checkpointing) regenerates it exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dropout {
    key: u64,
    /// `(1 − rate) · 2²⁴`, exact in f32.
    threshold: f32,
    scale: f32,
}

#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    // MurmurHash3's finalizer: a bijection with full avalanche.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The mask's definition, element by element (`Dropout::for_each` computes the same with
/// the high word hoisted; the tests compare them).
#[cfg(test)]
fn hash(key: u64, i: u64) -> u32 {
    let h = fmix32((i as u32).wrapping_mul(0x9e37_79b9) ^ key as u32);
    fmix32(h ^ (key >> 32) as u32 ^ ((i >> 32) as u32).wrapping_mul(0x85eb_ca6b))
}

impl Dropout {
    /// A fresh mask at `rate`, or `None` when dropout is off (no RNG) or the rate is 0.
    pub(crate) fn draw(rng: &mut Option<&mut Rng>, rate: f32) -> Option<Dropout> {
        let rng = rng.as_deref_mut()?;
        if rate <= 0.0 {
            return None;
        }
        let key = (rng.next_u32() as u64) << 32 | rng.next_u32() as u64;
        let keep = 1.0 - rate;
        Some(Dropout {
            key,
            threshold: keep * (1u32 << 24) as f32,
            scale: 1.0 / keep,
        })
    }

    /// The factor of element `i`.
    #[cfg(test)]
    pub(crate) fn factor(&self, i: u64) -> f32 {
        if ((hash(self.key, i) >> 8) as f32) < self.threshold {
            self.scale
        } else {
            0.0
        }
    }

    /// `x[j] *= factor(start + j)`.
    pub(crate) fn apply(&self, x: &mut [f32], start: u64) {
        mask_mul(self, None, x, start);
    }

    /// `dst = src ⊙ mask` (element `j` is `start + j`), replacing `dst`'s contents.
    pub(crate) fn apply_from(&self, src: &[f32], dst: &mut Vec<f32>, start: u64) {
        dst.clear();
        dst.resize(src.len(), 0.0);
        mask_mul(self, Some(src), dst, start);
    }
}

avx2_or_baseline!(
    /// `dst[j] = (src or dst)[j] · factor(start + j)`.
    fn mask_mul(d: &Dropout, src: Option<&[f32]>, dst: &mut [f32], start: u64) => mask_mul_body
);

/// [`mask_mul`] in runs where the index's high word is fixed (always one run in practice),
/// so the loop body is 32-bit integer work that vectorizes.
#[inline(always)]
fn mask_mul_body(d: &Dropout, src: Option<&[f32]>, dst: &mut [f32], start: u64) {
    let n = dst.len();
    let mut j = 0;
    while j < n {
        let i = start + j as u64;
        let run = ((1u64 << 32) - (i & 0xffff_ffff)).min((n - j) as u64) as usize;
        let hi = (d.key >> 32) as u32 ^ ((i >> 32) as u32).wrapping_mul(0x85eb_ca6b);
        let (lo, klo, thr, scale) = (i as u32, d.key as u32, d.threshold, d.scale);
        let factor = |t: u32| {
            let h = fmix32(lo.wrapping_add(t).wrapping_mul(0x9e37_79b9) ^ klo);
            if ((fmix32(h ^ hi) >> 8) as f32) < thr {
                scale
            } else {
                0.0
            }
        };
        let out = &mut dst[j..j + run];
        match src {
            Some(src) => {
                for ((o, &x), t) in out.iter_mut().zip(&src[j..j + run]).zip(0u32..) {
                    *o = x * factor(t);
                }
            }
            None => {
                for (o, t) in out.iter_mut().zip(0u32..) {
                    *o *= factor(t);
                }
            }
        }
        j += run;
    }
}

/// Multiplies by the mask when there is one.
#[inline]
pub(crate) fn maybe_drop(d: Option<Dropout>, x: &mut [f32], start: u64) {
    if let Some(d) = d {
        d.apply(x, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask keeps `1 − rate` of the units at `1/(1 − rate)`, is a function of (key,
    /// index) only, differs between keys, and neighbouring elements are independent (pairs
    /// both dropped at rate², not more).
    #[test]
    fn dropout_masks_have_the_rate_and_no_structure() {
        let mut rng = Rng::new(3);
        let mut r = Some(&mut rng);
        let (a, b) = (
            Dropout::draw(&mut r, 0.1).unwrap(),
            Dropout::draw(&mut r, 0.1).unwrap(),
        );
        assert!(Dropout::draw(&mut r, 0.0).is_none());
        assert!(Dropout::draw(&mut None, 0.1).is_none());
        let n = 200_000u64;
        let ma: Vec<f32> = (0..n).map(|i| a.factor(i)).collect();
        let dropped = ma.iter().filter(|&&x| x == 0.0).count() as f64 / n as f64;
        assert!((dropped - 0.1).abs() < 0.003, "{dropped}");
        assert!(ma.iter().all(|&x| x == 0.0 || (x - 1.0 / 0.9).abs() < 1e-6));
        let pairs = ma.windows(2).filter(|w| w[0] == 0.0 && w[1] == 0.0).count() as f64;
        assert!(
            (pairs / n as f64 - 0.01).abs() < 0.002,
            "{}",
            pairs / n as f64
        );
        let same = (0..n)
            .filter(|&i| (a.factor(i) == 0.0) == (b.factor(i) == 0.0))
            .count();
        assert!(same < n as usize * 85 / 100, "keys give different masks");
        let mut x = vec![1.0f32; 10];
        a.apply(&mut x, 5);
        assert!(x.iter().enumerate().all(|(j, &v)| v == ma[5 + j]));
        // Across a change of the index's high word.
        let start = (3u64 << 32) - 4;
        let mut x = vec![1.0f32; 2000];
        a.apply(&mut x, start);
        assert!(x
            .iter()
            .enumerate()
            .all(|(j, &v)| v == a.factor(start + j as u64)));
        let mut y = Vec::new();
        a.apply_from(&vec![2.0; 2000], &mut y, start);
        assert!(y.iter().zip(&x).all(|(&u, &v)| u == 2.0 * v));
    }
}
