//! Packing: weights into the layout of `int8.rs` (once), activations into u8 row panels (per
//! call).

use super::{
    Outliers, QuantizedKernel, QuantizedRows, Spec, K_CHUNK, K_GROUP, OUTLIERS, PANEL_COLS,
};
use crate::backend::Pool;

/// Packs `q.values` (`[in, out]`) into the version-1 layout (see the module docs).
pub(super) fn pack_weights(q: &QuantizedKernel) -> Vec<u8> {
    let (k, n) = (q.in_dim, q.out_dim);
    let groups = k.div_ceil(K_GROUP);
    let mut out = vec![0u8; super::packed_len(k, n)];
    if groups == 0 {
        return out;
    }
    for (p, panel) in out.chunks_exact_mut(groups * 64).enumerate() {
        for (g, group) in panel.chunks_exact_mut(64).enumerate() {
            for (c, col) in group.chunks_exact_mut(K_GROUP).enumerate() {
                let j = p * PANEL_COLS + c;
                for (t, byte) in col.iter_mut().enumerate() {
                    let i = g * K_GROUP + t;
                    if i < k && j < n {
                        *byte = q.values[i * n + j] as u8;
                    }
                }
            }
        }
    }
    out
}

/// `Σ_i q[i][o]` over each K chunk (`K_CHUNK` values of `i`) for every column `o < out` of
/// a packed kernel (whose length was checked): `[chunks][out]`, at least one chunk (of
/// zeros when K = 0). The i32 sums of `int8.rs` are per chunk, and so is the zero point's
/// share `z · Σ q` that each chunk's epilogue takes off.
pub(super) fn column_sums(packed: &[u8], in_dim: usize, out_dim: usize) -> Vec<i32> {
    let groups = in_dim.div_ceil(K_GROUP);
    let panels = out_dim.div_ceil(PANEL_COLS);
    let chunk = K_CHUNK / K_GROUP;
    let chunks = groups.div_ceil(chunk).max(1);
    let mut sums = vec![0i32; chunks * out_dim];
    if groups > 0 {
        for (p, panel) in packed.chunks_exact(groups * 64).enumerate().take(panels) {
            for (g, group) in panel.chunks_exact(64).enumerate() {
                let row = &mut sums[g / chunk * out_dim..][..out_dim];
                for (c, col) in group.chunks_exact(K_GROUP).enumerate() {
                    if let Some(s) = row.get_mut(p * PANEL_COLS + c) {
                        *s += col.iter().map(|&b| b as i8 as i32).sum::<i32>();
                    }
                }
            }
        }
    }
    sums
}

/// Step, its inverse and the zero point that map a row with values in `[lo, hi]` onto
/// `0..=levels` (the range is widened to include 0, so 0 maps to the integer `z` exactly).
/// A row of zeros (or too narrow a range to invert) gets step 0: every value becomes `z = 0`.
pub(super) fn row_params(lo: f32, hi: f32, levels: u8) -> (f32, f32, i32) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let step = (hi - lo) / levels as f32;
    let inv = 1.0 / step;
    if !(step > 0.0 && inv.is_finite()) {
        return (0.0, 0.0, 0);
    }
    let z = (-lo * inv).round_ties_even().clamp(0.0, levels as f32) as i32;
    (step, inv, z)
}

/// The level of `v`: `clamp(round_half_even(v · inv + z), 0, levels)` (NaN -> 0). The AVX2
/// version computes exactly this (same operations, no FMA).
#[inline]
pub(super) fn level(v: f32, inv: f32, zf: f32, levels: f32) -> u8 {
    (v * inv + zf).round_ties_even().clamp(0.0, levels) as u8
}

/// Quantizes `x: [rows, k]` row by row onto `0..=spec.levels` and packs it into `spec.mr`-row
/// panels: per group of `spec.ka` k values, `mr` rows of `ka` bytes (levels, or `level − 128`
/// as i8 for a `signed` spec). Bytes past `k` in the last group and rows past
/// `rows` in the last panel keep whatever they held: they meet only zero weights, or give
/// tile rows that are never stored. Rows are split across `threads` of `pool` when large.
pub(super) fn quantize_rows(
    x: &[f32],
    rows: usize,
    k: usize,
    spec: Spec,
    q: &mut QuantizedRows,
    pool: &Pool,
    threads: usize,
) {
    let mr = spec.mr;
    let groups = k.div_ceil(K_GROUP);
    let rpanels = rows.div_ceil(mr);
    let panel_len = spec.a_panel_len(groups);
    let len = rpanels * panel_len;
    if q.data.len() < len {
        q.data.resize(len, 0);
    }
    q.scale.resize(rows, 0.0);
    q.zero.resize(rows, 0);
    q.outliers.resize(rows, Outliers::default());
    if groups == 0 {
        q.scale.fill(0.0);
        q.zero.fill(0);
        q.outliers.fill(Outliers::default());
        return;
    }
    let parts = if rows * k >= 1 << 15 {
        threads.min(rpanels)
    } else {
        1
    };
    let dst = Dst {
        data: q.data.as_mut_ptr(),
        scale: q.scale.as_mut_ptr(),
        zero: q.zero.as_mut_ptr(),
        outliers: q.outliers.as_mut_ptr(),
    };
    let task = |t: usize| {
        let dst: Dst = dst;
        for p in t * rpanels / parts..(t + 1) * rpanels / parts {
            // SAFETY: panel `p < rpanels` lies inside `data` (resized to `rpanels ·
            // panel_len` above); each task owns whole panels, and the rows and their
            // scale/zero entries inside them, so no two tasks write the same byte; `q` stays
            // mutably borrowed until `pool.run` returns.
            let panel =
                unsafe { std::slice::from_raw_parts_mut(dst.data.add(p * panel_len), panel_len) };
            let r0 = p * mr;
            let nrows = mr.min(rows - r0);
            // SAFETY: rows `r0..r0+nrows` of `scale`, `zero` and `outliers` (length `rows`)
            // belong to this task's panel.
            let params = unsafe {
                RowParams {
                    scale: std::slice::from_raw_parts_mut(dst.scale.add(r0), nrows),
                    zero: std::slice::from_raw_parts_mut(dst.zero.add(r0), nrows),
                    outliers: std::slice::from_raw_parts_mut(dst.outliers.add(r0), nrows),
                }
            };
            quantize_panel(spec, &x[r0 * k..rows * k], nrows, k, panel, params);
        }
    };
    if parts <= 1 {
        task(0);
    } else {
        pool.run(parts, &task);
    }
}

