//! `bert classify --do_eval / --do_predict`: the fine-tuned classifier built on the back end
//! `--backend` names (the CPU unless said otherwise), then `eval_results.txt` and
//! `test_results.tsv` as `run_classifier.py` writes them. Kept apart from the training half
//! (classify.rs) so that where evaluation runs does not depend on where training ran.

use std::io::Write;
use std::path::Path;

use bert::backend::Backend;
use bert::classifier::{self, Classifier, InputExample, InputFeatures};
use bert::config::BertConfig;
use bert::tokenizer::Tokenizer;
use bert::{Context, Weights};

use crate::extract_features::write_atomically;
use crate::model_flags::OnDevice;

/// The classifier's parts and what to evaluate and predict.
pub(crate) struct Predict<'a> {
    pub config: BertConfig,
    /// Including the head, in the dtype to run.
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub labels: Vec<String>,
    /// Whether this run fine-tuned the weights (else a missing head is the user's model's).
    pub trained: bool,
    pub global_step: u64,
    pub dev: Option<Vec<InputExample>>,
    pub test: Option<Vec<InputExample>>,
    pub task_name: &'a str,
    pub max_seq_length: usize,
    pub eval_batch_size: usize,
    pub predict_batch_size: usize,
    pub threads: usize,
    pub output_dir: &'a Path,
}

impl OnDevice for Predict<'_> {
    fn run<B: Backend>(self, backend: B) -> Result<(), String> {
        let err = |e: bert::Error| e.to_string();
        let labels = &self.labels;
        let classifier = Classifier::from_weights_on(
            backend,
            self.config,
            &self.weights,
            self.tokenizer,
            labels.clone(),
        )
        .map_err(|e| match self.trained {
            true => e.to_string(),
            false => {
                format!("{e} (evaluating needs a fine-tuned classifier: train with --do_train)")
            }
        })?;
        drop(self.weights);
        let on = classifier.model().backend().describe();
        crate::note!("bert classify: evaluating and predicting on {on}");
        let mut ctx = Context::on(classifier.model().backend(), self.threads);
        // Tokenizing runs on the CPU with the threads asked for (0: all), whatever the back
        // end (a device context has one).
        let threads = match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let features = |examples: &[InputExample]| {
            let tok = classifier.tokenizer();
            classifier::convert_examples(examples, labels, tok, self.max_seq_length, threads)
                .map_err(err)
        };
        if let Some(examples) = self.dev {
            let features = features(&examples)?;
            let results =
                classifier::evaluate(&classifier, &mut ctx, &features, self.eval_batch_size)
                    .map_err(err)?;
            let text = results.to_eval_results_txt(self.task_name, self.global_step);
            let _ = write!(std::io::stderr(), "bert classify: eval results\n{text}");
            write_atomically(&self.output_dir.join("eval_results.txt"), text.as_bytes())?;
        }
        if let Some(examples) = self.test {
            let features = features(&examples)?;
            let mut text = String::new();
            for chunk in features.chunks(self.predict_batch_size) {
                let refs: Vec<&InputFeatures> = chunk.iter().collect();
                let probs = classifier
                    .probabilities(&mut ctx, &classifier::pad(&refs))
                    .map_err(err)?;
                for row in probs.chunks_exact(labels.len()) {
                    let cols: Vec<String> = row.iter().map(f32::to_string).collect();
                    text.push_str(&cols.join("\t"));
                    text.push('\n');
                }
            }
            let path = self.output_dir.join("test_results.tsv");
            write_atomically(&path, text.as_bytes())?;
            crate::note!(
                "bert classify: wrote {} ({} examples)",
                path.display(),
                features.len()
            );
        }
        Ok(())
    }
}
