//! AVX2 int8 kernels (x86_64 without VNNI), plus the AVX2 activation quantization and
//! epilogue that every x86 path shares.
//!
//! The micro-kernel multiplies u8 activations by i8 weights with `vpmaddubsw`, which adds
//! each pair of products in *saturating* i16, then widens pairs to i32 with
//! `vpmaddwd(·, 1)` and accumulates with `vpaddd`. Activations are quantized to 7 bits
//! (0..=127) on this path so that a pair never saturates: `|2 · 127 · (−128)| = 32512 ≤
//! 32767` for any weight byte, −128 included. The sums are then exact, like VNNI's.
//!
//! Tile: 4 rows x 16 columns (one weight panel): 8 ymm accumulators, two weight vectors of
//! 8 columns x 4 k per K group, one broadcast of 4 activation bytes per row
//! (`_mm256_set1_epi32`), the constant 1s; 13 of the 16 ymm registers. On Zen 3 the two
//! multiplies per 32 multiply-adds fill both vector-multiply pipes (~32 int8 multiply-adds
//! per cycle, 2x the f32 FMA rate).

use super::pack::{level, row_params};
use super::{Tile, TileEpilogue, K_GROUP};
use std::arch::x86_64::*;

/// Rows per tile.
pub(super) const MR: usize = 4;

/// See `KernelFn` in `int8.rs` (one panel per tile).
///
/// # Safety
/// The CPU has AVX2; `1 <= rows <= 4`; `a` holds `groups · 16` bytes and `b` `groups · 64`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn kernel(
    groups: usize,
    a: *const u8,
    b: *const u8,
    _stride: usize,
    rows: usize,
    _panels: usize,
    acc: &mut Tile,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match rows {
            1 => tile::<1>(groups, a, b, acc),
            2 => tile::<2>(groups, a, b, acc),
            3 => tile::<3>(groups, a, b, acc),
            _ => tile::<4>(groups, a, b, acc),
        }
    }
}

/// `R` rows x 16 columns.
///
/// # Safety
/// As [`kernel`], with `rows = R`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn tile<const R: usize>(groups: usize, a: *const u8, b: *const u8, acc: &mut Tile) {
    let ones = _mm256_set1_epi16(1);
    let mut c = [[_mm256_setzero_si256(); 2]; R];
    for g in 0..groups {
        // SAFETY: group `g < groups`: 64 weight bytes at `b + 64g` and `MR` rows of 4
        // activation bytes at `a + 16g` (caller's contract); unaligned loads.
        unsafe {
            let w0 = _mm256_loadu_si256(b.add(64 * g) as *const __m256i);
            let w1 = _mm256_loadu_si256(b.add(64 * g + 32) as *const __m256i);
            for (r, cr) in c.iter_mut().enumerate() {
                let x = _mm256_set1_epi32(
                    (a.add(g * MR * K_GROUP + r * K_GROUP) as *const i32).read_unaligned(),
                );
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones);
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones);
                cr[0] = _mm256_add_epi32(cr[0], p0);
                cr[1] = _mm256_add_epi32(cr[1], p1);
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

/// The epilogue of `int8.rs` (`y (+)= (acc − z·colsum) · (t·s) (+ bias)`) for a whole
/// tile, 8 columns at a time: the same operations in the same order as the portable one, so
/// the same bits.
///
/// # Safety
/// The CPU has AVX2; the contract of `int8.rs`'s `epilogue`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn epilogue(e: &TileEpilogue<'_>) {
    let cols = e.s.len();
    let body = cols / 8 * 8;
    for i in 0..e.rows {
        let (t, z) = (_mm256_set1_ps(e.t[i]), _mm256_set1_epi32(e.z[i]));
        for j in (0..body).step_by(8) {
            // SAFETY: `j + 8 <= cols`: inside the tile row, the column slices and (caller's
            // contract) the output row.
            unsafe {
                let acc = _mm256_loadu_si256(e.acc[i].as_ptr().add(j) as *const __m256i);
                let cs = _mm256_loadu_si256(e.colsum.as_ptr().add(j) as *const __m256i);
                let d = _mm256_sub_epi32(acc, _mm256_mullo_epi32(z, cs));
                let ts = _mm256_mul_ps(t, _mm256_loadu_ps(e.s.as_ptr().add(j)));
                let v = _mm256_mul_ps(_mm256_cvtepi32_ps(d), ts);
                let y = e.y.add(i * e.ldy + j);
                let out = if e.first {
                    _mm256_add_ps(v, _mm256_loadu_ps(e.bias.as_ptr().add(j)))
                } else {
                    _mm256_add_ps(_mm256_loadu_ps(y), v)
                };
                _mm256_storeu_ps(y, out);
            }
        }
        if body < cols {
            // SAFETY: the caller's contract.
            unsafe { super::epilogue_row(e, i, body) };
        }
    }
}

