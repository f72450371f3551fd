//! Google TensorFlow "V2" checkpoints (tensor bundles), read and written without TensorFlow:
//! `<prefix>.index` (an SSTable of `BundleEntryProto`s under the variable names) and
//! `<prefix>.data-00000-of-00001` (the tensors' bytes), plus the `checkpoint` state file
//! that names the latest one.
//!
//! - [`load`] / [`BundleReader`]: read any bundle (every released BERT checkpoint).
//! - [`BundleWriter`] / [`save`]: write one that TensorFlow's `tf.train.load_checkpoint`,
//!   `init_from_checkpoint` and our own reader load; [`write_checkpoint_state`] the
//!   `checkpoint` file `tf.train.latest_checkpoint` reads.

mod format;
mod read;
mod table;
mod write;

pub use format::DataType;
pub use read::{load, resolve_prefix, BundleReader};
pub use write::{save, write_checkpoint_state, BundleWriter, TensorData};