/// Where one panel's rows put their parameters (`[rows]` each).
pub(super) struct RowParams<'a> {
    pub scale: &'a mut [f32],
    pub zero: &'a mut [i32],
    pub outliers: &'a mut [Outliers],
}

/// Quantizes the `rows <= spec.mr` rows of one panel (the first `[rows, k]` of `x_on`, whose
/// later rows, if any, follow it in memory) and writes their parameters.
fn quantize_panel(
    spec: Spec,
    x_on: &[f32],
    rows: usize,
    k: usize,
    panel: &mut [u8],
    p: RowParams<'_>,
) {
    let x = &x_on[..rows * k];
    #[cfg(all(target_arch = "x86_64", bert_vnni))]
    if spec.zmm && spec.mr == super::quantize512::MR {
        // SAFETY: `spec.zmm` is set only for the AVX-512 VNNI path (AVX-512F), checked
        // available when the layer was built; the slices have the documented lengths.
        unsafe { super::quantize512::quantize_panel(x_on, rows, k, spec.levels, panel, p) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if spec.simd && spec.mr % 4 == 0 {
        // SAFETY: `spec.simd` is set only for paths that need AVX2, which were checked
        // available when the layer was built; the slices have the documented lengths.
        unsafe { super::x86::quantize_panel(x, rows, k, spec.mr, spec.levels, panel, p) };
        return;
    }
    let (mr, ka) = (spec.mr, spec.ka);
    // `level − 128` as i8 is the level with its top bit flipped.
    let flip = if spec.signed { 0x80 } else { 0 };
    for (i, row) in x.chunks_exact(k).enumerate().take(rows) {
        let o = select_outliers(row);
        let (lo, hi) = row
            .iter()
            .enumerate()
            .filter(|&(c, _)| !is_outlier(&o, c))
            .fold((0.0f32, 0.0f32), |(lo, hi), (_, &v)| (lo.min(v), hi.max(v)));
        let (step, inv, z) = row_params(lo, hi, spec.levels);
        let (zf, levels) = (z as f32, spec.levels as f32);
        for (kk, &v) in row.iter().enumerate() {
            panel[(kk / ka * mr + i) * ka + kk % ka] = level(v, inv, zf, levels) ^ flip;
        }
        let z = z - i32::from(flip);
        set_outliers_to_zero_point(&o, z, panel, mr, ka, i);
        (p.scale[i], p.zero[i], p.outliers[i]) = (step, z, o);
    }
}

/// The [`OUTLIERS`] largest `|x|` of a row, largest first, ties to the lower index (NaN is
/// never chosen). Slots not filled (rows shorter than that) keep value 0.
pub(super) fn select_outliers(row: &[f32]) -> Outliers {
    let mut o = Outliers::default();
    let mut mag = [-1.0f32; OUTLIERS];
    for (c, &v) in row.iter().enumerate() {
        let a = v.abs();
        if a > mag[OUTLIERS - 1] {
            let mut p = OUTLIERS - 1;
            while p > 0 && a > mag[p - 1] {
                (mag[p], o.idx[p], o.val[p]) = (mag[p - 1], o.idx[p - 1], o.val[p - 1]);
                p -= 1;
            }
            (mag[p], o.idx[p], o.val[p]) = (a, c as u32, v);
        }
    }
    o
}

/// Whether column `c` is one of the row's outliers. A slot of value 0 counts as none: a zero
/// is exact in the int8 range anyway, and so an unused slot excludes nothing.
pub(super) fn is_outlier(o: &Outliers, c: usize) -> bool {
    o.idx
        .iter()
        .zip(&o.val)
        .any(|(&i, &v)| i as usize == c && v != 0.0)
}

/// Gives the outliers' bytes of row `i` (groups of `ka` k values) the level `z` (as u8, or
/// as i8 when the panel is signed), so that `a − z = 0`: the int8 sum leaves them to the f32
/// correction of the epilogue.
pub(super) fn set_outliers_to_zero_point(
    o: &Outliers,
    z: i32,
    panel: &mut [u8],
    mr: usize,
    ka: usize,
    i: usize,
) {
    for (&c, &v) in o.idx.iter().zip(&o.val) {
        if v != 0.0 {
            let c = c as usize;
            panel[(c / ka * mr + i) * ka + c % ka] = z as u8;
        }
    }
}

/// Where `quantize_rows` tasks write (disjoint parts of the three buffers).
#[derive(Clone, Copy)]
struct Dst {
    data: *mut u8,
    scale: *mut f32,
    zero: *mut i32,
    outliers: *mut Outliers,
}
// SAFETY: tasks write disjoint panels and rows, and the buffers outlive `pool.run`.
unsafe impl Send for Dst {}
// SAFETY: as above.
unsafe impl Sync for Dst {}
