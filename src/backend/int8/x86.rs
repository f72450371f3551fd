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
//! multiplies per 32 multiply-adds fill both vector-multiply pipes: 32 int8 multiply-adds
//! per cycle, measured 1.87–1.91x the f32 FMA rate (BENCHMARKS.md). The exact 8-bit
//! alternative (`vpmovsxbw` + `vpmaddwd` on i16) measured 0.73x this kernel.

use super::pack::{is_outlier, level, row_params, set_outliers_to_zero_point, RowParams};
use super::{Outliers, Tile, TileEpilogue, K_GROUP, OUTLIERS, PANEL_COLS};
use std::arch::x86_64::*;

/// Rows per tile.
pub(super) const MR: usize = 4;

/// See `KernelFn` in `int8.rs` (one panel per tile).
///
/// # Safety
/// The CPU has AVX2; `1 <= rows <= 4`; `a` holds `groups · 16` bytes and `b` `groups · 64`.
#[allow(clippy::too_many_arguments)] // `KernelFn`
#[target_feature(enable = "avx2")]
pub(super) unsafe fn kernel(
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

/// The epilogue of `int8.rs` (`epilogue_row`) for a whole tile, 8 columns at a time: the
/// same operations in the same order (`vfmadd` rounds once, like `f32::mul_add`), so the
/// same bits. Every outlier slot is applied, unused ones (value 0, index 0) included: no
/// branches, and `fma(0, q, u) = u`.
///
/// # Safety
/// The CPU has AVX2 and FMA; the contract of `int8.rs`'s `epilogue`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn epilogue(e: &TileEpilogue<'_>) {
    let cols = e.s.len();
    let body = cols / 8 * 8;
    // K = 0 has no weights to read (and no outliers).
    let slots = if e.wstride == 0 { 0 } else { OUTLIERS };
    for i in 0..e.rows {
        let (t, z, o) = (
            _mm256_set1_ps(e.t[i]),
            _mm256_set1_epi32(e.z[i]),
            &e.outliers[i],
        );
        // Per outlier slot: the value, where its weights sit in a panel's K group, and the
        // shift that brings its byte to the top of each 32-bit lane.
        let mut xs = [_mm256_setzero_ps(); OUTLIERS];
        let mut offs = [0usize; OUTLIERS];
        let mut ups = [_mm_setzero_si128(); OUTLIERS];
        for s in 0..slots {
            let c = o.idx[s] as usize;
            // `c < K` (slot index or 0), so its group lies inside each panel.
            assert!(c / K_GROUP * 64 + 64 <= e.wstride);
            xs[s] = _mm256_set1_ps(o.val[s]);
            offs[s] = c / K_GROUP * 64;
            ups[s] = _mm_cvtsi32_si128((24 - 8 * (c % K_GROUP)) as i32);
        }
        for j in (0..body).step_by(8) {
            // Column `j`'s 4-byte groups in its panel (`j % 8 == 0`: 32 bytes).
            let panel = j / PANEL_COLS * e.wstride;
            assert!(panel + e.wstride <= e.w.len());
            let wj = panel + j % PANEL_COLS * K_GROUP;
            // SAFETY: `j + 8 <= cols`: inside the tile row, the column slices and (caller's
            // contract) the output row. Weight loads: 32 bytes at `wj + off`, `off + 64 <=
            // wstride` (asserted per slot), `j % 16 <= 8`: inside panel `j / 16`, which lies
            // inside `e.w` (asserted).
            unsafe {
                let acc = _mm256_loadu_si256(e.acc[i].as_ptr().add(j) as *const __m256i);
                let cs = _mm256_loadu_si256(e.colsum.as_ptr().add(j) as *const __m256i);
                let d = _mm256_sub_epi32(acc, _mm256_mullo_epi32(z, cs));
                let mut u = _mm256_mul_ps(_mm256_cvtepi32_ps(d), t);
                let s = _mm256_loadu_ps(e.s.as_ptr().add(j));
                let y = e.y.add(i * e.ldy + j);
                let out = if e.first {
                    for k in 0..slots {
                        let w =
                            _mm256_loadu_si256(e.w.as_ptr().add(wj + offs[k]) as *const __m256i);
                        let q = _mm256_srai_epi32::<24>(_mm256_sll_epi32(w, ups[k]));
                        u = _mm256_fmadd_ps(xs[k], _mm256_cvtepi32_ps(q), u);
                    }
                    _mm256_fmadd_ps(u, s, _mm256_loadu_ps(e.bias.as_ptr().add(j)))
                } else {
                    _mm256_fmadd_ps(u, s, _mm256_loadu_ps(y))
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
pub(super) unsafe fn quantize_panel(
    x: &[f32],
    rows: usize,
    k: usize,
    mr: usize,
    levels: u8,
    panel: &mut [u8],
    p: RowParams<'_>,
) {
    let body = k / 8 * 8;
    let (mut inv, mut zf) = ([0.0f32; 8], [0.0f32; 8]);
    for i in 0..rows {
        let row = &x[i * k..(i + 1) * k];
        // SAFETY: AVX2 (caller's contract).
        let o = unsafe { select_outliers(row) };
        // SAFETY: AVX2 (caller's contract).
        let (lo, hi) = unsafe { min_max(row, &o) };
        let (t, iv, z) = row_params(lo, hi, levels);
        (p.scale[i], p.zero[i], p.outliers[i], inv[i], zf[i]) = (t, z, o, iv, z as f32);
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
        set_outliers_to_zero_point(&p.outliers[i], p.zero[i], panel, mr, K_GROUP, i);
    }
}

/// `pack::select_outliers` with AVX2 (same result): each lane keeps the two largest `|x|`
/// it sees (a strictly larger value replaces, so ties keep the earlier index), then the 16
/// lane candidates and the tail are merged in the order (magnitude down, index up).
///
/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn select_outliers(row: &[f32]) -> Outliers {
    const _: () = assert!(OUTLIERS == 2, "the SIMD selection keeps two per lane");
    let body = row.len() / 8 * 8;
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let (mut m1, mut m2) = (_mm256_set1_ps(-1.0), _mm256_set1_ps(-1.0));
    let (mut i1, mut i2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut v1, mut v2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for c in (0..body).step_by(8) {
        // SAFETY: `c + 8 <= row.len()`.
        let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(c)) };
        let a = _mm256_and_ps(v, abs);
        let ix = _mm256_castsi256_ps(idx);
        let gt1 = _mm256_cmp_ps::<_CMP_GT_OQ>(a, m1);
        let gt2 = _mm256_cmp_ps::<_CMP_GT_OQ>(a, m2);
        m2 = _mm256_blendv_ps(_mm256_blendv_ps(m2, a, gt2), m1, gt1);
        i2 = _mm256_blendv_ps(_mm256_blendv_ps(i2, ix, gt2), i1, gt1);
        v2 = _mm256_blendv_ps(_mm256_blendv_ps(v2, v, gt2), v1, gt1);
        m1 = _mm256_blendv_ps(m1, a, gt1);
        i1 = _mm256_blendv_ps(i1, ix, gt1);
        v1 = _mm256_blendv_ps(v1, v, gt1);
        idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
    }
    let lanes = |m: __m256, i: __m256, v: __m256| {
        let (mut mm, mut ii, mut vv) = ([0.0f32; 8], [0u32; 8], [0.0f32; 8]);
        // SAFETY: 8 values each.
        unsafe {
            _mm256_storeu_ps(mm.as_mut_ptr(), m);
            _mm256_storeu_si256(ii.as_mut_ptr() as *mut __m256i, _mm256_castps_si256(i));
            _mm256_storeu_ps(vv.as_mut_ptr(), v);
        }
        (0..8).map(move |l| (mm[l], ii[l], vv[l]))
    };
    let tail = row[body..]
        .iter()
        .enumerate()
        .map(|(t, &v)| (v.abs(), (body + t) as u32, v));
    let mut o = Outliers::default();
    let mut mag = [-1.0f32; OUTLIERS];
    let before = |a: f32, ia: u32, b: f32, ib: u32| a > b || (a == b && ia < ib);
    for (a, c, v) in lanes(m1, i1, v1).chain(lanes(m2, i2, v2)).chain(tail) {
        if before(a, c, mag[1], o.idx[1]) {
            if before(a, c, mag[0], o.idx[0]) {
                (mag[1], o.idx[1], o.val[1]) = (mag[0], o.idx[0], o.val[0]);
                (mag[0], o.idx[0], o.val[0]) = (a, c, v);
            } else {
                (mag[1], o.idx[1], o.val[1]) = (a, c, v);
            }
        }
    }
    o
}

/// `(min(0, row), max(0, row))` over the columns that are not outliers (`pack::is_outlier`).
///
/// # Safety
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn min_max(row: &[f32], o: &Outliers) -> (f32, f32) {
    let body = row.len() / 8 * 8;
    let skip = |s: usize| if o.val[s] != 0.0 { o.idx[s] as i32 } else { -1 };
    let (x0, x1) = (_mm256_set1_epi32(skip(0)), _mm256_set1_epi32(skip(1)));
    let mut idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let (mut vlo, mut vhi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for i in (0..body).step_by(8) {
        // SAFETY: `i + 8 <= row.len()`.
        let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(i)) };
        // Outliers become 0, which the range holds anyway.
        let out = _mm256_or_si256(_mm256_cmpeq_epi32(idx, x0), _mm256_cmpeq_epi32(idx, x1));
        let v = _mm256_andnot_ps(_mm256_castsi256_ps(out), v);
        vlo = _mm256_min_ps(vlo, v);
        vhi = _mm256_max_ps(vhi, v);
        idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
    }
    let (mut los, mut his) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: 8 floats each.
    unsafe {
        _mm256_storeu_ps(los.as_mut_ptr(), vlo);
        _mm256_storeu_ps(his.as_mut_ptr(), vhi);
    }
    let tail = row
        .iter()
        .enumerate()
        .skip(body)
        .filter(|&(c, _)| !is_outlier(o, c))
        .map(|(_, &v)| v);
    let (mut lo, mut hi) = (0.0f32, 0.0f32);
    for v in los.iter().chain(&his).copied().chain(tail) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
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
