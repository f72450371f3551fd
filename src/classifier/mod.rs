//! Sentence (pair) classification: Google's `run_classifier.py`.
//!
//! - [`processors`]: the GLUE `DataProcessor`s (CoLA, MNLI, MRPC, SST-2, RTE) and a generic
//!   TSV task; malformed files are errors naming file and line.
//! - [`features`]: `convert_single_example` and batching.
//! - [`metrics`]: accuracy, F1 (MRPC), Matthews correlation (CoLA).
//! - [`Classifier`]: a fine-tuned model for inference (encoder, pooled output, head,
//!   softmax), saved to and loaded from one `.bert` file with its labels ([`save`]).
//!
//! - [`FineTuner`] ([`finetune`]): the training loop of `run_classifier.py` over
//!   [`crate::train`]'s engine, with progress callback, cancellation, evaluation
//!   ([`evaluate()`]) and resumable checkpoints ([`checkpoint`]). `bert classify` and the C
//!   ABI's `bert_trainer` are thin layers over it.

/// The training-state file format (shared with SQuAD and pre-training runs).
pub use crate::train::checkpoint;
mod evaluate;
pub mod features;
pub mod finetune;
pub mod metrics;
mod model;
pub mod processors;
mod start;

pub use evaluate::{evaluate, EvalResults};
pub use features::{convert_examples, labels, pad, InputFeatures};
pub use finetune::{FineTuneParams, FineTuner, ModelStart, Outcome, Progress};
pub use model::{logits, save, Classifier};
pub use processors::{InputExample, Processor, Split};
