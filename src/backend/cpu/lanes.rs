//! The element-wise functions of `math.rs` (exp, tanh, both GELUs) written once over a small
//! lane trait, so the same formula runs on one `f32` (portable path, tails) and on eight at a
//! time in an AVX2 register.
//!
//! Why not leave it to the auto-vectorizer: the GEMM epilogue applies activations to 24-float
//! tile rows, and LLVM vectorizes a plain loop with an unroll factor that needs >= 32 (or 64)
//! elements before the vector body runs — every GELU of a forward pass then ran scalar, 5–24%
//! of a MiniLM forward. Explicit lanes make the vector body run for every 8 floats.

/// What the element-wise formulas need from a lane type.
pub(crate) trait Lanes: Copy {
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `1 / self` to within about 2 ulp (AVX2: `rcpps` and one Newton step, a third of a
    /// division's cost; scalar: the division).
    fn recip(self) -> Self;
    /// `self * b + c`, fused where the path has FMA.
    fn fmadd(self, b: Self, c: Self) -> Self;
    fn abs(self) -> Self;
    /// `self` clamped to `[lo, hi]`; NaN stays NaN.
    fn clamp(self, lo: f32, hi: f32) -> Self;
    /// Per lane: `if a < b { t } else { f }` (false for NaN).
    fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self;
    /// Per lane: magnitude of `self`, sign of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// `2^(t - MAGIC)` for `t = n + MAGIC` holding an integer `n` in [-126, 127] in its low
    /// mantissa bits: the exponent is built directly in the float's bits.
    fn pow2_from_magic(t: Self, magic: f32) -> Self;
}

/// One `f32`; `FMA` picks fused multiply-adds (only where the hardware has them).
#[derive(Clone, Copy)]
pub(crate) struct Scalar<const FMA: bool>(pub f32);

impl<const FMA: bool> Lanes for Scalar<FMA> {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Scalar(v)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Scalar(self.0 + o.0)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Scalar(self.0 - o.0)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Scalar(self.0 * o.0)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Scalar(self.0 / o.0)
    }
    #[inline(always)]
    fn recip(self) -> Self {
        Scalar(1.0 / self.0)
    }
    #[inline(always)]
    fn fmadd(self, b: Self, c: Self) -> Self {
        if FMA {
            Scalar(self.0.mul_add(b.0, c.0))
        } else {
            Scalar(self.0 * b.0 + c.0)
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Scalar(self.0.abs())
    }
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        Scalar(self.0.clamp(lo, hi))
    }
    #[inline(always)]
    fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self {
        if a.0 < b.0 {
            t
        } else {
            f
        }
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        Scalar(self.0.copysign(sign.0))
    }
    #[inline(always)]
    fn pow2_from_magic(t: Self, magic: f32) -> Self {
        Scalar(f32::from_bits(
            t.0.to_bits()
                .wrapping_sub(magic.to_bits())
                .wrapping_add(127)
                << 23,
        ))
    }
}

/// `N` vectors of lanes `L`, every operation applied to each: one formula then yields `N`
/// independent dependency chains for the scheduler to interleave (GELU is one ~35-deep chain
/// per vector, and the out-of-order window alone overlapped too few of them: latency-bound at
/// ~40 cycles per vector).
#[derive(Clone, Copy)]
pub(crate) struct Multi<L, const N: usize>(pub [L; N]);

// Plain indexed loops, not `std::array::from_fn`: a closure that captures (the clamp bounds)
// made LLVM outline `from_fn` into a call without the caller's target features, the vectors
// going through memory around a `vzeroupper` (GELU 2-3x slower).
impl<L: Lanes, const N: usize> Multi<L, N> {
    #[inline(always)]
    fn map1(self, f: impl Fn(L) -> L) -> Self {
        let mut r = self.0;
        for v in r.iter_mut() {
            *v = f(*v);
        }
        Multi(r)
    }
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(L, L) -> L) -> Self {
        let mut r = self.0;
        for (v, &w) in r.iter_mut().zip(&o.0) {
            *v = f(*v, w);
        }
        Multi(r)
    }
}

