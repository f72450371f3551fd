//! Evaluation metrics of GLUE: accuracy (every task, as `run_classifier.metric_fn`), F1 of
//! the positive class (MRPC) and the Matthews correlation coefficient (CoLA), as
//! scikit-learn's `f1_score` / `matthews_corrcoef` define them (0 when undefined).

/// Fraction of `predictions` equal to `labels`; 0 for no examples.
pub fn accuracy(predictions: &[u32], labels: &[u32]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let right = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    right as f64 / labels.len() as f64
}

/// `(tp, fp, fn, tn)` with `positive` as the positive class.
fn confusion(predictions: &[u32], labels: &[u32], positive: u32) -> (f64, f64, f64, f64) {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &l) in predictions.iter().zip(labels) {
        match (p == positive, l == positive) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    (tp, fp, fn_, tn)
}

/// F1 of class `positive`: `2·tp / (2·tp + fp + fn)`; 0 when there is no positive
/// prediction or label.
pub fn f1(predictions: &[u32], labels: &[u32], positive: u32) -> f64 {
    let (tp, fp, fn_, _) = confusion(predictions, labels, positive);
    let d = 2.0 * tp + fp + fn_;
    if d == 0.0 {
        0.0
    } else {
        2.0 * tp / d
    }
}

/// Matthews correlation of a binary task (`positive` vs the rest):
/// `(tp·tn − fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))`; 0 when a factor is 0.
pub fn matthews_corrcoef(predictions: &[u32], labels: &[u32], positive: u32) -> f64 {
    let (tp, fp, fn_, tn) = confusion(predictions, labels, positive);
    let d = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
    if d == 0.0 {
        0.0
    } else {
        (tp * tn - fp * fn_) / d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // tp=2 (i0,i1), fn=1 (i2), fp=1 (i3), tn=2 (i4,i5)
        let l = [1, 1, 1, 0, 0, 0];
        let p = [1, 1, 0, 1, 0, 0];
        assert!((accuracy(&p, &l) - 4.0 / 6.0).abs() < 1e-12);
        assert!((f1(&p, &l, 1) - 4.0 / 6.0).abs() < 1e-12);
        // (2·2 − 1·1)/sqrt(3·3·3·3) = 3/9
        assert!((matthews_corrcoef(&p, &l, 1) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(matthews_corrcoef(&[1, 1], &[1, 0], 1), 0.0);
        assert_eq!(matthews_corrcoef(&[1, 0], &[0, 1], 1), -1.0);
        assert_eq!(f1(&[0, 0], &[0, 0], 1), 0.0);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }
}
