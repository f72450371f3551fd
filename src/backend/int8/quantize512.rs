//! `pack::quantize_panel` with AVX-512F for the AVX-512 VNNI path (8-row panels): the same
//! outliers, ranges, parameters and levels as the portable and AVX2 versions, in fewer and
//! shorter passes. The AVX2 version kept one top-2 per lane in a single dependency chain
//! (compare, then blend, per 8 values) and merged 16 candidates in scalar code; here two
//! independent chains of 16 lanes each run side by side and are merged lane-wise in
//! registers, down to one lane, and the levels of 8 rows x 16 k become their 4 K groups
//! with one 2-source permute, stored as two full zmm.
//!
//! Rows holding NaN may get other parameters than on the other paths (as between the AVX2
//! and portable versions): which lane sees a NaN last decides what `vminps` keeps.

use super::pack::{level, row_params, set_outliers_to_zero_point, RowParams};
use super::{Outliers, K_GROUP, OUTLIERS};
use std::arch::x86_64::*;

/// Rows per panel (the AVX-512 VNNI tile's).
pub(super) const MR: usize = super::vnni::MR512;

/// Quantizes the `rows <= 8` rows of one 8-row panel (see `pack::quantize_panel`).
///
/// # Safety
/// The CPU has AVX-512F; `x` holds `rows` rows of `k` floats, then possibly the next panel's
/// rows (which are only prefetched); `panel` holds
/// `ceil(k / 4) · 8 · 4` bytes; `p`'s slices hold `rows` values each.
#[target_feature(enable = "avx512f,avx2")]
pub(super) unsafe fn quantize_panel(
    x: &[f32],
    rows: usize,
    k: usize,
    levels: u8,
    panel: &mut [u8],
    p: RowParams<'_>,
) {
    assert!(rows <= MR && x.len() >= rows * k && panel.len() >= k.div_ceil(K_GROUP) * MR * 4);
    let (mut inv, mut zf) = ([0.0f32; MR], [0.0f32; MR]);
    for i in 0..rows {
        let row = &x[i * k..(i + 1) * k];
        // The first pass over each row reads it from L2 or memory: it asks for the next row
        // (the next panel's first) as it goes.
        let next = x.get((i + 1) * k..).unwrap_or_default();
        // SAFETY: AVX-512F (caller's contract).
        let o = unsafe { select_outliers(row, &next[..k.min(next.len())]) };
        // SAFETY: AVX-512F (caller's contract).
        let (lo, hi) = unsafe { min_max(row, &o) };
        let (t, iv, z) = row_params(lo, hi, levels);
        (p.scale[i], p.zero[i], p.outliers[i], inv[i], zf[i]) = (t, z, o, iv, z as f32);
    }
    let body = k / 16 * 16;
    let (vmin, vmax) = (_mm512_setzero_si512(), _mm512_set1_epi32(levels as i32));
    // Rows 0..4 x groups 0..4 (4 bytes each, element `4r + g`) in `lo`, rows 4..8 in `hi`
    // (elements `16 + 4(r − 4) + g`) -> groups 0 and 1 of rows 0..8, then groups 2 and 3.
    let order = |g0: i32| {
        let e = |e: i32| {
            let (g, r) = (g0 + e / 8, e % 8);
            if r < 4 {
                4 * r + g
            } else {
                16 + 4 * (r - 4) + g
            }
        };
        _mm512_setr_epi32(
            e(0),
            e(1),
            e(2),
            e(3),
            e(4),
            e(5),
            e(6),
            e(7),
            e(8),
            e(9),
            e(10),
            e(11),
            e(12),
            e(13),
            e(14),
            e(15),
        )
    };
    let (order01, order23) = (order(0), order(2));
    for kk in (0..body).step_by(16) {
        // The 16 levels of row `r` at `kk`, as bytes (0 for rows past the panel's).
        let bytes = |r: usize| {
            if r >= rows {
                return _mm_setzero_si128();
            }
            // SAFETY: row `r < rows`, `kk + 16 <= k`: inside `x` (asserted).
            let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(r * k + kk)) };
            let q = _mm512_cvtps_epi32(_mm512_add_ps(
                _mm512_mul_ps(v, _mm512_set1_ps(inv[r])),
                _mm512_set1_ps(zf[r]),
            ));
            _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(q, vmin), vmax))
        };
        let quad = |r: usize| {
            let v = _mm512_castsi128_si512(bytes(r));
            let v = _mm512_inserti32x4::<1>(v, bytes(r + 1));
            let v = _mm512_inserti32x4::<2>(v, bytes(r + 2));
            _mm512_inserti32x4::<3>(v, bytes(r + 3))
        };
        let (lo, hi) = (quad(0), quad(4));
        // Groups `kk / 4 ..+ 4` of the panel: 4 x 8 rows x 4 bytes, contiguous.
        let d = kk / K_GROUP * MR * K_GROUP;
        // SAFETY: `d + 128 <= ceil(k / 4) · 32` since `kk + 16 <= k` (asserted length).
        unsafe {
            let out = panel.as_mut_ptr().add(d);
            _mm512_storeu_si512(out.cast(), _mm512_permutex2var_epi32(lo, order01, hi));
            _mm512_storeu_si512(
                out.add(64).cast(),
                _mm512_permutex2var_epi32(lo, order23, hi),
            );
        }
    }
    for i in 0..rows {
        for kk in body..k {
            let v = x[i * k + kk];
            panel[(kk / K_GROUP * MR + i) * K_GROUP + kk % K_GROUP] =
                level(v, inv[i], zf[i], levels as f32);
        }
        set_outliers_to_zero_point(&p.outliers[i], p.zero[i], panel, MR, K_GROUP, i);
    }
}