impl<L: Lanes, const N: usize> Lanes for Multi<L, N> {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Multi([L::splat(v); N])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.map2(o, L::add)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.map2(o, L::sub)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.map2(o, L::mul)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self.map2(o, L::div)
    }
    #[inline(always)]
    fn recip(self) -> Self {
        self.map1(L::recip)
    }
    #[inline(always)]
    fn fmadd(self, b: Self, c: Self) -> Self {
        let mut r = self.0;
        for (k, v) in r.iter_mut().enumerate() {
            *v = v.fmadd(b.0[k], c.0[k]);
        }
        Multi(r)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map1(L::abs)
    }
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        self.map1(|v| v.clamp(lo, hi))
    }
    #[inline(always)]
    fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self {
        let mut r = f.0;
        for (k, v) in r.iter_mut().enumerate() {
            *v = L::select_lt(a.0[k], b.0[k], t.0[k], *v);
        }
        Multi(r)
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        self.map2(sign, L::copysign)
    }
    #[inline(always)]
    fn pow2_from_magic(t: Self, magic: f32) -> Self {
        t.map1(|v| L::pow2_from_magic(v, magic))
    }
}

/// e^x for x ≤ 88 (Cephes `expf`: x = n ln2 + r, |r| ≤ ln2/2, degree-6 polynomial in r,
/// then scaled by 2^n built in the exponent bits). Below -87.3: 0; above 88.8: infinity.
#[inline(always)]
pub(crate) fn exp<L: Lanes>(x: L) -> L {
    let s = L::splat;
    let scaled = exp_core(x.clamp(-87.3, 88.0));
    let big = L::select_lt(s(88.8), x, s(f32::INFINITY), scaled);
    L::select_lt(x, s(-87.3), s(0.0), big)
}

/// e^x for x in [-87.3, 88] (no clamping or limits: see [`exp`]).
#[inline(always)]
fn exp_core<L: Lanes>(xc: L) -> L {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer that then sits in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let s = L::splat;
    let t = xc.fmadd(s(LOG2E), s(MAGIC));
    let n = t.sub(s(MAGIC));
    let r = n.fmadd(s(-LN2_HI), xc);
    let r = n.fmadd(s(-LN2_LO), r);
    let mut p = s(1.987_569_1e-4);
    p = p.fmadd(r, s(1.398_199_9e-3));
    p = p.fmadd(r, s(8.333_452e-3));
    p = p.fmadd(r, s(4.166_579_6e-2));
    p = p.fmadd(r, s(1.666_666_5e-1));
    p = p.fmadd(r, s(0.5));
    let y = p.fmadd(r.mul(r), r).add(s(1.0));
    // n in [-126, 127]: a normal power of two.
    y.mul(L::pow2_from_magic(t, MAGIC))
}

/// tanh: a Taylor series to x^15 near 0 (where (1 - e)/(1 + e) loses relative precision;
/// exact to 1e-10 relative there), `(1 - e^-2|x|) / (1 + e^-2|x|)` elsewhere.
#[inline(always)]
pub(crate) fn tanh<L: Lanes>(x: L) -> L {
    let s = L::splat;
    let ax = x.abs();
    let x2 = ax.mul(ax);
    let mut p = s(-929_569.0 / 638_512_875.0);
    p = p.fmadd(x2, s(21_844.0 / 6_081_075.0));
    p = p.fmadd(x2, s(-1_382.0 / 155_925.0));
    p = p.fmadd(x2, s(62.0 / 2_835.0));
    p = p.fmadd(x2, s(-17.0 / 315.0));
    p = p.fmadd(x2, s(2.0 / 15.0));
    p = p.fmadd(x2, s(-1.0 / 3.0));
    let small = p.mul(x2).fmadd(ax, ax);
    let e = exp(s(-2.0).mul(ax));
    let large = s(1.0).sub(e).div(s(1.0).add(e));
    // NaN stays NaN through `large`; copysign keeps the sign of -0.0.
    L::select_lt(ax, s(0.4), small, large).copysign(x)
}

/// Google's `gelu`: 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
#[inline(always)]
pub(crate) fn gelu_tanh<L: Lanes>(x: L) -> L {
    const TWO_C: f32 = 2.0 * 0.797_884_6;
    let s = L::splat;
    let inner = s(0.044_715).mul(x).mul(x).fmadd(x, x);
    x.div(s(1.0).add(exp(s(-TWO_C).mul(inner))))
}