/// `pack::quantize_panel` with AVX2: the same ranges, parameters and rounding (`vcvtps2dq`
/// rounds half to even, like `round_ties_even`), so the same bytes. Four rows at a time: the
/// 4 x 8 levels of four rows become, after two rounds of packing, the 16 bytes of one K
/// group (rows 0..4 x 4 k) and of the next, each written with one store.
///
/// # Safety
/// The CPU has AVX2; `x` holds `rows` rows of `k` floats; `rows <= mr`, `mr % 4 == 0`;
/// `panel` holds `ceil(k / 4) · mr · 4` bytes; `scale` and `zero` hold `rows` values.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn quantize_panel(
    x: &[f32],
    rows: usize,
    k: usize,
    mr: usize,
    levels: u8,
    panel: &mut [u8],
    scale: &mut [f32],
    zero: &mut [i32],
) {
    let body = k / 8 * 8;
    let (mut inv, mut zf) = ([0.0f32; 8], [0.0f32; 8]);
    for i in 0..rows {
        let row = &x[i * k..(i + 1) * k];
        // SAFETY: AVX2 (caller's contract).
        let (lo, hi) = unsafe { min_max(row) };
        let (t, iv, z) = row_params(lo, hi, levels);
        (scale[i], zero[i], inv[i], zf[i]) = (t, z, iv, z as f32);
    }
    let (vmin, vmax) = (_mm256_setzero_si256(), _mm256_set1_epi32(levels as i32));
    for quad in 0..mr / 4 {
        let level8 = |i: usize, kk: usize| {
            let r = 4 * quad + i;
            if r >= rows {
                return vmin;
            }
            // SAFETY: row `r < rows`, `kk + 8 <= k`.
            let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(r * k + kk)) };
            let q = _mm256_cvtps_epi32(_mm256_add_ps(
                _mm256_mul_ps(v, _mm256_set1_ps(inv[r])),
                _mm256_set1_ps(zf[r]),
            ));
            _mm256_min_epi32(_mm256_max_epi32(q, vmin), vmax)
        };
        for kk in (0..body).step_by(8) {
            let (q0, q1, q2, q3) = (level8(0, kk), level8(1, kk), level8(2, kk), level8(3, kk));
            // Per 128-bit lane: rows 0..4 x 4 k, as u16 then u8 (values are in 0..=255).
            let b = _mm256_packus_epi16(_mm256_packus_epi32(q0, q1), _mm256_packus_epi32(q2, q3));
            let g = kk / K_GROUP;
            let (d0, d1) = (
                g * mr * K_GROUP + 16 * quad,
                (g + 1) * mr * K_GROUP + 16 * quad,
            );
            panel[d0..d0 + 16].copy_from_slice(&_mm256_castsi256_si128(b).to_bytes());
            panel[d1..d1 + 16].copy_from_slice(&_mm256_extracti128_si256::<1>(b).to_bytes());
        }
    }
    for i in 0..rows {
        for kk in body..k {
            let v = x[i * k + kk];
            panel[(kk / K_GROUP * mr + i) * K_GROUP + kk % K_GROUP] =
                level(v, inv[i], zf[i], levels as f32);
        }
    }
}

/// `(min(0, row), max(0, row))`.
///
/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn min_max(row: &[f32]) -> (f32, f32) {
    let body = row.len() / 8 * 8;
    let (mut vlo, mut vhi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for i in (0..body).step_by(8) {
        // SAFETY: `i + 8 <= row.len()`.
        let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(i)) };
        vlo = _mm256_min_ps(vlo, v);
        vhi = _mm256_max_ps(vhi, v);
    }
    let (mut los, mut his) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: 8 floats each.
    unsafe {
        _mm256_storeu_ps(los.as_mut_ptr(), vlo);
        _mm256_storeu_ps(his.as_mut_ptr(), vhi);
    }
    let lo = los
        .iter()
        .chain(&row[body..])
        .fold(0.0f32, |m, &v| m.min(v));
    let hi = his
        .iter()
        .chain(&row[body..])
        .fold(0.0f32, |m, &v| m.max(v));
    (lo, hi)
}

/// The 16 bytes of an xmm register, in memory order.
trait ToBytes {
    fn to_bytes(self) -> [u8; 16];
}

impl ToBytes for __m128i {
    fn to_bytes(self) -> [u8; 16] {
        // SAFETY: `__m128i` and `[u8; 16]` have the same size and any bits are valid.
        unsafe { std::mem::transmute::<__m128i, [u8; 16]>(self) }
    }
}
