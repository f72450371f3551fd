//! The C ABI of libbert. Every `extern "C"` function of the project lives in this crate;
//! `include/bert.h` is generated from it by cbindgen (`ffi/build.rs`, `ffi/cbindgen.toml`).
//!
//! Conventions (see `include/bert.h`): `bert_` prefix, opaque handles, `bert_status` return
//! codes that are never renumbered, no panic ever crosses the boundary: every entry point
//! checks its pointers and runs its body under `status::guard` (`catch_unwind`).
//!
//! One module per section of the header, which `ffi/build.rs` lists in the header's order:
//! version, status (errors), log, model, tokenizer, context (encode, embed, hidden states),
//! classifier, question answering, trainer, pre-training. This file declares nothing of the ABI itself.
#![allow(non_camel_case_types)]
// Pointer rules are documented once per function in the header (and at its top), not in a
// `# Safety` section of each Rust doc comment.
#![allow(clippy::missing_safety_doc)]

mod classifier;
mod context;
#[cfg(feature = "jni")]
mod jni;
mod log;
mod model;
mod pretrain;
mod qa;
mod status;
mod tokenizer;
mod trainer;
mod version;

mod args;
mod handles;

pub use classifier::*;
pub use context::*;
pub use log::*;
pub use model::*;
pub use pretrain::*;
pub use qa::*;
pub use status::*;
pub use tokenizer::*;
pub use trainer::*;
pub use version::*;
