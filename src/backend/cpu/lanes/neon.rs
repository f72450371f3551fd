//! The element-wise formulas and the soft-max row on four lanes (one NEON register, aarch64).
//!
//! Same formulas as the AVX2 path (`lanes.rs`), half the width; the row loops are the generic
//! ones of `lanes.rs` ([`Row`]), four registers per step (the `Multi` chains keep the two
//! NEON pipes of a Cortex-A busy through GELU's ~35-deep dependency chain).

use super::{Lanes, Row};
use std::arch::aarch64::*;

/// Four `f32` in a NEON register. NEON is part of the aarch64 base architecture (the
/// targets enable it by default), which is what makes the intrinsic calls below sound.
#[derive(Clone, Copy)]
pub(crate) struct V4(pub float32x4_t);

// SAFETY (every method): NEON is available on every aarch64 CPU (see above); the intrinsics
// only read and write registers.
impl Lanes for V4 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        V4(unsafe { vdupq_n_f32(v) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        V4(unsafe { vaddq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        V4(unsafe { vsubq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        V4(unsafe { vmulq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        V4(unsafe { vdivq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn recip(self) -> Self {
        // `frecpe` gives 8 bits; each `frecps` Newton step r (2 - x r) doubles them: two
        // steps reach f32's precision (a division costs 10-20 cycles on Cortex-A cores).
        unsafe {
            let r = vrecpeq_f32(self.0);
            let r = vmulq_f32(r, vrecpsq_f32(self.0, r));
            V4(vmulq_f32(r, vrecpsq_f32(self.0, r)))
        }
    }
    #[inline(always)]
    fn fmadd(self, b: Self, c: Self) -> Self {
        V4(unsafe { vfmaq_f32(c.0, self.0, b.0) })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        V4(unsafe { vabsq_f32(self.0) })
    }
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        // `fmax`/`fmin` return NaN when either operand is NaN: NaN stays NaN.
        unsafe {
            let v = vmaxq_f32(self.0, vdupq_n_f32(lo));
            V4(vminq_f32(v, vdupq_n_f32(hi)))
        }
    }
    #[inline(always)]
    fn select_lt(a: Self, b: Self, t: Self, f: Self) -> Self {
        unsafe { V4(vbslq_f32(vcltq_f32(a.0, b.0), t.0, f.0)) }
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        unsafe { V4(vbslq_f32(vdupq_n_u32(0x8000_0000), sign.0, self.0)) }
    }
    #[inline(always)]
    fn pow2_from_magic(t: Self, magic: f32) -> Self {
        unsafe {
            let bits = vreinterpretq_s32_f32(t.0);
            let bits = vsubq_s32(bits, vdupq_n_s32(magic.to_bits() as i32));
            let bits = vaddq_s32(bits, vdupq_n_s32(127));
            V4(vreinterpretq_f32_s32(vshlq_n_s32::<23>(bits)))
        }
    }
}

// SAFETY (every method): as for `Lanes` above; the pointer methods' callers keep the
// accesses in bounds (`Row`'s contract). Partial vectors go through a stack copy.
impl Row for V4 {
    const N: usize = 4;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        V4(unsafe { vld1q_f32(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_part(p: *const f32, len: usize, fill: f32) -> Self {
        let mut buf = [fill; 4];
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), len);
            V4(vld1q_f32(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, len: usize) {
        let mut buf = [0.0f32; 4];
        unsafe {
            vst1q_f32(buf.as_mut_ptr(), self.0);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, len);
        }
    }
    #[inline(always)]
    fn max(self, acc: Self) -> Self {
        // `fmaxnm` returns the number when one operand is NaN: `acc` where `self` is NaN.
        V4(unsafe { vmaxnmq_f32(self.0, acc.0) })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        unsafe { vmaxnmvq_f32(self.0) }
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        unsafe { vaddvq_f32(self.0) }
    }
}