/// The two largest `|x|` seen by each of 16 lanes, largest first (magnitude, column as i32,
/// value); empty entries have magnitude −1, column 0 and value 0.
#[derive(Clone, Copy)]
struct Top2 {
    m: [__m512; 2],
    i: [__m512i; 2],
    v: [__m512; 2],
}

impl Top2 {
    #[target_feature(enable = "avx512f")]
    fn new() -> Top2 {
        Top2 {
            m: [_mm512_set1_ps(-1.0); 2],
            i: [_mm512_setzero_si512(); 2],
            v: [_mm512_setzero_ps(); 2],
        }
    }

    /// Offers the lanes of `valid` (values `v` at columns `ix`), in increasing column order
    /// per lane: a strictly larger magnitude replaces, so ties keep the earlier column.
    #[target_feature(enable = "avx512f")]
    fn offer(&mut self, valid: __mmask16, v: __m512, ix: __m512i) {
        let a = _mm512_abs_ps(v);
        let gt1 = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(valid, a, self.m[0]);
        let gt2 = _mm512_mask_cmp_ps_mask::<_CMP_GT_OQ>(valid, a, self.m[1]);
        self.m[1] = _mm512_mask_blend_ps(gt1, _mm512_mask_blend_ps(gt2, self.m[1], a), self.m[0]);
        self.i[1] =
            _mm512_mask_blend_epi32(gt1, _mm512_mask_blend_epi32(gt2, self.i[1], ix), self.i[0]);
        self.v[1] = _mm512_mask_blend_ps(gt1, _mm512_mask_blend_ps(gt2, self.v[1], v), self.v[0]);
        self.m[0] = _mm512_mask_blend_ps(gt1, self.m[0], a);
        self.i[0] = _mm512_mask_blend_epi32(gt1, self.i[0], ix);
        self.v[0] = _mm512_mask_blend_ps(gt1, self.v[0], v);
    }

    /// Lanes where entry `a` of `self` comes before entry `b` of `o`: larger magnitude, or
    /// the same magnitude at a lower column.
    #[target_feature(enable = "avx512f")]
    fn before(&self, a: usize, o: &Top2, b: usize) -> __mmask16 {
        let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.m[a], o.m[b]);
        let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.m[a], o.m[b]);
        gt | (eq & _mm512_cmplt_epi32_mask(self.i[a], o.i[b]))
    }

    /// Lane by lane, the two first of `self`'s and `o`'s four entries (the same order: the
    /// two lists are each sorted, so the first is one of the two heads).
    #[target_feature(enable = "avx512f")]
    fn merge(&self, o: &Top2) -> Top2 {
        // `o` leads: then second is `o`'s second or `self`'s first; else `o`'s first or
        // `self`'s second.
        let lead = o.before(0, self, 0);
        let o2 = o.before(1, self, 0);
        let o1 = o.before(0, self, 1);
        let pick = |a: [__m512i; 4]| {
            // a = [self 0, self 1, o 0, o 1]
            let first = _mm512_mask_blend_epi32(lead, a[0], a[2]);
            let if_lead = _mm512_mask_blend_epi32(o2, a[0], a[3]);
            let if_not = _mm512_mask_blend_epi32(o1, a[1], a[2]);
            [first, _mm512_mask_blend_epi32(lead, if_not, if_lead)]
        };
        let ps = |a: [__m512; 4]| {
            pick(a.map(|v| _mm512_castps_si512(v))).map(|v| _mm512_castsi512_ps(v))
        };
        Top2 {
            m: ps([self.m[0], self.m[1], o.m[0], o.m[1]]),
            i: pick([self.i[0], self.i[1], o.i[0], o.i[1]]),
            v: ps([self.v[0], self.v[1], o.v[0], o.v[1]]),
        }
    }

    /// Every lane's entries moved by `f` (a lane permutation), to merge with.
    #[target_feature(enable = "avx512f")]
    fn moved(&self, f: impl Fn(__m512i) -> __m512i) -> Top2 {
        let fp = |v: __m512| _mm512_castsi512_ps(f(_mm512_castps_si512(v)));
        Top2 {
            m: self.m.map(fp),
            i: self.i.map(&f),
            v: self.v.map(fp),
        }
    }
}

