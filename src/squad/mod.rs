//! Question answering: Google's `run_squad.py` (SQuAD 1.1 and 2.0) without the model, and
//! the official evaluation scripts.
//!
//! - [`dataset`]: the SQuAD JSON file ([`Dataset::from_bytes`] is the fuzzing entry point).
//! - [`examples`]: `read_squad_examples` (whitespace `doc_tokens`, answers as word
//!   positions, v2 `is_impossible`, the "could not find answer" skip).
//! - [`features`]: `convert_examples_to_features` (query truncation, document windows by
//!   `doc_stride`, `token_to_orig_map`, `token_is_max_context`, `_improve_answer_span`),
//!   built on the tokenizer's windows ([`crate::tokenizer::Tokenizer::windows_of_tokens`]).
//! - [`batch`]: features stacked as model inputs, with start/end positions for training.
//! - [`predictions`]: `write_predictions` (n-best spans, [`final_text`]'s `get_final_text`,
//!   softmax, v2 null score); [`prediction_files`]: the three JSON files as Google writes
//!   them.
//! - [`evaluate`]: `evaluate-v1.1.py` / `evaluate-v2.0.py`.
//! - [`model`]: the encoder with the span head for prediction ([`SquadModel`], one `.bert`
//!   file); [`finetune`]: training it ([`SquadFineTuner`]); [`answerer`]: answers to
//!   questions about any text ([`QuestionAnswerer`]).
//!
//! Predicting is reading, converting, running the model on each [`FeatureBatch`] for its
//! start and end logits, and [`compute_predictions`]:
//!
//! ```no_run
//! # fn logits(b: &bert::squad::FeatureBatch) -> (Vec<f32>, Vec<f32>) { unimplemented!() }
//! use bert::squad::{self, FeatureBatch, FeatureOptions, PredictOptions, RawResult};
//! # fn main() -> bert::Result<()> {
//! let tokenizer = bert::tokenizer::Tokenizer::from_vocab_file("vocab.txt", true)?;
//! let read = squad::read_squad_examples("dev-v1.1.json", false, false)?;
//! let features = squad::convert_examples_to_features(
//!     &read.examples, &tokenizer, &FeatureOptions::default(), false)?;
//! let mut results = Vec::new();
//! for batch in FeatureBatch::batches(&features, 8) {
//!     let batch = batch?;
//!     let (start, end) = logits(&batch); // the span head: [batch, seq] each
//!     for (i, &unique_id) in batch.unique_ids.iter().enumerate() {
//!         let row = i * batch.seq..(i + 1) * batch.seq;
//!         results.push(RawResult {
//!             unique_id,
//!             start_logits: start[row.clone()].to_vec(),
//!             end_logits: end[row].to_vec(),
//!         });
//!     }
//! }
//! let preds = squad::compute_predictions(
//!     &read.examples, &features, &results, &PredictOptions::default())?;
//! std::fs::write("predictions.json", preds.predictions_json()).ok();
//! let data = squad::Dataset::from_file("dev-v1.1.json")?;
//! println!("{}", squad::evaluate_v1(&data, &preds.answers())?.to_json());
//! # Ok(()) }
//! ```

pub mod answerer;
pub mod batch;
pub mod dataset;
pub mod evaluate;
pub mod examples;
pub mod features;
pub mod final_text;
pub mod finetune;
pub mod model;
pub mod prediction_files;
pub mod predictions;
mod pydict;
pub mod pystr;

pub use answerer::{answer_batch_with, Answer, AnswerOptions, QuestionAnswerer};
pub use batch::FeatureBatch;
pub use dataset::Dataset;
pub use evaluate::{evaluate_v1, evaluate_v2, read_json_dict, EvalV1, EvalV2};
pub use examples::{
    read_squad_examples, read_squad_examples_from_bytes, SkippedExample, SquadExample,
    SquadExamples,
};
pub use features::{convert_examples_to_features, FeatureOptions, InputFeatures};
pub use finetune::{SquadFineTuner, SquadTrainParams};
pub use model::SquadModel;
pub use predictions::{compute_predictions, PredictOptions, Prediction, Predictions, RawResult};
pub use pydict::PyDict;
