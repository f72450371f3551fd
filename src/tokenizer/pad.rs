//! Padding to a fixed length (Google's `max_seq_length` zero-padding) or to the longest
//! encoding of a batch.

use super::encoding::Encoding;
use super::vocab::PAD;
use crate::{Error, Result};

/// How encodings are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Leave every encoding at its own length.
    #[default]
    None,
    /// Pad to exactly this length, as `convert_single_example` pads to `max_seq_length`.
    /// An encoding that is longer is an error (set `max_seq_length` to truncate it).
    Fixed(usize),
    /// Pad each encoding of a batch to the longest one (a single encoding is left as is).
    Longest,
}

/// Appends `[PAD]` positions up to `len`: id of `[PAD]`, type id 0, attention 0, special 1,
/// no offset, no word (Google's zero-padding of `input_ids`/`input_mask`/`segment_ids`).
/// The memory is reserved first: a padding length too large to allocate is an error (a
/// caller's `Padding::Fixed(100_000_000_000)` aborted the process).
pub(crate) fn pad_to(enc: &mut Encoding, len: usize, pad_id: u32) -> Result<()> {
    let n = len.saturating_sub(enc.ids.len());
    let too_large = |e: std::collections::TryReserveError| {
        Error::InvalidArgument(format!("padding length {len}: cannot allocate it ({e})"))
    };
    enc.ids.try_reserve_exact(n).map_err(too_large)?;
    enc.type_ids.try_reserve_exact(n).map_err(too_large)?;
    enc.tokens.try_reserve_exact(n).map_err(too_large)?;
    enc.offsets.try_reserve_exact(n).map_err(too_large)?;
    enc.word_ids.try_reserve_exact(n).map_err(too_large)?;
    enc.special_tokens_mask
        .try_reserve_exact(n)
        .map_err(too_large)?;
    enc.attention_mask.try_reserve_exact(n).map_err(too_large)?;
    enc.ids.extend(std::iter::repeat(pad_id).take(n));
    enc.type_ids.extend(std::iter::repeat(0).take(n));
    enc.tokens
        .extend(std::iter::repeat_with(|| PAD.to_string()).take(n));
    enc.offsets.extend(std::iter::repeat(None).take(n));
    enc.word_ids.extend(std::iter::repeat(None).take(n));
    enc.special_tokens_mask.extend(std::iter::repeat(1).take(n));
    enc.attention_mask.extend(std::iter::repeat(0).take(n));
    Ok(())
}
