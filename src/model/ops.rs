//! Element-wise and reduction kernels the model needs beyond `backend::cpu`: ReLU and the
//! sentence-embedding poolings. Kept here, small and separate, so a back end that wants its
//! own versions can take them over together with the rest.

/// `max(x, 0)` in place.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// Masked mean over the sequence: `x: [batch, seq, width]`, `mask: [batch, seq]` (0/1) ->
/// `out: [batch, width]`. A row with no real token gives zeros (sentence-transformers clamps
/// the count to 1e-9, which gives the same zeros).
pub fn masked_mean(x: &[f32], mask: &[u32], seq: usize, width: usize, out: &mut [f32]) {
    for (b, o) in out.chunks_exact_mut(width).enumerate() {
        o.fill(0.0);
        let mut count = 0usize;
        for t in 0..seq {
            if mask[b * seq + t] != 0 {
                count += 1;
                let row = &x[(b * seq + t) * width..][..width];
                for (a, v) in o.iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
        let inv = 1.0 / count.max(1) as f32;
        for a in o.iter_mut() {
            *a *= inv;
        }
    }
}

/// Masked max over the sequence, shapes as [`masked_mean`]. A row with no real token gives
/// zeros.
pub fn masked_max(x: &[f32], mask: &[u32], seq: usize, width: usize, out: &mut [f32]) {
    for (b, o) in out.chunks_exact_mut(width).enumerate() {
        o.fill(f32::NEG_INFINITY);
        let mut any = false;
        for t in 0..seq {
            if mask[b * seq + t] != 0 {
                any = true;
                let row = &x[(b * seq + t) * width..][..width];
                for (a, v) in o.iter_mut().zip(row) {
                    *a = a.max(*v);
                }
            }
        }
        if !any {
            o.fill(0.0);
        }
    }
}

/// Scales each row of `x: [rows, width]` to unit L2 norm, `x / max(|x|, 1e-12)` (PyTorch's
/// `F.normalize`, which sentence-transformers uses).
pub fn l2_normalize_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        let inv = 1.0 / norm;
        for v in row {
            *v *= inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poolings_skip_masked_positions() {
        // batch 2, seq 3, width 2; second sequence has one real token, the third all padding.
        let x = [
            1.0, -1.0, 3.0, 5.0, 100.0, 100.0, 2.0, 4.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let mask = [1, 1, 0, 1, 0, 0];
        let mut out = [0.0; 4];
        masked_mean(&x, &mask, 3, 2, &mut out);
        assert_eq!(out, [2.0, 2.0, 2.0, 4.0]);
        masked_max(&x, &mask, 3, 2, &mut out);
        assert_eq!(out, [3.0, 5.0, 2.0, 4.0]);
        let mut v = [3.0, 4.0, 0.0, 0.0];
        l2_normalize_rows(&mut v, 2);
        assert_eq!(v, [0.6, 0.8, 0.0, 0.0]);
        let mut r = [-1.0, 0.5];
        relu(&mut r);
        assert_eq!(r, [0.0, 0.5]);
    }
}
