//! Back ends: the small set of kernels the model code calls.
//!
//! The model never does arithmetic on its own; it calls these kernels, so the int8 and
//! Vulkan paths of later work swap kernels, not model code. [`cpu`] is the f32 reference
//! every other path is checked against.

pub mod cpu;
pub mod int8;
mod pool;
mod storage;

pub use pool::Pool;
pub use storage::{WeightBytes, WeightDType};
