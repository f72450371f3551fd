//! Task heads on top of the encoder. [`pretraining`]: masked LM and next sentence
//! (`run_pretraining.py`).

pub mod pretraining;

pub use pretraining::PreTrainingHeads;
