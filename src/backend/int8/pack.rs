//! Packing: weights into the layout of `int8.rs` (once), activations into u8 row panels (per
//! call).

use super::{QuantizedKernel, QuantizedRows, K_GROUP, PANEL_COLS};

/// Packs `q.values` (`[in, out]`) into the version-1 layout (see the module docs).
pub(super) fn pack_weights(q: &QuantizedKernel) -> Vec<u8> {
    let (k, n) = (q.in_dim, q.out_dim);
    let groups = k.div_ceil(K_GROUP);
    let panels = n.div_ceil(PANEL_COLS);
    let mut out = vec![0u8; super::packed_len(k, n)];
    for p in 0..panels {
        for g in 0..groups {
            let base = (p * groups + g) * PANEL_COLS * K_GROUP;
            for c in 0..PANEL_COLS {
                let col = p * PANEL_COLS + c;
                if col >= n {
                    break;
                }
                for t in 0..K_GROUP {
                    let row = g * K_GROUP + t;
                    if row < k {
                        out[base + c * K_GROUP + t] = q.values[row * n + col] as u8;
                    }
                }
            }
        }
    }
    out
}

/// `Σ_i q[i][o]` for every column `o < out` of a packed kernel (whose length was checked).
pub(super) fn column_sums(packed: &[u8], in_dim: usize, out_dim: usize) -> Vec<i32> {
    let groups = in_dim.div_ceil(K_GROUP);
    let panels = out_dim.div_ceil(PANEL_COLS);
    let mut sums = vec![0i32; panels * PANEL_COLS];
    for (p, panel) in packed.chunks_exact(groups * 64).enumerate().take(panels) {
        for group in panel.chunks_exact(64) {
            for (c, col) in group.chunks_exact(K_GROUP).enumerate() {
                sums[p * PANEL_COLS + c] += col.iter().map(|&b| b as i8 as i32).sum::<i32>();
            }
        }
    }
    sums.truncate(out_dim);
    sums
}

/// Quantizes `x: [rows, k]` per row to asymmetric u8 (range widened to include 0; see the
/// module docs) and packs it into `mr`-row panels: per K group, `mr` rows of 4 bytes. Padding
/// (K past `k`, rows past `rows`) is 0, which meets only zero weights or is never stored.
pub(super) fn quantize_rows(x: &[f32], rows: usize, k: usize, mr: usize, q: &mut QuantizedRows) {
    let groups = k.div_ceil(K_GROUP);
    let len = rows.div_ceil(mr) * mr * groups * K_GROUP;
    q.data.clear();
    q.data.resize(len, 0);
    q.scale.clear();
    q.zero.clear();
    for r in 0..rows {
        let row = &x[r * k..(r + 1) * k];
        let (lo, hi) = row
            .iter()
            .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let step = (hi - lo) / 255.0;
        let (inv, zero) = if step > 0.0 {
            // `-lo / step ∈ [0, 255]`; `as` saturates anything odd (NaN -> 0).
            (1.0 / step, (-lo / step).round() as u8 as i32)
        } else {
            (0.0, 0)
        };
        q.scale.push(step);
        q.zero.push(zero);
        let panel = &mut q.data[r / mr * mr * groups * K_GROUP..];
        let i = r % mr;
        for (kk, &v) in row.iter().enumerate() {
            let a = ((v * inv).round() + zero as f32).clamp(0.0, 255.0) as u8;
            panel[(kk / K_GROUP * mr + i) * K_GROUP + kk % K_GROUP] = a;
        }
    }
}
