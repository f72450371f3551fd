//! Back ends: the small set of kernels the model code calls.
//!
//! The model never does arithmetic on its own; it calls these kernels, so the int8 and f16
//! storage of a dense layer ([`cpu::Dense::new_int8`], [`cpu::Dense::new_f16`], weights
//! possibly borrowed from a memory map as [`WeightBytes`]) swaps kernels, not model code.
//! [`cpu`] is the f32 reference every other path is checked against; [`int8`] holds the
//! int8 GEMM (VNNI, AVX2 and portable paths over one packed layout).

pub mod cpu;
pub mod int8;
mod pool;
mod storage;

pub use pool::Pool;
pub use storage::{WeightBytes, WeightDType};
