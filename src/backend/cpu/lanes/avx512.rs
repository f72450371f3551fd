//! The element-wise formulas and the soft-max row on sixteen lanes (one zmm register).
//!
//! Same formulas as the AVX2 path (`lanes.rs`), twice the width, and no scalar tails: the last
//! `len % 16` values go through a masked load and store (masked-off lanes read as zero, are
//! computed and dropped).

use super::{Lanes, Multi};
use std::arch::x86_64::*;

/// Sixteen `f32` in a zmm register. Only built inside functions compiled with
/// `#[target_feature(enable = "avx512f")]` on CPUs that have it (the `math.rs` dispatcher
/// checks), which is what makes the intrinsic calls below sound.
#[derive(Clone, Copy)]
pub(crate) struct V16(pub __m512);

/// Four `V16`s (64 floats) per step of the vector loops (see `Multi`).
pub(crate) type V16x4 = Multi<V16, 4>;

// SAFETY (every method): AVX-512F is available whenever a `V16` exists (see above); the
// intrinsics only read and write registers. Bit operations use the integer forms: the float
// ones (`vandps` on zmm) need AVX-512DQ.
impl Lanes for V16 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        V16(unsafe { _mm512_set1_ps(v) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        V16(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        V16(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        V16(unsafe { _mm512_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        V16(unsafe { _mm512_div_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn recip(self) -> Self {
        // r1 = r0 (2 - x r0): rcp14's 2^-14 relative error, squared.
        unsafe {
            let r0 = _mm512_rcp14_ps(self.0);
            let e = _mm512_fnmadd_ps(self.0, r0, _mm512_set1_ps(2.0));
            V16(_mm512_mul_ps(r0, e))
        }
    }
    #[inline(always)]
    fn fmadd(self, b: Self, c: Self) -> Self {
        V16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        V16(unsafe { _mm512_abs_ps(self.0) })
    }
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        // max/min return their second operand when either is NaN: keep `self` second.
        unsafe {
            let v = _mm512_max_ps(_mm512_set1_ps(lo), self.0);
            V16(_mm512_min_ps(_mm512_set1_ps(hi), v))
        }
    }
    #[inline(always)]
    fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self {
        unsafe {
            let m = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a.0, b.0);
            V16(_mm512_mask_blend_ps(m, f.0, t.0))
        }
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        unsafe {
            let sign_bit = _mm512_set1_epi32(i32::MIN);
            let mag = _mm512_andnot_si512(sign_bit, _mm512_castps_si512(self.0));
            let s = _mm512_and_si512(sign_bit, _mm512_castps_si512(sign.0));
            V16(_mm512_castsi512_ps(_mm512_or_si512(mag, s)))
        }
    }
    #[inline(always)]
    fn pow2_from_magic(t: Self, magic: f32) -> Self {
        unsafe {
            let bits = _mm512_castps_si512(t.0);
            let bits = _mm512_sub_epi32(bits, _mm512_set1_epi32(magic.to_bits() as i32));
            let bits = _mm512_add_epi32(bits, _mm512_set1_epi32(127));
            V16(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(bits)))
        }
    }
}

/// The lanes of `n < 16` trailing values.
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Applies `f` to every element of `x`: 64 at a time, then 16, then a masked tail.
///
/// # Safety
/// The CPU supports AVX-512F.
#[inline(always)]
pub(crate) unsafe fn map(x: &mut [f32], f4: impl Fn(V16x4) -> V16x4, f: impl Fn(V16) -> V16) {
    let mut quads = x.chunks_exact_mut(64);
    for q in &mut quads {
        // SAFETY: `q` holds 64 floats; unaligned loads/stores; AVX-512F by the contract.
        unsafe {
            let p = q.as_mut_ptr();
            let mut v = [V16(_mm512_setzero_ps()); 4];
            for (k, x) in v.iter_mut().enumerate() {
                *x = V16(_mm512_loadu_ps(p.add(16 * k)));
            }
            let v = f4(Multi(v));
            for (k, r) in v.0.iter().enumerate() {
                _mm512_storeu_ps(p.add(16 * k), r.0);
            }
        }
    }
    let mut chunks = quads.into_remainder().chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 floats.
        unsafe {
            let v = f(V16(_mm512_loadu_ps(c.as_ptr())));
            _mm512_storeu_ps(c.as_mut_ptr(), v.0);
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let m = tail_mask(rest.len());
        // SAFETY: the mask covers the `rest.len() < 16` floats of `rest`; masked-off lanes
        // are neither read nor written.
        unsafe {
            let v = f(V16(_mm512_maskz_loadu_ps(m, rest.as_ptr())));
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), m, v.0);
        }
    }
}

/// Softmax of one row in place, 64 values per step: the max, e^(x - max) with its sum, then
/// the scaling. The AVX2 row's arithmetic, sixteen lanes wide; NaN inputs are skipped by the
/// max as there.
///
/// # Safety
/// The CPU supports AVX-512F.
#[inline(always)]
pub(crate) unsafe fn softmax_row(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let (body, rest) = (n / 16 * 16, n % 16);
    let m = tail_mask(rest);
    // SAFETY (all loads and stores below): `i + 16 * k + 16 <= n` where they happen, and the
    // masked tail covers `body..n` only.
    unsafe {
        // max(v, acc) returns `acc` when `v` is NaN; the masked tail reads -inf.
        let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut m4 = [ninf; 4];
        let mut i = 0;
        while i + 64 <= n {
            for (k, mx) in m4.iter_mut().enumerate() {
                *mx = _mm512_max_ps(_mm512_loadu_ps(p.add(i + 16 * k)), *mx);
            }
            i += 64;
        }
        while i < body {
            m4[0] = _mm512_max_ps(_mm512_loadu_ps(p.add(i)), m4[0]);
            i += 16;
        }
        if rest > 0 {
            m4[1] = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m, p.add(body)), m4[1]);
        }
        let max = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_max_ps(m4[0], m4[1]),
            _mm512_max_ps(m4[2], m4[3]),
        ));
        let mv = _mm512_set1_ps(max);
        let mut s4 = [_mm512_setzero_ps(); 4];
        i = 0;
        while i + 64 <= n {
            let mut v = [V16(mv); 4];
            for (k, x) in v.iter_mut().enumerate() {
                *x = V16(_mm512_sub_ps(_mm512_loadu_ps(p.add(i + 16 * k)), mv));
            }
            let e = super::exp(Multi(v));
            for (k, s) in s4.iter_mut().enumerate() {
                _mm512_storeu_ps(p.add(i + 16 * k), e.0[k].0);
                *s = _mm512_add_ps(*s, e.0[k].0);
            }
            i += 64;
        }
        while i < body {
            let e = super::exp(V16(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), mv)));
            _mm512_storeu_ps(p.add(i), e.0);
            s4[0] = _mm512_add_ps(s4[0], e.0);
            i += 16;
        }
        if rest > 0 {
            // Masked-off lanes: e^(-inf - max) = 0, so they add nothing to the sum.
            let v = _mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, p.add(body)), mv);
            let e = super::exp(V16(v));
            _mm512_mask_storeu_ps(p.add(body), m, e.0);
            s4[1] = _mm512_add_ps(s4[1], e.0);
        }
        let sum = _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(s4[0], s4[1]),
            _mm512_add_ps(s4[2], s4[3]),
        ));
        let iv = _mm512_set1_ps(1.0 / sum);
        i = 0;
        while i < body {
            _mm512_storeu_ps(p.add(i), _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), iv));
            i += 16;
        }
        if rest > 0 {
            let v = _mm512_maskz_loadu_ps(m, p.add(body));
            _mm512_mask_storeu_ps(p.add(body), m, _mm512_mul_ps(v, iv));
        }
    }
}
