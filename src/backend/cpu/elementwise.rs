//! Element-wise ops beside the GEMMs: dropout masks, activations and their derivatives.

use super::math::{self, Path};
use super::par::{avx2_or_baseline, SharedMut, CHUNK_ROWS};
use crate::backend::ops::fmix32;
use crate::backend::{Activation, Dropout, Pool};

impl Activation {
    /// Applies the activation to every element of `x`, in place (the row kernels of
    /// `math.rs`, vectorized for this CPU).
    pub fn apply(self, x: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::GeluTanh => math::gelu_tanh(Path::Auto, x),
            Activation::GeluErf => math::gelu_erf(Path::Auto, x),
            Activation::Tanh => math::tanh(Path::Auto, x),
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}

#[cfg(all(target_arch = "x86_64", bert_avx512))]
impl Activation {
    /// Whether [`Activation::apply_m512x4`] computes this activation (ReLU is left to
    /// [`Activation::apply`]: `f32::max` and `vmaxps` may differ on the sign of a zero).
    pub(crate) fn has_m512(self) -> bool {
        self != Activation::Relu
    }

    /// The activation on four zmm registers of sixteen lanes, for kernels that apply it while
    /// a tile is still in registers (the int8 epilogue) instead of in a second pass over
    /// memory. Four at a time, as [`Activation::apply`] does: one GELU is a ~35-deep
    /// dependency chain, and a single one per step was latency-bound. The same formulas on
    /// the same lanes as `apply` on an AVX-512 CPU, so the same bits.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the caller is compiled with it (this inlines into it); `self`
    /// [`has_m512`](Activation::has_m512) (ReLU returns `x` unchanged).
    #[inline(always)]
    pub(crate) unsafe fn apply_m512x4(
        self,
        x: [std::arch::x86_64::__m512; 4],
    ) -> [std::arch::x86_64::__m512; 4] {
        use super::lanes::{self, avx512::V16, Multi};
        // Plain loops, not `map` with a closure (see `Multi`: an outlined closure loses the
        // caller's target features).
        let mut v = [V16(x[0]); 4];
        for (v, &x) in v.iter_mut().zip(&x) {
            *v = V16(x);
        }
        let r = match self {
            Activation::GeluErf => lanes::gelu_erf(Multi(v)).0,
            Activation::GeluTanh => lanes::gelu_tanh(Multi(v)).0,
            Activation::Tanh => lanes::tanh(Multi(v)).0,
            Activation::Identity | Activation::Relu => v,
        };
        let mut y = x;
        for (y, r) in y.iter_mut().zip(&r) {
            *y = r.0;
        }
        y
    }
}

/// Elements per task of the flat element-wise passes.
const FLAT: usize = CHUNK_ROWS * 1024;

/// Calls `f(start, part)` on disjoint parts of `x[..n]`, spread over the pool.
pub(crate) fn for_parts(pool: &Pool, x: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let n = x.len();
    let xs = SharedMut::new(x);
    pool.run(n.div_ceil(FLAT), &|t| {
        let start = t * FLAT;
        let len = FLAT.min(n - start);
        // SAFETY: tasks cover disjoint ranges.
        f(start, unsafe { xs.part(start, len) })
    });
}

/// `out = act(x)` over the pool.
pub(crate) fn activate(pool: &Pool, x: &[f32], act: Activation, out: &mut [f32]) {
    for_parts(pool, out, &|start, o| {
        o.copy_from_slice(&x[start..start + o.len()]);
        act.apply(o);
    });
}

/// `x *= mask` over the pool (element `i` of `x` is mask element `i`).
pub(crate) fn dropout(pool: &Pool, x: &mut [f32], mask: Dropout) {
    for_parts(pool, x, &|start, part| {
        mask_mul(&mask, None, part, start as u64)
    });
}

avx2_or_baseline!(
    /// `dst[j] = (src or dst)[j] · factor(start + j)`.
    pub(crate) fn mask_mul(d: &Dropout, src: Option<&[f32]>, dst: &mut [f32], start: u64) => mask_mul_body
);

/// [`mask_mul`] in runs where the index's high word is fixed (always one run in practice),
/// so the loop body is 32-bit integer work that vectorizes. Computes exactly
/// [`Dropout::factor`] (tested).
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
        mask_mul(&d, None, x, start);
    }
}

/// `d *= act'(x)` over the pool (for `Tanh`, `x` is the output).
pub(crate) fn activation_backward(pool: &Pool, x: &[f32], act: Activation, d: &mut [f32]) {
    for_parts(pool, d, &|start, part| {
        act_grad_mul(act, part, &x[start..start + part.len()])
    });
}

avx2_or_baseline!(
    /// `d *= act'(x)` element-wise.
    pub(crate) fn act_grad_mul(act: Activation, d: &mut [f32], x: &[f32]) => act_grad_mul_body
);

#[inline(always)]
fn act_grad_mul_body(act: Activation, d: &mut [f32], x: &[f32]) {
    // Plain `for` loops: an iterator's `fold` would be a separate function, compiled
    // without the caller's AVX2.
    let n = d.len().min(x.len());
    let (d, x) = (&mut d[..n], &x[..n]);
    match act {
        Activation::Identity => {}
        Activation::GeluTanh => {
            for j in 0..n {
                d[j] *= gelu_tanh_grad(x[j]);
            }
        }
        Activation::GeluErf => {
            for j in 0..n {
                d[j] *= gelu_erf_grad(x[j]);
            }
        }
        Activation::Relu => {
            for j in 0..n {
                d[j] = if x[j] > 0.0 { d[j] } else { 0.0 };
            }
        }
        Activation::Tanh => {
            for j in 0..n {
                d[j] *= 1.0 - x[j] * x[j];
            }
        }
    }
}

