//! NEON micro-kernels (aarch64: 4 floats per 128-bit register, 32 registers).
//!
//! One kernel body, [`tile`], instantiated for two tile shapes:
//!
//! | kernel | tile (MR x NR) | accumulators | used for |
//! | --- | --- | --- | --- |
//! | [`neon`] | 8 x 12 | 24 of 32 | dense layers: 8 divides every row count BERT batches make, 12 every width (384, 768, 1152, 1536, 3072) |
//! | [`neon_4x16`] | 4 x 16 | 16 of 32 | attention: heads of 32 and 64, keys in multiples of 16, fill it without padding |
//!
//! The k loop is `FMLA` by element (`vfmaq_laneq_f32`): a B row of `NR` floats in `NR / 4`
//! registers, each multiplied by one A value held in a lane. A packed A panel (`ars == 1`)
//! gives its `MR` values of a k step as `MR / 4` vector loads; rows of A read in place
//! (`ars = lda`, `aks = 1`) give them as `MR` scalar loads. ONNX Runtime's MLAS and
//! OpenBLAS use the same 8 x 12 shape on Cortex-A cores (24 accumulators, 3 B vectors and
//! 2 A vectors: 29 of the 32 registers).
//!
//! NEON is part of the aarch64 base architecture (and of every Android and iOS ABI), so
//! these kernels need no run-time check beyond `Isa::available`.

use super::{store_tile, Epilogue, Prefetch};
use std::arch::aarch64::*;

pub(crate) const NEON_MR: usize = 8;
pub(crate) const NEON_NR: usize = 12;
pub(crate) const NEON_ATTN_MR: usize = 4;
pub(crate) const NEON_ATTN_NR: usize = 16;

/// Whether this CPU runs the NEON kernels (every aarch64 CPU does).
pub(crate) fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// 8 x 12 tile for the dense layers.
///
/// # Safety
/// `a + i*ars + p*aks` is readable for `i < 8`, `p < kc`; `b` holds `kc * 12` floats; `C`
/// as in [`store_tile`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn neon(
    kc: usize,
    a: *const f32,
    ars: isize,
    aks: isize,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
    _pf: Prefetch,
) {
    // SAFETY: forwarded contract.
    unsafe { tile::<NEON_MR, 3>(kc, a, ars, aks, b, c, rs, cs, mr, nr, ep) }
}

/// 4 x 16 tile for attention's short products.
///
/// # Safety
/// `a + i*ars + p*aks` is readable for `i < 4`, `p < kc`; `b` holds `kc * 16` floats; `C`
/// as in [`store_tile`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn neon_4x16(
    kc: usize,
    a: *const f32,
    ars: isize,
    aks: isize,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
    _pf: Prefetch,
) {
    // SAFETY: forwarded contract.
    unsafe { tile::<NEON_ATTN_MR, 4>(kc, a, ars, aks, b, c, rs, cs, mr, nr, ep) }
}

/// `acc[i] += b * a[L]` for the `NV` vectors of one row.
#[inline(always)]
fn fma_lane<const L: i32, const NV: usize>(
    acc: &mut [float32x4_t; NV],
    b: &[float32x4_t; NV],
    a: float32x4_t,
) {
    for (c, &bv) in acc.iter_mut().zip(b) {
        // SAFETY: NEON is in the aarch64 base architecture.
        *c = unsafe { vfmaq_laneq_f32::<L>(*c, bv, a) };
    }
}

