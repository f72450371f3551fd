//! The element-wise functions of `math.rs` (exp, tanh, both GELUs) written once over a small
//! lane trait, so the same formula runs on one `f32` (portable path, tails), on eight at a
//! time in an AVX2 register, sixteen in an AVX-512 one and four in a NEON one (`neon.rs`).
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

/// An element-wise formula of this module, as a type: [`map`] calls `F::apply` directly, so
/// the formula is inlined into the caller and compiled with its target features. Through a
/// closure or a function item, the call went through an `Fn::call` shim compiled without
/// them, in which every intrinsic became a function call.
pub(crate) trait Elementwise {
    fn apply<L: Lanes>(x: L) -> L;
}

/// [`exp`].
#[cfg(test)]
pub(crate) struct Exp;
/// [`tanh`].
pub(crate) struct Tanh;
/// [`gelu_tanh`].
pub(crate) struct GeluTanh;
/// [`gelu_erf`].
pub(crate) struct GeluErf;

#[cfg(test)]
impl Elementwise for Exp {
    #[inline(always)]
    fn apply<L: Lanes>(x: L) -> L {
        exp(x)
    }
}

impl Elementwise for Tanh {
    #[inline(always)]
    fn apply<L: Lanes>(x: L) -> L {
        tanh(x)
    }
}

impl Elementwise for GeluTanh {
    #[inline(always)]
    fn apply<L: Lanes>(x: L) -> L {
        gelu_tanh(x)
    }
}

impl Elementwise for GeluErf {
    #[inline(always)]
    fn apply<L: Lanes>(x: L) -> L {
        gelu_erf(x)
    }
}

/// Lanes that walk a row of floats in memory: whole vectors, and a partial last one, so
/// [`map`] and [`softmax_row`] are written once for every vector width.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) trait Row: Lanes {
    /// Floats per vector.
    const N: usize;
    /// # Safety
    /// `p .. p + N` is readable.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p .. p + N` is writable.
    unsafe fn store(self, p: *mut f32);
    /// The `len < N` floats at `p`; the other lanes hold `fill`.
    ///
    /// # Safety
    /// `p .. p + len` is readable.
    unsafe fn load_part(p: *const f32, len: usize, fill: f32) -> Self;
    /// Stores the first `len < N` lanes.
    ///
    /// # Safety
    /// `p .. p + len` is writable.
    unsafe fn store_part(self, p: *mut f32, len: usize);
    /// Per lane `max(self, acc)`: `acc` where `self` is NaN.
    fn max(self, acc: Self) -> Self;
    fn reduce_max(self) -> f32;
    fn reduce_sum(self) -> f32;
}

/// Applies `F` to every element of `x`: four vectors at a time (four independent dependency
/// chains, see `Multi`), then one, then the partial tail (its lanes past the row hold zeros,
/// are computed and dropped).
///
/// # Safety
/// The CPU has the instructions `L` is built from.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn map<L: Row, F: Elementwise>(x: &mut [f32]) {
    let (n, w) = (x.len(), L::N);
    let p = x.as_mut_ptr();
    let mut i = 0;
    // SAFETY (every load and store): `i + w * (k + 1) <= n` where a whole vector is read or
    // written, and the partial tail covers `i..n` only; the contract covers the CPU.
    unsafe {
        while i + 4 * w <= n {
            let mut v = [L::splat(0.0); 4];
            for (k, x) in v.iter_mut().enumerate() {
                *x = L::load(p.add(i + w * k));
            }
            for (k, r) in F::apply(Multi(v)).0.into_iter().enumerate() {
                r.store(p.add(i + w * k));
            }
            i += 4 * w;
        }
        while i + w <= n {
            F::apply(L::load(p.add(i))).store(p.add(i));
            i += w;
        }
        if i < n {
            F::apply(L::load_part(p.add(i), n - i, 0.0)).store_part(p.add(i), n - i);
        }
    }
}

