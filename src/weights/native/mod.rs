//! libbert's native model file (`.bert`): one file with config, vocabulary and weights, laid
//! out so that opening it maps the file and decodes a small header without touching weights.
//!
//! Layout (little-endian):
//! ```text
//! magic    8 bytes  "LIBBERT\0"
//! version  u32      4 or 5 (what `save` writes); 1, 2 and 3 are still read
//! hlen     u64      length of the header
//! header   hlen     bincode 2 (standard config) of `Header`: config, vocabulary lines,
//!                   do_lower_case, tensor table (name, dtype, shape, offset, length, crc32c);
//!                   version 2 appends the classifier's label list (`Vec<String>`);
//!                   versions 3 to 5 are `HeaderV3` (below)
//! hcrc     u32      versions 4 and 5: masked CRC32C of every byte before it (magic to header)
//! padding  to a multiple of 64
//! data     tensors, each starting at a multiple of 64 from the start of the data
//! ```
//! Tensor checksums (masked CRC32C, as TF uses) are verified when weights are read, the
//! header checksum when the file is opened: before version 4 a flipped bit in the header
//! (the vocabulary's "the" read as "uhe", a config size, a tensor's offset) went unnoticed.
//! [`save`] writes a temporary file, syncs it and renames it over the target (atomic; see
//! [`crate::output`]).
//!
//! Version 2 exists because bincode is not self-describing: a new header field needs a new
//! version. Versions 1 to 3 were written by earlier builds (1 for plain models, 2 with labels,
//! 3 with f16/int8 tensors); every file is now written as version 4, which older builds
//! refuse by its version number.
//!
//! Versions 3 and 4 hold f16 and int8 tensors
//! ([`QuantizedTensor`](crate::weights::QuantizedTensor)): the header carries the labels and
//! `INT8_LAYOUT_VERSION` of the packed int8 kernels, and each tensor entry a dtype (0 f32,
//! 1 f16, 2 int8 dense kernel in the packed layout of `Dense::int8_packed_bytes`, 3 int8 table
//! with per-row scales) plus, for int8, the location of its f32 scales (a small block of the
//! data section with its own checksum). Every block starts 64-byte aligned.
//!
//! Version 5 is version 4 with f32 dense kernels stored packed for the f32 micro-kernels
//! (dtype 4, shape `[in, out, nr, kc]`: `nr`-column panels of `kc`-row blocks, columns padded
//! to a multiple of `nr`, the self-attention kernels fused as in f16/int8 models; `bert
//! convert` writes it for the CPU it runs on, see `quantize::pack_f32`). On a CPU whose f32
//! kernel has that layout the model runs from the memory map with nothing repacked or copied
//! (BERT-base: process start to first vector in tens of milliseconds instead of a second);
//! elsewhere the kernels are unpacked and packed again at load. [`NativeModel::weights`]
//! unpacks them (Google's tensors, bit for bit) for training, conversion and export.
//!
//! An f16 or int8 tensor is not copied when the file is opened: the model borrows its bytes
//! from the memory map ([`WeightBytes::Mapped`](crate::backend::WeightBytes::Mapped)), so
//! pages are read when a layer first runs (or a lookup first reads an embedding row). Its
//! checksum is therefore not verified by [`NativeModel::weights`], which would read every
//! byte; [`NativeModel::verify`] (or `ModelOptions::verify_checksums`) checks all of them.
//! Bounds, lengths and scales are always checked, so a corrupt quantized block can only change
//! results, never read out of bounds.

mod format;
mod read;
mod write;

pub use format::{
    FORMAT_VERSION, FORMAT_VERSION_HEADER_CRC, FORMAT_VERSION_LABELS, FORMAT_VERSION_QUANTIZED,
    MAGIC,
};
pub use read::{is_native_file, NativeModel};
pub use write::{save, save_with_labels};