/// The exact GELU: x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2, with erfc from Numerical
/// Recipes' `erfcc` (Chebyshev fit, relative error < 1.2e-7 for every z >= 0). Computing the
/// small tail (0.5 erfc(|z|)) and subtracting from 1 only for x > 0 keeps the negative side
/// accurate.
#[inline(always)]
pub(crate) fn gelu_erf<L: Lanes>(x: L) -> L {
    let s = L::splat;
    let z = x.abs().mul(s(std::f32::consts::FRAC_1_SQRT_2));
    let t = s(0.5).fmadd(z, s(1.0)).recip();
    let mut p = s(0.170_872_77);
    p = p.fmadd(t, s(-0.822_152_23));
    p = p.fmadd(t, s(1.488_515_9));
    p = p.fmadd(t, s(-1.135_204));
    p = p.fmadd(t, s(0.278_868_07));
    p = p.fmadd(t, s(-0.186_288_06));
    p = p.fmadd(t, s(0.096_784_18));
    p = p.fmadd(t, s(0.374_091_96));
    p = p.fmadd(t, s(1.000_023_7));
    p = p.fmadd(t, s(-1.265_512_2));
    // The exponent is at most ~1e-7 (p ≈ 0 at z = 0, and -z² dominates its growth); below
    // -87.3 the clamp leaves a negligible 2^-126 where e^x would be 0.
    let e = exp_core(z.mul(s(-1.0)).fmadd(z, p).clamp(-87.3, 0.0));
    let half_erfc = s(0.5).mul(t).mul(e);
    let phi = L::select_lt(s(0.0), x, s(1.0).sub(half_erfc), half_erfc);
    x.mul(phi)
}

