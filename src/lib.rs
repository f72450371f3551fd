//! libbert: Google's BERT rebuilt in Rust.
//!
//! - [`tokenizer`]: Google's `FullTokenizer` (basic tokenizer + WordPiece), with offsets,
//!   pairs, truncation, padding and batching.
//! - [`config`], [`weights`], [`model`]: `bert_config.json`, checkpoint loaders and the
//!   encoder (`modeling.py`).
//! - [`backend`]: the kernels the model calls (f32 CPU reference).
//! - [`train`]: classifier fine-tuning: backward pass and Google's `AdamWeightDecayOptimizer`.
//! - [`classifier`]: `run_classifier.py`: GLUE processors, metrics and the fine-tuned
//!   [`classifier::Classifier`].
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

pub use config::{Activation, BertConfig};
pub use model::{BertModel, Context, Inputs, ModelOptions, Outputs, Pooling};
pub use pipeline::{Batch, EmbedOptions, Pipeline};
pub use weights::{DType, Weights};