/// `MR x 4·NV` tile: `MR` is 4 or 8 (one or two A vectors per k step).
///
/// # Safety
/// `a + i*ars + p*aks` is readable for `i < MR`, `p < kc`; `b` holds `kc * 4 * NV` floats;
/// `C` as in [`store_tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    ars: isize,
    aks: isize,
    b: *const f32,
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
) {
    const { assert!(MR == 4 || MR == 8) };
    // SAFETY (every intrinsic below): NEON is in the aarch64 base architecture; loads read
    // `b + p*4NV .. + 4NV` (p < kc) and `a + i*ars + p*aks` (i < MR, p < kc), readable by
    // the caller's contract.
    let mut acc = [[unsafe { vdupq_n_f32(0.0) }; NV]; MR];
    let load_b = |p: usize| {
        let bp = unsafe { b.add(p * 4 * NV) };
        let mut bv = [unsafe { vdupq_n_f32(0.0) }; NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = unsafe { vld1q_f32(bp.add(4 * v)) };
        }
        bv
    };
    if ars == 1 {
        // A packed panel: the `MR` values of a step are contiguous, one or two vector loads,
        // each lane multiplied in place (`FMLA` by element).
        for p in 0..kc {
            let bv = load_b(p);
            let ap = unsafe { a.offset(p as isize * aks) };
            let a0 = unsafe { vld1q_f32(ap) };
            fma_lane::<0, NV>(&mut acc[0], &bv, a0);
            fma_lane::<1, NV>(&mut acc[1], &bv, a0);
            fma_lane::<2, NV>(&mut acc[2], &bv, a0);
            fma_lane::<3, NV>(&mut acc[3], &bv, a0);
            if MR == 8 {
                let a1 = unsafe { vld1q_f32(ap.add(4)) };
                fma_lane::<0, NV>(&mut acc[4 % MR], &bv, a1);
                fma_lane::<1, NV>(&mut acc[5 % MR], &bv, a1);
                fma_lane::<2, NV>(&mut acc[6 % MR], &bv, a1);
                fma_lane::<3, NV>(&mut acc[7 % MR], &bv, a1);
            }
        }
    } else {
        // Rows of A read in place: one scalar load per row (`FMLA` by element 0).
        for p in 0..kc {
            let bv = load_b(p);
            let ap = unsafe { a.offset(p as isize * aks) };
            for (i, row) in acc.iter_mut().enumerate() {
                let x = unsafe { *ap.offset(i as isize * ars) };
                for (c, &bv) in row.iter_mut().zip(&bv) {
                    *c = unsafe { vfmaq_n_f32(*c, bv, x) };
                }
            }
        }
    }
    // SAFETY: forwarded contract.
    unsafe { store(&acc, c, rs, cs, mr, nr, ep) }
}

/// The epilogue of a tile: full rows of unit column stride from registers, anything else
/// (ragged columns, a strided `C`) through a stack copy and [`store_tile`].
///
/// # Safety
/// As [`store_tile`] for `mr <= MR`, `nr <= 4 * NV`.
#[inline(always)]
unsafe fn store<const MR: usize, const NV: usize>(
    acc: &[[float32x4_t; NV]; MR],
    c: *mut f32,
    rs: isize,
    cs: isize,
    mr: usize,
    nr: usize,
    ep: &Epilogue,
) {
    if cs != 1 || nr != 4 * NV {
        let mut flat = [[[0.0f32; 4]; NV]; MR];
        for (dst, row) in flat.iter_mut().zip(acc) {
            for (d, &r) in dst.iter_mut().zip(row) {
                // SAFETY: `d` holds 4 floats.
                unsafe { vst1q_f32(d.as_mut_ptr(), r) };
            }
        }
        // SAFETY: forwarded contract; `flat` is `MR` rows of `4 NV` floats.
        unsafe {
            store_tile(
                flat.as_flattened().as_flattened(),
                4 * NV,
                c,
                rs,
                cs,
                mr,
                nr,
                ep,
            )
        };
        return;
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        // SAFETY: row `i < mr` of the tile has `4 NV` contiguous floats (`cs == 1`, `nr ==
        // 4 NV`, caller's contract) and `bias` `nr` floats when not null.
        unsafe {
            let cr = c.offset(i as isize * rs);
            for (v, &r) in row.iter().enumerate() {
                let cp = cr.add(4 * v);
                // The operations of the AVX2 epilogue: alpha·acc, then fused beta·C, then
                // the bias.
                let mut x = vmulq_n_f32(r, ep.alpha);
                if ep.first {
                    if ep.beta != 0.0 {
                        x = vfmaq_n_f32(x, vld1q_f32(cp), ep.beta);
                    }
                    if !ep.bias.is_null() {
                        x = vaddq_f32(x, vld1q_f32(ep.bias.add(4 * v)));
                    }
                } else {
                    x = vaddq_f32(x, vld1q_f32(cp));
                }
                vst1q_f32(cp, x);
            }
            if ep.last_act() {
                ep.act.apply(std::slice::from_raw_parts_mut(cr, 4 * NV));
            }
        }
    }
}
