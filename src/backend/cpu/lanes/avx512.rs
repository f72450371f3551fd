//! The element-wise formulas and the soft-max row on sixteen lanes (one zmm register).
//!
//! Same formulas as the AVX2 path (`lanes.rs`), twice the width; the row loops are the generic
//! ones of `lanes.rs` ([`Row`]), whose partial last vector is here a masked load and store.

use super::{Lanes, Row};
use std::arch::x86_64::*;

/// Sixteen `f32` in a zmm register. Only built inside functions compiled with
/// `#[target_feature(enable = "avx512f")]` on CPUs that have it (the `math.rs` dispatcher
/// checks), which is what makes the intrinsic calls below sound.
#[derive(Clone, Copy)]
pub(crate) struct V16(pub __m512);

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

// SAFETY (every method): as for `Lanes` above; the pointer methods' callers keep the accesses
// in bounds (`Row`'s contract), and masked-off lanes are neither read nor written.
impl Row for V16 {
    const N: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        V16(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, len: usize, fill: f32) -> Self {
        V16(unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(len), p) })
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, len: usize) {
        unsafe { _mm512_mask_storeu_ps(p, tail_mask(len), self.0) }
    }
    #[inline(always)]
    fn max(self, acc: Self) -> Self {
        V16(unsafe { _mm512_max_ps(self.0, acc.0) })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        unsafe { _mm512_reduce_max_ps(self.0) }
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
}
