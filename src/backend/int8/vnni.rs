//! VNNI int8 kernels: `vpdpbusd` multiplies 4 u8 activations by 4 i8 weights and adds the
//! four products to an i32 lane, exactly (no intermediate saturation), so these paths use
//! 8-bit activations.
//!
//! - AVX-512 VNNI: 8 rows x 32 columns (two weight panels) per tile, 16 zmm accumulators;
//!   one K group of a panel is exactly one zmm (16 columns x 4 k).
//! - AVX-VNNI (VEX, ymm): 4 rows x 16 columns, as the AVX2 tile with `vpdpbusd` in place of
//!   `vpmaddubsw` + `vpmaddwd` + `vpaddd`.
//!
//! Compiled only with Rust 1.89+ (`cfg(bert_vnni)` from `build.rs`), where these intrinsics
//! are stable; chosen at run time only where the CPU reports the features.

use super::{Tile, TileEpilogue, K_GROUP, OUTLIERS, PANEL_COLS};
use crate::backend::Activation;
use std::arch::x86_64::*;

/// Rows and panels per AVX-512 tile.
pub(super) const MR512: usize = 8;
pub(super) const NP512: usize = 2;
/// Rows per AVX-VNNI tile.
pub(super) const MR256: usize = 4;

pub(super) fn vnni512_available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

pub(super) fn avx_vnni_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("avxvnni")
}

/// See `KernelFn` in `int8.rs`.
///
/// # Safety
/// The CPU has AVX-512F and AVX-512 VNNI; `1 <= rows <= 8`, `1 <= panels <= 2`; `a` holds
/// `groups · 32` bytes; each panel `groups · 64` bytes at stride `stride`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
#[target_feature(enable = "avx512f,avx512vnni")]
pub(super) unsafe fn kernel512(
    groups: usize,
    a: *const u8,
    b: *const u8,
    stride: usize,
    rows: usize,
    panels: usize,
    pf: &[u8],
    acc: &mut Tile,
) {
    macro_rules! dispatch {
        ($($r:literal)*) => {
            match (rows, panels) {
                $(
                    ($r, 1) => tile512::<$r, 1>(groups, a, b, stride, pf, acc),
                    ($r, _) => tile512::<$r, 2>(groups, a, b, stride, pf, acc),
                )*
                (_, 1) => tile512::<8, 1>(groups, a, b, stride, pf, acc),
                _ => tile512::<8, 2>(groups, a, b, stride, pf, acc),
            }
        };
    }
    // SAFETY: forwarded contract.
    unsafe { dispatch!(1 2 3 4 5 6 7) }
}

/// `R` rows x `P` panels.
///
/// # Safety
/// As [`kernel512`] with `rows = R`, `panels = P`.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn tile512<const R: usize, const P: usize>(
    groups: usize,
    a: *const u8,
    b: *const u8,
    stride: usize,
    pf: &[u8],
    acc: &mut Tile,
) {
    let mut c = [[_mm512_setzero_si512(); P]; R];
    // `pf`'s lines, `per` in each of the first K groups: one or two prefetches among 16
    // multiply-adds, instead of a burst that competes with the tile's own loads.
    let lines = pf.len().div_ceil(64);
    let per = lines.div_ceil(groups.max(1));
    for g in 0..groups {
        for l in g * per..(g * per + per).min(lines) {
            // A prefetch never faults (and the line starts inside `pf`).
            _mm_prefetch::<_MM_HINT_T1>(pf.as_ptr().wrapping_add(64 * l).cast());
        }
        // SAFETY: group `g < groups` of panel `p < P` (64 bytes at `b + p·stride + 64g`) and
        // of the A panel (`MR512` rows of 4 bytes at `a + 32g`) lie in bounds (caller's
        // contract); unaligned loads.
        unsafe {
            let mut w = [_mm512_setzero_si512(); P];
            for (p, wp) in w.iter_mut().enumerate() {
                *wp = _mm512_loadu_si512(b.add(p * stride + 64 * g).cast());
            }
            for (r, cr) in c.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(
                    (a.add(g * MR512 * K_GROUP + r * K_GROUP) as *const i32).read_unaligned(),
                );
                for (cp, &wp) in cr.iter_mut().zip(&w) {
                    *cp = _mm512_dpbusd_epi32(*cp, x, wp);
                }
            }
        }
    }
    for (dst, cr) in acc.iter_mut().zip(&c) {
        for (p, &cp) in cr.iter().enumerate() {
            // SAFETY: a tile row holds `TILE_COLS >= 32` i32.
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().add(16 * p).cast(), cp) };
        }
    }
}