/// e^x as the row kernels compute it (`lanes::exp`), plain multiply-adds so the derivative
/// loops vectorize.
#[inline(always)]
fn exp(x: f32) -> f32 {
    math::exp::<false>(x)
}

/// Derivative of Google's tanh GELU `x·σ(2u)`, `u = c(x + 0.044715x³)`:
/// `σ(2u) + 2x·σ(2u)(1 − σ(2u))·c(1 + 3·0.044715x²)`.
#[inline(always)]
pub(crate) fn gelu_tanh_grad(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    const A: f32 = 0.044_715;
    let x2 = x * x;
    let u = C * (x + A * x2 * x);
    // Saturated at e^88 (finite), so that far below zero σ underflows to a tiny value and
    // `e·σ` stays 1 instead of ∞·0.
    let e = exp((-2.0 * u).min(88.0));
    let s = 1.0 / (1.0 + e);
    // 1 − σ = e·σ, without the cancellation of 1 − σ near σ = 1.
    s + 2.0 * x * s * (e * s) * C * (1.0 + 3.0 * A * x2)
}

/// Derivative of the erf GELU `xΦ(x)`: `Φ(x) + xφ(x)`, with Φ from Numerical Recipes'
/// `erfcc` as in the forward kernel.
#[inline(always)]
pub(crate) fn gelu_erf_grad(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (0.5 * z + 1.0);
    let mut p = 0.170_872_77;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    let e = exp(-0.5 * x * x);
    // erfc(z) = t·exp(−z² + p); −z² = −x²/2.
    let half_erfc = 0.5 * t * e * exp(p);
    let phi_cdf = if x > 0.0 { 1.0 - half_erfc } else { half_erfc };
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    phi_cdf + x * INV_SQRT_2PI * e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Derivative of `act` at `x` in f64 (the reference; itself checked against finite
    /// differences below).
    fn activation_grad(act: Activation, x: f32) -> f64 {
        let x = x as f64;
        match act {
            Activation::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                let u = c * (x + 0.044715 * x * x * x);
                let t = u.tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)
            }
            Activation::GeluErf => {
                let cdf = 0.5 * (1.0 + super::super::erf(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                cdf + x * pdf
            }
            _ => unreachable!(),
        }
    }

    /// Central differences in f64 (step 1e-4, error O(1e-8)) check the f64 formulas.
    #[test]
    fn activation_derivatives_match_finite_differences() {
        let gelu_tanh = |x: f64| {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        };
        let gelu_erf = |x: f64| 0.5 * x * (1.0 + super::super::erf(x / std::f64::consts::SQRT_2));
        let e = 1e-4;
        for i in -60..=60 {
            let x = i as f64 / 10.0 + 0.013;
            for (act, f) in [
                (Activation::GeluTanh, &gelu_tanh as &dyn Fn(f64) -> f64),
                (Activation::GeluErf, &gelu_erf),
            ] {
                let fd = (f(x + e) - f(x - e)) / (2.0 * e);
                let an = activation_grad(act, x as f32);
                assert!((fd - an).abs() < 1e-6, "{act:?} at {x}: {an} vs {fd}");
            }
        }
    }

    /// The vectorizable f32 derivatives against the f64 formulas: f32 rounding of a handful
    /// of operations on values ≤ 1.2, so 1e-6 absolute.
    #[test]
    fn gelu_derivatives_match_the_f64_formulas() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0 + 0.0031;
            for (act, f) in [
                (Activation::GeluTanh, gelu_tanh_grad as fn(f32) -> f32),
                (Activation::GeluErf, gelu_erf_grad),
            ] {
                let (a, b) = (f(x) as f64, activation_grad(act, x));
                assert!((a - b).abs() <= 1e-6, "{act:?}'({x}): {a} vs {b}");
            }
        }
        assert!(gelu_tanh_grad(-200.0).abs() < 1e-20);
        assert_eq!(gelu_erf_grad(200.0), 1.0);
    }

    /// The vectorized mask is [`Dropout::factor`] element by element, across a change of the
    /// index's high word too; it keeps `1 − rate` of the units at `1/(1 − rate)`, differs
    /// between keys, and neighbouring elements are independent (pairs dropped at rate²).
    #[test]
    fn dropout_masks_have_the_rate_and_no_structure() {
        let (a, b) = (
            Dropout::new(0x1234_5678_9abc_def0, 0.1),
            Dropout::new(7, 0.1),
        );
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
        mask_mul(&a, None, &mut x, 5);
        assert!(x.iter().enumerate().all(|(j, &v)| v == ma[5 + j]));
        let start = (3u64 << 32) - 4;
        let mut x = vec![1.0f32; 2000];
        mask_mul(&a, None, &mut x, start);
        assert!(x
            .iter()
            .enumerate()
            .all(|(j, &v)| v == a.factor(start + j as u64)));
        let mut y = vec![0.0; 2000];
        mask_mul(&a, Some(&vec![2.0; 2000]), &mut y, start);
        assert!(y.iter().zip(&x).all(|(&u, &v)| u == 2.0 * v));
    }
}