#[cfg(all(target_arch = "x86_64", bert_avx512))]
#[clippy::msrv = "1.89"]
pub(crate) mod avx512;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::{Lanes, Multi};
    use std::arch::x86_64::*;

    /// Four `V8`s (32 floats) per step of the vector loops.
    pub(crate) type V8x4 = Multi<V8, 4>;

    /// Eight `f32` in a ymm register. Only built inside functions compiled with
    /// `#[target_feature(enable = "avx2,fma")]` on CPUs that have both (the `math.rs`
    /// dispatcher checks), which is what makes the intrinsic calls below sound.
    #[derive(Clone, Copy)]
    pub(crate) struct V8(pub __m256);

    // SAFETY (every method): AVX2 and FMA are available whenever a `V8` exists (see above);
    // the intrinsics only read and write registers.
    impl Lanes for V8 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            V8(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            V8(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            V8(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            V8(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn div(self, o: Self) -> Self {
            V8(unsafe { _mm256_div_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn recip(self) -> Self {
            // r1 = r0 (2 - x r0): squares rcpps's 1.5·2^-12 relative error.
            unsafe {
                let r0 = _mm256_rcp_ps(self.0);
                let e = _mm256_fnmadd_ps(self.0, r0, _mm256_set1_ps(2.0));
                V8(_mm256_mul_ps(r0, e))
            }
        }
        #[inline(always)]
        fn fmadd(self, b: Self, c: Self) -> Self {
            V8(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn abs(self) -> Self {
            V8(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
        }
        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            // max/min return their second operand when either is NaN: keep `self` second.
            unsafe {
                let v = _mm256_max_ps(_mm256_set1_ps(lo), self.0);
                V8(_mm256_min_ps(_mm256_set1_ps(hi), v))
            }
        }
        #[inline(always)]
        fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self {
            unsafe {
                let m = _mm256_cmp_ps::<_CMP_LT_OQ>(a.0, b.0);
                V8(_mm256_blendv_ps(f.0, t.0, m))
            }
        }
        #[inline(always)]
        fn copysign(self, sign: Self) -> Self {
            unsafe {
                let sign_bit = _mm256_set1_ps(-0.0);
                let mag = _mm256_andnot_ps(sign_bit, self.0);
                V8(_mm256_or_ps(mag, _mm256_and_ps(sign_bit, sign.0)))
            }
        }
        #[inline(always)]
        fn pow2_from_magic(t: Self, magic: f32) -> Self {
            unsafe {
                let bits = _mm256_castps_si256(t.0);
                let bits = _mm256_sub_epi32(bits, _mm256_set1_epi32(magic.to_bits() as i32));
                let bits = _mm256_add_epi32(bits, _mm256_set1_epi32(127));
                V8(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits)))
            }
        }
    }

    /// Applies `f` to every element of `x`, eight at a time, the tail one by one.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[inline(always)]
    pub(crate) unsafe fn map(
        x: &mut [f32],
        f4: impl Fn(V8x4) -> V8x4,
        f: impl Fn(V8) -> V8,
        tail: impl Fn(f32) -> f32,
    ) {
        // Four independent vectors per step (`V8x4`, see `Multi`).
        let mut quads = x.chunks_exact_mut(32);
        for q in &mut quads {
            // SAFETY: `q` holds 32 floats; unaligned loads/stores; AVX2 by the contract.
            unsafe {
                let p = q.as_mut_ptr();
                let mut v = [V8(_mm256_setzero_ps()); 4];
                for (k, x) in v.iter_mut().enumerate() {
                    *x = V8(_mm256_loadu_ps(p.add(8 * k)));
                }
                let v = f4(Multi(v));
                for (k, r) in v.0.iter().enumerate() {
                    _mm256_storeu_ps(p.add(8 * k), r.0);
                }
            }
        }
        let mut chunks = quads.into_remainder().chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: `c` holds 8 floats; unaligned loads/stores; AVX2 by the contract.
            unsafe {
                let v = f(V8(_mm256_loadu_ps(c.as_ptr())));
                _mm256_storeu_ps(c.as_mut_ptr(), v.0);
            }
        }
        for v in chunks.into_remainder() {
            *v = tail(*v);
        }
    }

    /// Horizontal sum / max of a ymm register.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let t = _mm_add_ps(t, _mm_movehl_ps(t, t));
        _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
    }

    #[inline(always)]
    unsafe fn hmax(v: __m256) -> f32 {
        let t = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let t = _mm_max_ps(t, _mm_movehl_ps(t, t));
        _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)))
    }

    /// Softmax of one row in place, 32 values per step (`V8x4`): the max, e^(x - max) with
    /// its sum, then the scaling. The scalar body's arithmetic, in a different summation
    /// order; NaN inputs are skipped by the max as there.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[inline(always)]
    pub(crate) unsafe fn softmax_row(x: &mut [f32]) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mut i = 0;
        // SAFETY (all loads and stores below): `i + 8 * k + 8 <= n` where they happen.
        unsafe {
            // max(v, acc) returns `acc` when `v` is NaN.
            let mut m4 = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
            while i + 32 <= n {
                for (k, m) in m4.iter_mut().enumerate() {
                    *m = _mm256_max_ps(_mm256_loadu_ps(p.add(i + 8 * k)), *m);
                }
                i += 32;
            }
            while i + 8 <= n {
                m4[0] = _mm256_max_ps(_mm256_loadu_ps(p.add(i)), m4[0]);
                i += 8;
            }
            let mut max = hmax(_mm256_max_ps(
                _mm256_max_ps(m4[0], m4[1]),
                _mm256_max_ps(m4[2], m4[3]),
            ));
            for &v in &x[i..] {
                max = if v > max { v } else { max };
            }
            let mv = _mm256_set1_ps(max);
            let mut s4 = [_mm256_setzero_ps(); 4];
            i = 0;
            while i + 32 <= n {
                let mut v = [V8(mv); 4];
                for (k, x) in v.iter_mut().enumerate() {
                    *x = V8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i + 8 * k)), mv));
                }
                let e = super::exp(Multi(v));
                for (k, s) in s4.iter_mut().enumerate() {
                    _mm256_storeu_ps(p.add(i + 8 * k), e.0[k].0);
                    *s = _mm256_add_ps(*s, e.0[k].0);
                }
                i += 32;
            }
            while i + 8 <= n {
                let e = super::exp(V8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), mv)));
                _mm256_storeu_ps(p.add(i), e.0);
                s4[0] = _mm256_add_ps(s4[0], e.0);
                i += 8;
            }
            let mut sum = hsum(_mm256_add_ps(
                _mm256_add_ps(s4[0], s4[1]),
                _mm256_add_ps(s4[2], s4[3]),
            ));
            for v in &mut x[i..] {
                *v = super::exp(super::Scalar::<true>(*v - max)).0;
                sum += *v;
            }
            let inv = 1.0 / sum;
            let iv = _mm256_set1_ps(inv);
            i = 0;
            while i + 8 <= n {
                _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), iv));
                i += 8;
            }
            for v in &mut x[i..] {
                *v *= inv;
            }
        }
    }
}