/// The epilogue of `int8.rs` (`epilogue_row`) for an AVX-512 tile, one panel (16 columns)
/// per zmm, the same operations in the same order as the AVX2 one (so the same bits), and
/// then `e.act` while the values are still in registers, instead of a second pass over the
/// tile through a call per row. Returns whether it applied `e.act` (not for ReLU, nor for a
/// tile whose width is not a whole number of panels: the caller applies it then).
///
/// # Safety
/// The CPU has AVX-512F (and so AVX2 and FMA); the contract of `int8.rs`'s `epilogue`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn epilogue512(e: &TileEpilogue<'_>) -> bool {
    let fused = e.act.has_m512() && e.s.len().is_multiple_of(PANEL_COLS);
    // SAFETY: forwarded contract. One body per activation, so that none branches per vector.
    unsafe {
        match e.act {
            _ if !fused => tile_epilogue512::<0>(e),
            Activation::GeluErf => tile_epilogue512::<1>(e),
            Activation::GeluTanh => tile_epilogue512::<2>(e),
            Activation::Tanh => tile_epilogue512::<3>(e),
            _ => tile_epilogue512::<0>(e),
        }
    }
    fused || e.act == Activation::Identity
}

/// [`epilogue512`] with the activation as a constant: 0 none, 1 `GeluErf`, 2 `GeluTanh`,
/// 3 `Tanh`.
///
/// # Safety
/// As [`epilogue512`]; `ACT != 0` only when the tile's width is a multiple of 16.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn tile_epilogue512<const ACT: u8>(e: &TileEpilogue<'_>) {
    let cols = e.s.len();
    let body = cols / PANEL_COLS * PANEL_COLS;
    // K = 0 has no weights to read (and no outliers).
    let slots = if e.wstride == 0 { 0 } else { OUTLIERS };
    let act = match ACT {
        1 => Activation::GeluErf,
        2 => Activation::GeluTanh,
        3 => Activation::Tanh,
        _ => Activation::Identity,
    };
    // Vectors waiting for the activation and where they go: it runs on four at a time (see
    // `Activation::apply_m512x4`), across panels and rows.
    let mut held = [_mm512_setzero_ps(); 4];
    let mut dst = [std::ptr::null_mut::<f32>(); 4];
    let mut n = 0;
    let store = |v: [__m512; 4], dst: &[*mut f32; 4], n: usize| {
        for (&v, &y) in v.iter().zip(dst).take(n) {
            // SAFETY: each `y` was made for a store of 16 floats in bounds (see below).
            unsafe { _mm512_storeu_ps(y, v) };
        }
    };
    for i in 0..e.rows {
        let (t, z, o) = (
            _mm512_set1_ps(e.t[i]),
            _mm512_set1_epi32(e.z[i]),
            &e.outliers[i],
        );
        // Per outlier slot: the value, where its weights sit in a panel's K group, and the
        // shift that brings its byte to the top of each 32-bit lane.
        let mut xs = [_mm512_setzero_ps(); OUTLIERS];
        let mut offs = [0usize; OUTLIERS];
        let mut ups = [_mm_setzero_si128(); OUTLIERS];
        for s in 0..slots {
            let c = o.idx[s] as usize;
            // `c < K` (slot index or 0), so its group lies inside each panel.
            assert!(c / K_GROUP * 64 + 64 <= e.wstride);
            xs[s] = _mm512_set1_ps(o.val[s]);
            offs[s] = c / K_GROUP * 64;
            ups[s] = _mm_cvtsi32_si128((24 - 8 * (c % K_GROUP)) as i32);
        }
        for j in (0..body).step_by(PANEL_COLS) {
            // Column `j`'s panel: its K groups hold the panel's 16 columns x 4 bytes.
            let panel = j / PANEL_COLS * e.wstride;
            assert!(panel + e.wstride <= e.w.len());
            // SAFETY: `j + 16 <= cols`: inside the tile row, the column slices and (caller's
            // contract) the output row. Weight loads: 64 bytes at `panel + off`, `off + 64 <=
            // wstride` (asserted per slot), inside `e.w` (asserted).
            unsafe {
                let acc = _mm512_loadu_si512(e.acc[i].as_ptr().add(j).cast());
                let cs = _mm512_loadu_si512(e.colsum.as_ptr().add(j).cast());
                let d = _mm512_sub_epi32(acc, _mm512_mullo_epi32(z, cs));
                let mut u = _mm512_mul_ps(_mm512_cvtepi32_ps(d), t);
                let s = _mm512_loadu_ps(e.s.as_ptr().add(j));
                let y = e.y.add(i * e.ldy + j);
                let out = if e.first {
                    for k in 0..slots {
                        let w = _mm512_loadu_si512(e.w.as_ptr().add(panel + offs[k]).cast());
                        let q = _mm512_srai_epi32::<24>(_mm512_sll_epi32(w, ups[k]));
                        u = _mm512_fmadd_ps(xs[k], _mm512_cvtepi32_ps(q), u);
                    }
                    _mm512_fmadd_ps(u, s, _mm512_loadu_ps(e.bias.as_ptr().add(j)))
                } else {
                    _mm512_fmadd_ps(u, s, _mm512_loadu_ps(y))
                };
                if ACT == 0 {
                    _mm512_storeu_ps(y, out);
                } else {
                    (held[n], dst[n]) = (out, y);
                    n += 1;
                    if n == held.len() {
                        store(act.apply_m512x4(held), &dst, n);
                        n = 0;
                    }
                }
            }
        }
        if body < cols {
            // SAFETY: the caller's contract.
            unsafe { super::epilogue_row(e, i, body) };
        }
    }
    if n > 0 {
        // SAFETY: as for the full groups (the lanes past `n` are computed and dropped).
        unsafe { store(act.apply_m512x4(held), &dst, n) };
    }
}

