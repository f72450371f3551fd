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

    /// The bytes as little-endian f32 values in place, when they are 4-byte aligned and a
    /// whole number of values (a `.bert` block always is: 64-byte aligned in a page-aligned
    /// map); `None` otherwise, or on a big-endian target.
    pub fn as_f32(&self) -> Option<&[f32]> {
        if cfg!(target_endian = "big") {
            return None;
        }
        // SAFETY: every bit pattern is a valid f32; `align_to` only reinterprets the aligned
        // middle part, which is the whole slice when `pre` and `post` are empty.
        let (pre, mid, post) = unsafe { self.as_bytes().align_to::<f32>() };
        (pre.is_empty() && post.is_empty()).then_some(mid)
    }

    /// The bytes as f32 values: borrowed where [`WeightBytes::as_f32`] can, else decoded.
    pub fn to_f32(&self) -> std::borrow::Cow<'_, [f32]> {
        match self.as_f32() {
            Some(v) => std::borrow::Cow::Borrowed(v),
            None => std::borrow::Cow::Owned(
                self.as_bytes()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        }
    }
}

impl From<Vec<u8>> for WeightBytes {
    fn from(v: Vec<u8>) -> Self {
        WeightBytes::Owned(v)
    }
}
