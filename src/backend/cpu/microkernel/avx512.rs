//! AVX-512F micro-kernels (16 floats per zmm register, 32 registers).
//!
//! Intel server cores (Skylake-SP and later: Ice Lake, Sapphire/Emerald/Granite Rapids) have two
//! 512-bit FMA units, so these tiles double the AVX2 kernels' FLOPs per cycle there; ONNX
//! Runtime's MLAS switches to its AVX-512 SGEMM on the same CPUs.
//!
//! | kernel | tile (MR x NR) | accumulators | used for |
//! | --- | --- | --- | --- |
//! | [`avx512`] | 8 x 48 | 24 zmm | dense layers: 8 divides every row count BERT batches make (multiples of 8) and 48 every width (384, 768, 1536, 3072) |
//! | [`avx512_8x32`] | 8 x 32 | 16 zmm | attention: heads of 32 (one panel) and 64, keys in multiples of 32 |
//!
//! Unlike the AVX2 tiles these are plain intrinsics: with 32 registers the 24 accumulators, the
//! B vectors and a broadcast fit with room to spare, and LLVM keeps them all in registers (the
//! AVX2 kernels needed assembly because their 16 registers left none). Ragged columns are
//! stored with masks, so only a strided `C` goes through [`store_tile`].
//!
//! Compiled only by Rust 1.89+ (`cfg(bert_avx512)` from `build.rs`), where AVX-512 intrinsics
//! are stable; chosen at run time only where the CPU reports AVX-512F.

use super::{store_tile, Epilogue};
use std::arch::x86_64::*;

pub(crate) const AVX512_MR: usize = 8;
pub(crate) const AVX512_NR: usize = 48;
pub(crate) const AVX512_ATTN_MR: usize = 8;
pub(crate) const AVX512_ATTN_NR: usize = 32;

pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// 8 x 48 tile for the dense layers.
///
/// # Safety
/// The CPU supports AVX-512F; `a + i*ars + p*aks` is readable for `i < 8`, `p < kc`; `b`
/// holds `kc * 48` floats; `C` as in [`store_tile`].
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512(
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
    // SAFETY: forwarded contract.
    unsafe { tile::<AVX512_MR, 3>(kc, a, ars, aks, b, c, rs, cs, mr, nr, ep) }
}

/// 8 x 32 tile for attention's short products.
///
/// # Safety
/// As [`avx512`] with `b` holding `kc * 32` floats.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn avx512_8x32(
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
    // SAFETY: forwarded contract.
    unsafe { tile::<AVX512_ATTN_MR, 2>(kc, a, ars, aks, b, c, rs, cs, mr, nr, ep) }
}

/// `MR` rows x `V` vectors (`16 V` columns).
///
/// # Safety
/// As [`avx512`] with `MR` rows and `b` holding `kc * 16 V` floats.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const MR: usize, const V: usize>(
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
    let nrv = 16 * V;
    if cs == 1 {
        // C is usually in L2 or further; fetch its lines while the FMAs run.
        for i in 0..mr {
            let row = c.wrapping_offset(i as isize * rs);
            for v in 0..V {
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(16 * v) as *const i8);
            }
        }
    }
    let mut acc = [[_mm512_setzero_ps(); V]; MR];
    let (mut ap, mut bp) = (a, b);
    for _ in 0..kc {
        // SAFETY: step `p < kc`: `16 V` floats of the B panel and `a + i*ars + p*aks`
        // (`i < MR`) are readable (caller's contract).
        unsafe {
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, w) in bv.iter_mut().enumerate() {
                *w = _mm512_loadu_ps(bp.add(16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*ap.offset(i as isize * ars));
                for (r, &w) in row.iter_mut().zip(&bv) {
                    *r = _mm512_fmadd_ps(x, w, *r);
                }
            }
            ap = ap.offset(aks);
            bp = bp.add(nrv);
        }
    }
    if cs != 1 {
        let mut flat = [[[0.0f32; 16]; V]; MR];
        for (dst, row) in flat.iter_mut().zip(&acc) {
            for (d, &r) in dst.iter_mut().zip(row) {
                // SAFETY: `d` holds 16 floats.
                unsafe { _mm512_storeu_ps(d.as_mut_ptr(), r) };
            }
        }
        // SAFETY: forwarded contract; `flat` is `MR` rows of `16 V` floats.
        unsafe {
            store_tile(
                flat.as_flattened().as_flattened(),
                nrv,
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
    let alpha = _mm512_set1_ps(ep.alpha);
    let beta = _mm512_set1_ps(ep.beta);
    // Columns `16 v ..` of a row: all 16 lanes, or the `nr % 16` of a ragged last vector.
    let mut masks = [0xffff_u16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        let left = nr.saturating_sub(16 * v);
        if left < 16 {
            *m = (1u16 << left) - 1;
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        // SAFETY: row `i < mr` of the tile has `nr` contiguous floats (`cs == 1`, caller's
        // contract) and `bias` `nr` floats when not null; masked loads and stores touch only
        // the lanes below `nr` (masked-off lanes do not fault).
        unsafe {
            let cr = c.offset(i as isize * rs);
            for (v, (&r, &m)) in row.iter().zip(&masks).enumerate() {
                if m == 0 {
                    break;
                }
                let cp = cr.add(16 * v);
                let mut x = _mm512_mul_ps(alpha, r);
                if ep.first {
                    if ep.beta != 0.0 {
                        x = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m, cp), x);
                    }
                    if !ep.bias.is_null() {
                        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ep.bias.add(16 * v)));
                    }
                } else {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, cp));
                }
                _mm512_mask_storeu_ps(cp, m, x);
            }
            if ep.last_act() {
                ep.act.apply(std::slice::from_raw_parts_mut(cr, nr));
            }
        }
    }
}
