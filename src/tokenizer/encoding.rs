//! Model inputs as Google's `convert_single_example` builds them:
//! `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, segment ids 0 for `[CLS] A [SEP]` and 1 for
//! `B [SEP]`, then truncation and padding.

use super::pad::{pad_to, Padding};
use super::truncate::keep_lengths;
use super::vocab::{CLS, PAD, SEP};
use super::{utf8, Token, Tokenizer, Workspace};
use crate::{Error, Result};

/// What [`Tokenizer::encode`] does besides tokenizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeOptions {
    /// Truncate to this many positions including `[CLS]`/`[SEP]` (Google's `max_seq_length`;
    /// pairs by `_truncate_seq_pair`). `None`: no truncation.
    pub max_seq_length: Option<usize>,
    /// Padding; for Google's fixed-size inputs use `Padding::Fixed(max_seq_length)`.
    pub padding: Padding,
}

/// One encoded input: all vectors have the same length, one entry per position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    /// Token ids (`input_ids`).
    pub ids: Vec<u32>,
    /// Segment ids (`segment_ids` / `token_type_ids`): 0 for A, 1 for B, 0 for padding.
    pub type_ids: Vec<u32>,
    /// Token texts, specials included.
    pub tokens: Vec<String>,
    /// Byte span in the text the token came from (A or B, see `type_ids`); `None` for
    /// `[CLS]`, `[SEP]` and `[PAD]`.
    pub offsets: Vec<Option<(usize, usize)>>,
    /// Word index within its own text (A or B); `None` for special tokens.
    pub word_ids: Vec<Option<u32>>,
    /// 1 for `[CLS]`, `[SEP]` and `[PAD]`, 0 for tokens of the text.
    pub special_tokens_mask: Vec<u8>,
    /// `input_mask`: 1 for real positions, 0 for padding.
    pub attention_mask: Vec<u8>,
}

impl Encoding {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn push_special(&mut self, text: &str, id: u32, type_id: u32) {
        self.ids.push(id);
        self.type_ids.push(type_id);
        self.tokens.push(text.to_string());
        self.offsets.push(None);
        self.word_ids.push(None);
        self.special_tokens_mask.push(1);
        self.attention_mask.push(1);
    }

    fn push_tokens(&mut self, tokens: &[Token<'_>], type_id: u32) {
        for t in tokens {
            self.ids.push(t.id);
            self.type_ids.push(type_id);
            self.tokens.push(t.text.to_string());
            self.offsets.push(Some((t.start, t.end)));
            self.word_ids.push(Some(t.word));
            self.special_tokens_mask.push(0);
            self.attention_mask.push(1);
        }
    }
}

impl Tokenizer {
    /// Encodes text `a`, or the pair `a`, `b`, with specials, truncation and padding.
    /// Errors: the vocabulary lacks `[CLS]`/`[SEP]` (or `[PAD]` when padding),
    /// `max_seq_length` too small for the specials, or an encoding longer than a fixed
    /// padding length.
    pub fn encode(&self, a: &str, b: Option<&str>, opts: &EncodeOptions) -> Result<Encoding> {
        self.encode_with(a, b, opts, &mut Workspace::default())
    }

    /// [`Tokenizer::encode`] of UTF-8 bytes; invalid UTF-8 is an error (Google drops it).
    pub fn encode_bytes(
        &self,
        a: &[u8],
        b: Option<&[u8]>,
        opts: &EncodeOptions,
    ) -> Result<Encoding> {
        let a = utf8(a, "text a")?;
        let b = b.map(|b| utf8(b, "text b")).transpose()?;
        self.encode(a, b, opts)
    }

    /// Encodes a batch of texts or pairs on `threads` threads (scoped, started here and
    /// joined before returning; 0 means 1). With `Padding::Longest` every encoding is padded
    /// to the longest of the batch. The result equals encoding one by one.
    pub fn encode_batch(
        &self,
        inputs: &[(&str, Option<&str>)],
        opts: &EncodeOptions,
        threads: usize,
    ) -> Result<Vec<Encoding>> {
        let threads = threads.clamp(1, inputs.len().max(1));
        let chunk = inputs.len().div_ceil(threads).max(1);
        let encode_chunk = |part: &[(&str, Option<&str>)]| -> Result<Vec<Encoding>> {
            let mut ws = Workspace::default();
            part.iter()
                .map(|&(a, b)| self.encode_with(a, b, opts, &mut ws))
                .collect()
        };
        let mut out = Vec::with_capacity(inputs.len());
        if threads == 1 {
            out = encode_chunk(inputs)?;
        } else {
            let parts: Vec<Result<Vec<Encoding>>> = std::thread::scope(|scope| {
                let mut chunks = inputs.chunks(chunk);
                let first = chunks.next().unwrap_or(&[]);
                let handles: Vec<_> = chunks
                    .map(|part| scope.spawn(move || encode_chunk(part)))
                    .collect();
                let mut parts = vec![encode_chunk(first)];
                for h in handles {
                    parts.push(h.join().unwrap_or_else(|_| {
                        Err(Error::InvalidArgument("a batch thread panicked".into()))
                    }));
                }
                parts
            });
            for part in parts {
                out.extend(part?);
            }
        }
        if opts.padding == Padding::Longest {
            let pad_id = self.vocab().require(PAD, "padding")?;
            let longest = out.iter().map(Encoding::len).max().unwrap_or(0);
            for e in &mut out {
                pad_to(e, longest, pad_id)?;
            }
        }
        Ok(out)
    }

    fn encode_with(
        &self,
        a: &str,
        b: Option<&str>,
        opts: &EncodeOptions,
        ws: &mut Workspace,
    ) -> Result<Encoding> {
        let cls = self.vocab().require(CLS, "encoding")?;
        let sep = self.vocab().require(SEP, "encoding")?;
        // Truncation keeps at most `max - 2` tokens of a single text and `max - 3` of each
        // text of a pair (`_truncate_seq_pair` of lengths capped so gives what it gives of the
        // full lengths), so tokenizing stops there: a huge text costs what its head costs.
        let limit = match (opts.max_seq_length, b) {
            (None, _) => usize::MAX,
            (Some(max), None) => max.saturating_sub(2),
            (Some(max), Some(_)) => max.saturating_sub(3),
        };
        let mut tokens = Vec::new();
        self.tokenize_until(a, ws, &mut tokens, limit);
        let len_a = tokens.len();
        let len_b = b.map(|b| {
            self.tokenize_until(b, ws, &mut tokens, limit);
            tokens.len() - len_a
        });
        let (keep_a, keep_b) = match opts.max_seq_length {
            None => (len_a, len_b.unwrap_or(0)),
            Some(max) => keep_lengths(len_a, len_b, max).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "max_seq_length {max} cannot hold [CLS] and [SEP] (needs at least {})",
                    if b.is_some() { 3 } else { 2 }
                ))
            })?,
        };
        let mut e = Encoding::default();
        e.push_special(CLS, cls, 0);
        e.push_tokens(&tokens[..keep_a], 0);
        e.push_special(SEP, sep, 0);
        if len_b.is_some() {
            e.push_tokens(&tokens[len_a..len_a + keep_b], 1);
            e.push_special(SEP, sep, 1);
        }
        if let Padding::Fixed(n) = opts.padding {
            if e.len() > n {
                return Err(Error::InvalidArgument(format!(
                    "encoding has {} positions, more than the padding length {n} \
                     (set max_seq_length to truncate)",
                    e.len()
                )));
            }
            pad_to(&mut e, n, self.vocab().require(PAD, "padding")?)?;
        }
        Ok(e)
    }
}
