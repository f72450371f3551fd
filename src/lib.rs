//! libbert: Google's BERT rebuilt in Rust.
//!
//! - [`tokenizer`]: Google's `FullTokenizer` (basic tokenizer + WordPiece), with offsets,
//!   pairs, truncation, padding and batching.
//! - [`config`], [`weights`], [`model`]: `bert_config.json`, checkpoint loaders and the
//!   encoder (`modeling.py`).
//! - [`backend`]: the seam between the model and the hardware: the [`backend::Backend`]
//!   trait (the ops BERT runs) and the CPU back end (f32 reference, f16 and int8 storage).
//! - [`heads`]: the task heads (classifier, SQuAD span, masked LM + next sentence), each with
//!   forward, loss and backward.
//! - [`train`]: the trainer: Google's `AdamWeightDecayOptimizer`, schedule, clipping,
//!   accumulation, dropout.
//! - [`classifier`]: `run_classifier.py`: GLUE processors, metrics and the fine-tuned
//!   [`classifier::Classifier`].
//! - [`squad`]: `run_squad.py` without the model (examples, windowed features, predictions
//!   from span logits) and the official SQuAD 1.1 / 2.0 evaluation.
//! - [`pyjson`]: JSON written byte for byte as Python's `json.dumps` writes it.
//!
//! - [`output`]: how every file a user names is written (atomic replace, special files,
//!   symbolic links).
//!
//! The C ABI lives in the `bert-ffi` crate (`ffi/`), the command-line tool in `src/bin/bert`.

pub mod backend;
pub mod classifier;
pub mod config;
mod error;
pub mod heads;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod pyjson;
pub mod squad;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use error::{Error, Result};

/// Version as `major * 10000 + minor * 100 + patch` (the C ABI's `bert_version_number`).
pub const VERSION_NUMBER: u32 = {
    let s = env!("BERT_VERSION_NUMBER").as_bytes();
    let mut v = 0u32;
    let mut i = 0;
    while i < s.len() {
        v = v * 10 + (s[i] - b'0') as u32;
        i += 1;
    }
    v
};

/// Version string of the crate, e.g. `"0.1.0"`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use backend::{Activation, Backend, Cpu};
pub use config::BertConfig;
pub use model::{Batch, BertModel, Context, Inputs, ModelOptions, Outputs, Pooling};
pub use pipeline::{EmbedOptions, LongText, Pipeline};
pub use squad::{Answer, QuestionAnswerer};
pub use weights::{DType, Weights};
