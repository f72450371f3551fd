//! Sentence (pair) classification: Google's `run_classifier.py`.
//!
//! - [`processors`]: the GLUE `DataProcessor`s (CoLA, MNLI, MRPC, SST-2, RTE) and a generic
//!   TSV task; malformed files are errors naming file and line.
//! - [`features`]: `convert_single_example` and batching.
//! - [`metrics`]: accuracy, F1 (MRPC), Matthews correlation (CoLA).
//! - [`Classifier`]: a fine-tuned model for inference (encoder, pooled output, head,
//!   softmax), saved to and loaded from one `.bert` file with its labels ([`save`]).
//!
//! Training itself is [`crate::train`]'s; `bert classify` drives it.

pub mod features;
pub mod metrics;
mod model;
pub mod processors;

pub use features::{convert_examples, InputFeatures, PaddedBatch};
pub use model::{params_to_weights, save, softmax_rows, Classifier};
pub use processors::{InputExample, Processor, Split};
