//! run_classifier.py: `metric_fn` of the evaluation, and the `eval_results.txt` it writes.
//!
//! Accuracy, the mean cross-entropy per example (`eval_loss`), the mean of per-batch mean
//! losses (tf.estimator's `loss`), and for two labels F1 and Matthews correlation of label 1
//! (Google's MRPC and CoLA metrics).

use super::features::{pad, InputFeatures};
use super::metrics;
use super::model::Classifier;
use crate::backend::Backend;
use crate::model::Context;
use crate::{Error, Result};

/// What an evaluation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResults {
    /// Fraction of examples whose arg-max logit is the gold label.
    pub accuracy: f64,
    /// Mean cross-entropy over examples (`eval_loss`).
    pub loss: f64,
    /// Mean of the per-batch mean losses (tf.estimator's `loss`).
    pub batch_mean_loss: f64,
    /// F1 of label 1 (MRPC's metric); `None` unless there are exactly two labels.
    pub f1: Option<f64>,
    /// Matthews correlation of label 1 (CoLA's metric); `None` unless there are two labels.
    pub mcc: Option<f64>,
    pub num_examples: usize,
    /// Predicted label id of every example.
    pub predictions: Vec<u32>,
}

impl EvalResults {
    /// `eval_results.txt` as Google writes it: `key = value` lines sorted by key
    /// (`eval_accuracy`, `eval_loss`, `global_step`, `loss`, plus `eval_f1` for MRPC and
    /// `eval_mcc` for CoLA), numbers printed as Python prints a float32.
    pub fn to_eval_results_txt(&self, task_name: &str, global_step: u64) -> String {
        let f = |x: f64| (x as f32).to_string();
        let mut results: Vec<(&str, String)> = vec![
            ("eval_accuracy", f(self.accuracy)),
            ("eval_loss", f(self.loss)),
            ("global_step", global_step.to_string()),
            ("loss", f(self.batch_mean_loss)),
        ];
        match task_name.to_ascii_lowercase().as_str() {
            "mrpc" => results.push(("eval_f1", f(self.f1.unwrap_or(0.0)))),
            "cola" => results.push(("eval_mcc", f(self.mcc.unwrap_or(0.0)))),
            _ => {}
        }
        results.sort();
        results
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }
}

/// Runs `features` through `classifier` (on any back end), `batch_size` at a time, and scores the predictions
/// against their `label_id`s. No examples is [`Error::EmptyData`].
pub fn evaluate<B: Backend>(
    classifier: &Classifier<B>,
    ctx: &mut Context<B>,
    features: &[InputFeatures],
    batch_size: usize,
) -> Result<EvalResults> {
    if features.is_empty() {
        return Err(Error::EmptyData("no evaluation examples".into()));
    }
    let n = classifier.num_labels();
    if let Some(f) = features.iter().find(|f| f.label_id as usize >= n) {
        return Err(Error::Label(format!(
            "label id {} is not below the {n} labels of the classifier",
            f.label_id
        )));
    }
    let (mut predictions, mut gold) = (Vec::new(), Vec::new());
    let (mut loss_sum, mut batch_loss_sum, mut batches) = (0.0f64, 0.0f64, 0usize);
    for chunk in features.chunks(batch_size.max(1)) {
        let refs: Vec<&InputFeatures> = chunk.iter().collect();
        let batch = pad(&refs);
        let logits = classifier.logits(ctx, &batch.inputs())?;
        let mut batch_loss = 0.0f64;
        for (row, f) in logits.chunks_exact(n).zip(chunk) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v as f64 - max).exp())
                    .sum::<f64>()
                    .ln();
            batch_loss += lse - row[f.label_id as usize] as f64;
            // The first of equal maxima, as numpy's argmax.
            let arg = (0..n)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            predictions.push(arg as u32);
            gold.push(f.label_id);
        }
        loss_sum += batch_loss;
        batch_loss_sum += batch_loss / chunk.len() as f64;
        batches += 1;
    }
    let two = n == 2;
    Ok(EvalResults {
        accuracy: metrics::accuracy(&predictions, &gold),
        loss: loss_sum / gold.len() as f64,
        batch_mean_loss: batch_loss_sum / batches as f64,
        f1: two.then(|| metrics::f1(&predictions, &gold, 1)),
        mcc: two.then(|| metrics::matthews_corrcoef(&predictions, &gold, 1)),
        num_examples: gold.len(),
        predictions,
    })
}