/// See `KernelFn` in `int8.rs` (one panel per tile).
///
/// # Safety
/// The CPU has AVX2 and AVX-VNNI; `1 <= rows <= 4`; `a` holds `groups · 16` bytes and `b`
/// `groups · 64`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
#[target_feature(enable = "avx2,avxvnni")]
pub(super) unsafe fn kernel256(
    groups: usize,
    a: *const u8,
    b: *const u8,
    _stride: usize,
    rows: usize,
    _panels: usize,
    _pf: &[u8],
    acc: &mut Tile,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match rows {
            1 => tile256::<1>(groups, a, b, acc),
            2 => tile256::<2>(groups, a, b, acc),
            3 => tile256::<3>(groups, a, b, acc),
            _ => tile256::<4>(groups, a, b, acc),
        }
    }
}

/// `R` rows x 16 columns.
///
/// # Safety
/// As [`kernel256`] with `rows = R`.
#[target_feature(enable = "avx2,avxvnni")]
#[inline]
unsafe fn tile256<const R: usize>(groups: usize, a: *const u8, b: *const u8, acc: &mut Tile) {
    let mut c = [[_mm256_setzero_si256(); 2]; R];
    for g in 0..groups {
        // SAFETY: as in the AVX2 kernel: group `g < groups` is in bounds.
        unsafe {
            let w0 = _mm256_loadu_si256(b.add(64 * g) as *const __m256i);
            let w1 = _mm256_loadu_si256(b.add(64 * g + 32) as *const __m256i);
            for (r, cr) in c.iter_mut().enumerate() {
                let x = _mm256_set1_epi32(
                    (a.add(g * MR256 * K_GROUP + r * K_GROUP) as *const i32).read_unaligned(),
                );
                cr[0] = _mm256_dpbusd_avx_epi32(cr[0], x, w0);
                cr[1] = _mm256_dpbusd_avx_epi32(cr[1], x, w1);
            }
        }
    }
    for (dst, cr) in acc.iter_mut().zip(&c) {
        // SAFETY: a tile row holds `TILE_COLS >= 16` i32.
        unsafe {
            _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, cr[0]);
            _mm256_storeu_si256(dst.as_mut_ptr().add(8) as *mut __m256i, cr[1]);
        }
    }
}