/// `pack::select_outliers` with AVX-512F (same result: the two largest `|x|`, ties to the
/// lower column, NaN never chosen, unused slots 0 at column 0). Asks for the lines of `next`
/// into L1 as it goes.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn select_outliers(row: &[f32], next: &[f32]) -> Outliers {
    const _: () = assert!(OUTLIERS == 2, "the SIMD selection keeps two per lane");
    let n = row.len();
    let (mut even, mut odd) = (Top2::new(), Top2::new());
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_set1_epi32(16);
    let mut c = 0;
    // Two chains (vectors 0, 2, 4, … and 1, 3, 5, …): each lane still sees its columns in
    // increasing order.
    while c + 32 <= n {
        // SAFETY: `c + 32 <= n`.
        let (v0, v1) = unsafe {
            (
                _mm512_loadu_ps(row.as_ptr().add(c)),
                _mm512_loadu_ps(row.as_ptr().add(c + 16)),
            )
        };
        for line in [c, c + 16] {
            if line < next.len() {
                _mm_prefetch::<_MM_HINT_T0>(next.as_ptr().wrapping_add(line).cast());
            }
        }
        even.offer(!0, v0, idx);
        odd.offer(!0, v1, _mm512_add_epi32(idx, step));
        idx = _mm512_add_epi32(idx, _mm512_set1_epi32(32));
        c += 32;
    }
    while c < n {
        let len = (n - c).min(16);
        let valid = ((1u32 << len) - 1) as __mmask16;
        // SAFETY: only the `len` lanes with `c + lane < n` are read.
        let v = unsafe { _mm512_maskz_loadu_ps(valid, row.as_ptr().add(c)) };
        even.offer(valid, v, idx);
        idx = _mm512_add_epi32(idx, step);
        c += 16;
    }
    let t = even.merge(&odd);
    let t = t.merge(&t.moved(|v| _mm512_shuffle_i32x4::<0b11_10_11_10>(v, v)));
    let t = t.merge(&t.moved(|v| _mm512_shuffle_i32x4::<0b01_01_01_01>(v, v)));
    let t = t.merge(&t.moved(|v| _mm512_shuffle_epi32::<0b11_10_11_10>(v)));
    let t = t.merge(&t.moved(|v| _mm512_shuffle_epi32::<0b01_01_01_01>(v)));
    let lane0 = |v: __m512i| _mm_cvtsi128_si32(_mm512_castsi512_si128(v));
    Outliers {
        idx: t.i.map(|v| lane0(v) as u32),
        val: t
            .v
            .map(|v| f32::from_bits(lane0(_mm512_castps_si512(v)) as u32)),
    }
}

/// `(min(0, row), max(0, row))` over the columns that are not outliers (`pack::is_outlier`:
/// a slot of value 0 excludes nothing).
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn min_max(row: &[f32], o: &Outliers) -> (f32, f32) {
    let n = row.len();
    let skip = |s: usize| if o.val[s] != 0.0 { o.idx[s] as i32 } else { -1 };
    let (x0, x1) = (_mm512_set1_epi32(skip(0)), _mm512_set1_epi32(skip(1)));
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for c in (0..n).step_by(16) {
        let len = (n - c).min(16);
        let valid = ((1u32 << len) - 1) as __mmask16;
        // Outliers and lanes past the row read as 0, which the range holds anyway.
        let keep = valid & !_mm512_cmpeq_epi32_mask(idx, x0) & !_mm512_cmpeq_epi32_mask(idx, x1);
        // SAFETY: only lanes with `c + lane < n` are read.
        let v = unsafe { _mm512_maskz_loadu_ps(keep, row.as_ptr().add(c)) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
        idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16));
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}
