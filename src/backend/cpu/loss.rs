//! Soft-max cross-entropy of logits rows against integer labels: every head's loss (the
//! classifier's labels, SQuAD's start and end positions, the masked LM's ids, the next
//! sentence label) is this op with the head's own weighting.

/// Per row of `logits: [labels.len(), width]`: `−log_softmax(row)[label]` (f64). Writes the
/// log-probabilities into `log_probs` and `(softmax − onehot) · scale` into `dlogits` when
/// given (f32, from the f64 soft-max).
pub(crate) fn softmax_cross_entropy(
    logits: &[f32],
    width: usize,
    labels: &[u32],
    mut log_probs: Option<&mut [f32]>,
    mut dlogits: Option<(&mut [f32], &[f32])>,
) -> Vec<f64> {
    let mut losses = Vec::with_capacity(labels.len());
    for (r, &label) in labels.iter().enumerate() {
        let row = &logits[r * width..][..width];
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        let log_z = max + sum.ln();
        losses.push(log_z - row[label as usize] as f64);
        if let Some(lp) = log_probs.as_deref_mut() {
            for (o, &v) in lp[r * width..][..width].iter_mut().zip(row) {
                *o = (v as f64 - log_z) as f32;
            }
        }
        if let Some((d, scales)) = dlogits.as_mut() {
            let scale = scales[r];
            let dr = &mut d[r * width..][..width];
            for (o, &v) in dr.iter_mut().zip(row) {
                *o = ((v as f64 - log_z).exp() * scale as f64) as f32;
            }
            dr[label as usize] -= scale;
        }
    }
    losses
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss and gradient against central differences of the f64 loss.
    #[test]
    fn cross_entropy_and_its_gradient() {
        let logits = [0.3f32, -1.2, 2.0, 0.7, 5.0, -3.0];
        let labels = [2u32, 0];
        let scales = [0.5f32, 2.0];
        let mut d = vec![0.0; 6];
        let mut lp = vec![0.0; 6];
        let losses =
            softmax_cross_entropy(&logits, 3, &labels, Some(&mut lp), Some((&mut d, &scales)));
        let loss = |z: &[f64], label: usize| {
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - z[label]
        };
        for r in 0..2 {
            let z: Vec<f64> = logits[r * 3..][..3].iter().map(|&v| v as f64).collect();
            let l = labels[r] as usize;
            assert!((losses[r] - loss(&z, l)).abs() < 1e-12);
            assert!((lp[r * 3 + l] as f64 + losses[r]).abs() < 1e-6);
            for j in 0..3 {
                let (mut a, mut b) = (z.clone(), z.clone());
                a[j] += 1e-6;
                b[j] -= 1e-6;
                let fd = (loss(&a, l) - loss(&b, l)) / 2e-6 * scales[r] as f64;
                assert!((fd - d[r * 3 + j] as f64).abs() < 1e-6, "{r} {j}");
            }
        }
    }
}
