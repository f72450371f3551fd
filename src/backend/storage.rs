//! Weight storage that is not a plain `Vec<f32>`: f16 and packed int8 bytes, owned or borrowed
//! from a memory-mapped model file.

use std::sync::Arc;

/// Bytes that may live in a memory map: lets a [`Dense`](super::cpu::Dense) borrow weights
/// straight from a `.bert` file, so opening an int8/f16 model touches no weight until a layer
/// first runs.
///
/// Kernels read these bytes with unaligned loads, so any alignment works (64-byte aligned
/// data is fastest).
#[derive(Clone, Debug)]
pub enum WeightBytes {
    /// A copy in memory.
    Owned(Vec<u8>),
    /// `len` bytes at `offset` of a shared read-only map.
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl WeightBytes {
    /// The bytes. A `Mapped` range that lies outside its map gives an empty slice (so the
    /// constructors that check lengths report it as an error instead of panicking).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            WeightBytes::Owned(v) => v,
            WeightBytes::Mapped { map, offset, len } => offset
                .checked_add(*len)
                .and_then(|end| map.get(*offset..end))
                .unwrap_or(&[]),
        }
    }

    /// Number of bytes [`WeightBytes::as_bytes`] returns.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for WeightBytes {
    fn from(v: Vec<u8>) -> Self {
        WeightBytes::Owned(v)
    }
}