/// Softmax of one row in place, four vectors per step: the max, e^(x - max) with its sum,
/// then the scaling. The scalar body's arithmetic in a different summation order; NaN
/// inputs are skipped by the max as there.
///
/// # Safety
/// The CPU has the instructions `L` is built from.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) unsafe fn softmax_row<L: Row>(x: &mut [f32]) {
    let (n, w) = (x.len(), L::N);
    let p = x.as_mut_ptr();
    let (body, rest) = (n / w * w, n % w);
    // SAFETY (every load and store): `i + w * (k + 1) <= n` where a whole vector is read or
    // written, and the partial tail covers `body..n` only; the contract covers the CPU.
    unsafe {
        let ninf = f32::NEG_INFINITY;
        let mut m4 = [L::splat(ninf); 4];
        let mut i = 0;
        while i + 4 * w <= n {
            for (k, m) in m4.iter_mut().enumerate() {
                *m = L::load(p.add(i + w * k)).max(*m);
            }
            i += 4 * w;
        }
        while i < body {
            m4[0] = L::load(p.add(i)).max(m4[0]);
            i += w;
        }
        if rest > 0 {
            m4[1] = L::load_part(p.add(body), rest, ninf).max(m4[1]);
        }
        let max = m4[0].max(m4[1]).max(m4[2].max(m4[3])).reduce_max();
        let mv = L::splat(max);
        let mut s4 = [L::splat(0.0); 4];
        i = 0;
        while i + 4 * w <= n {
            let mut v = [mv; 4];
            for (k, x) in v.iter_mut().enumerate() {
                *x = L::load(p.add(i + w * k)).sub(mv);
            }
            for (k, (e, s)) in exp(Multi(v)).0.into_iter().zip(&mut s4).enumerate() {
                e.store(p.add(i + w * k));
                *s = s.add(e);
            }
            i += 4 * w;
        }
        while i < body {
            let e = exp(L::load(p.add(i)).sub(mv));
            e.store(p.add(i));
            s4[0] = s4[0].add(e);
            i += w;
        }
        if rest > 0 {
            // Lanes past the row read -inf: e^(-inf - max) = 0 adds nothing to the sum.
            let e = exp(L::load_part(p.add(body), rest, ninf).sub(mv));
            e.store_part(p.add(body), rest);
            s4[1] = s4[1].add(e);
        }
        let sum = s4[0].add(s4[1]).add(s4[2].add(s4[3])).reduce_sum();
        let iv = L::splat(1.0 / sum);
        i = 0;
        while i < body {
            L::load(p.add(i)).mul(iv).store(p.add(i));
            i += w;
        }
        if rest > 0 {
            L::load_part(p.add(body), rest, 0.0)
                .mul(iv)
                .store_part(p.add(body), rest);
        }
    }
}

#[cfg(all(target_arch = "x86_64", bert_avx512))]
#[clippy::msrv = "1.89"]
pub(crate) mod avx512;

#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use super::{Lanes, Row};
    use std::arch::x86_64::*;

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

    // SAFETY (every method): as for `Lanes` above; the pointer methods' callers keep the
    // accesses in bounds (`Row`'s contract). Partial vectors go through a stack copy: AVX2's
    // masked moves are slow on some cores, and only a row's last few values take this way.
    impl Row for V8 {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            V8(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn load_part(p: *const f32, len: usize, fill: f32) -> Self {
            let mut buf = [fill; 8];
            unsafe {
                std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), len);
                V8(_mm256_loadu_ps(buf.as_ptr()))
            }
        }
        #[inline(always)]
        unsafe fn store_part(self, p: *mut f32, len: usize) {
            let mut buf = [0.0f32; 8];
            unsafe {
                _mm256_storeu_ps(buf.as_mut_ptr(), self.0);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), p, len);
            }
        }
        #[inline(always)]
        fn max(self, acc: Self) -> Self {
            V8(unsafe { _mm256_max_ps(self.0, acc.0) })
        }
        #[inline(always)]
        fn reduce_max(self) -> f32 {
            unsafe {
                let v = self.0;
                let t = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let t = _mm_max_ps(t, _mm_movehl_ps(t, t));
                _mm_cvtss_f32(_mm_max_ss(t, _mm_movehdup_ps(t)))
            }
        }
        #[inline(always)]
        fn reduce_sum(self) -> f32 {
            unsafe {
                let v = self.0;
                let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let t = _mm_add_ps(t, _mm_movehl_ps(t, t));
                _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
            }
        }
    }
}
