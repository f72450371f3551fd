//! `run_pretraining.py`'s `metric_fn` and the `eval_results.txt` its `main` writes.
//!
//! Over all evaluated batches: `masked_lm_accuracy` = Σ w·[arg-max = label] / Σ w and
//! `masked_lm_loss` = Σ w·(−log p[label]) / Σ w over every prediction slot, `w` its
//! `masked_lm_weights` entry (`tf.metrics.accuracy` / `tf.metrics.mean` with weights: padding
//! slots do not count); `next_sentence_accuracy` and `next_sentence_loss` over examples; and
//! `loss`, tf.estimator's mean of the per-batch total losses.

use crate::heads::pretraining::PreTrainingOutput;

/// Sums over the evaluated batches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalTotals {
    /// Σ w over the prediction slots.
    pub masked_lm_weight: f64,
    /// Σ w·`[correct]`.
    pub masked_lm_correct: f64,
    /// Σ w·`(−log p[label])`.
    pub masked_lm_loss: f64,
    pub examples: usize,
    pub next_sentence_correct: usize,
    /// Σ over examples of the next-sentence cross-entropy.
    pub next_sentence_loss: f64,
    /// Σ over batches of the batch's total loss, and the number of batches.
    pub batch_loss: f64,
    pub batches: usize,
}

impl EvalTotals {
    /// Adds one batch: its total loss, its heads' output and its slot weights.
    pub fn add(&mut self, loss: f64, out: &PreTrainingOutput, weights: &[f32]) {
        for (&l, &w) in out.masked_lm_losses.iter().zip(weights) {
            self.masked_lm_weight += w as f64;
            self.masked_lm_loss += w as f64 * l;
        }
        self.masked_lm_correct += out.masked_lm_correct;
        self.examples += out.next_sentence_losses.len();
        self.next_sentence_correct += out.next_sentence_correct;
        self.next_sentence_loss += out.next_sentence_losses.iter().sum::<f64>();
        self.batch_loss += loss;
        self.batches += 1;
    }

    pub fn masked_lm_accuracy(&self) -> f64 {
        ratio(self.masked_lm_correct, self.masked_lm_weight)
    }

    pub fn masked_lm_mean_loss(&self) -> f64 {
        ratio(self.masked_lm_loss, self.masked_lm_weight)
    }

    pub fn next_sentence_accuracy(&self) -> f64 {
        ratio(self.next_sentence_correct as f64, self.examples as f64)
    }

    pub fn next_sentence_mean_loss(&self) -> f64 {
        ratio(self.next_sentence_loss, self.examples as f64)
    }

    pub fn loss(&self) -> f64 {
        ratio(self.batch_loss, self.batches as f64)
    }

    /// `(key, value)` of Google's results, sorted by key, values as the float32s TF reports.
    pub fn results(&self, global_step: u64) -> Vec<(&'static str, String)> {
        vec![
            ("global_step", global_step.to_string()),
            ("loss", py_float32(self.loss())),
            ("masked_lm_accuracy", py_float32(self.masked_lm_accuracy())),
            ("masked_lm_loss", py_float32(self.masked_lm_mean_loss())),
            (
                "next_sentence_accuracy",
                py_float32(self.next_sentence_accuracy()),
            ),
            (
                "next_sentence_loss",
                py_float32(self.next_sentence_mean_loss()),
            ),
        ]
    }

    /// `eval_results.txt`: `key = value` lines sorted by key, as `run_pretraining.py`
    /// writes them.
    pub fn to_eval_results_txt(&self, global_step: u64) -> String {
        self.results(global_step)
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }
}

/// 0 for an empty denominator (TF's metrics report 0 then, not NaN).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// `str(numpy.float32(x))`: the shortest repr of the float32, with `.0` on whole numbers.
fn py_float32(x: f64) -> String {
    let s = (x as f32).to_string();
    if s.contains(['.', 'e', 'N', 'i']) {
        s
    } else {
        s + ".0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_as_metric_fn() {
        let out = PreTrainingOutput {
            masked_lm_losses: vec![1.0, 3.0, 100.0],
            masked_lm_correct: 1.0,
            next_sentence_losses: vec![0.5, 1.5],
            next_sentence_correct: 1,
            ..PreTrainingOutput::default()
        };
        let mut t = EvalTotals::default();
        t.add(4.0, &out, &[1.0, 1.0, 0.0]);
        t.add(2.0, &out, &[1.0, 1.0, 0.0]);
        assert_eq!(t.masked_lm_mean_loss(), 2.0);
        assert_eq!(t.masked_lm_accuracy(), 0.5);
        assert_eq!(t.next_sentence_mean_loss(), 1.0);
        assert_eq!(t.loss(), 3.0);
        assert_eq!(
            t.to_eval_results_txt(7),
            "global_step = 7\nloss = 3.0\nmasked_lm_accuracy = 0.5\nmasked_lm_loss = 2.0\n\
             next_sentence_accuracy = 0.5\nnext_sentence_loss = 1.0\n"
        );
    }
}
