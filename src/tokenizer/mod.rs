//! Google's `FullTokenizer` (`tokenization.py`, commit eedf5716): basic tokenizer, WordPiece,
//! and encodings (`[CLS] A [SEP] B [SEP]`, type ids, masks, truncation, padding, batches,
//! overflowing windows with a stride).
//!
//! Every token keeps the byte span of the input characters it came from, including tokens of
//! lower-cased and accent-stripped text. Unicode properties are Python 3.11's (Unicode 14.0),
//! generated into `unicode_tables.rs` by `scripts/gen_unicode_tables.py`.
//!
//! Unlike Google's `convert_to_unicode`, which drops invalid UTF-8 bytes silently, the byte
//! entry points ([`Tokenizer::tokenize_bytes`], [`Tokenizer::encode_bytes`]) reject invalid
//! UTF-8 with [`Error::InvalidUtf8`].

mod basic;
mod encoding;
mod pad;
mod truncate;
mod unicode;
#[rustfmt::skip]
mod unicode_tables;
mod vocab;
mod windows;
mod wordpiece;

use std::ops::ControlFlow;
use std::path::Path;

pub use basic::BasicTokenizer;
pub use encoding::{EncodeOptions, Encoding};
pub use pad::Padding;
pub use truncate::truncate_seq_pair;
pub use unicode::{is_control, is_punctuation, is_whitespace};
pub use unicode_tables::UNICODE_VERSION;
pub use vocab::{Vocab, CLS, MASK, MAX_VOCAB_FILE_BYTES, MAX_VOCAB_TOKENS, PAD, SEP, UNK};
pub use windows::{check_is_max_context, doc_spans, DocSpan, Window, WindowOptions};
pub use wordpiece::{WordPiece, MAX_INPUT_CHARS_PER_WORD};

use crate::{Error, Result};
use basic::BasicScratch;
/// Python 3.11's character properties, for code that mirrors Python string methods.
pub(crate) use unicode::{flags, is_py_space, push_lower, CASED, CASE_IGNORABLE, LOWER, MN};
use wordpiece::Piece;

/// One WordPiece token of an input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'t> {
    /// The vocabulary entry, e.g. `"##ing"` or `"[UNK]"`.
    pub text: &'t str,
    /// Its id (line number in `vocab.txt`).
    pub id: u32,
    /// Byte span `start..end` of the input characters it came from (for `##` pieces of a
    /// lower-cased or decomposed word: the characters whose normalized form it covers).
    pub start: usize,
    /// End of the byte span (exclusive).
    pub end: usize,
    /// Index of the whitespace-separated input word it belongs to (Google's
    /// `orig_to_tok_map`, inverted). CJK ideographs split tokens, not words.
    pub word: u32,
}

/// Buffers reused across calls; one per thread. Creating one is free (nothing is allocated
/// until a text needs it).
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    basic: BasicScratch,
    pieces: Vec<Piece>,
}

/// Google's `FullTokenizer`: immutable, `Send + Sync`, share it between threads.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    basic: BasicTokenizer,
    wordpiece: WordPiece,
}

impl Tokenizer {
    /// `FullTokenizer(vocab_file, do_lower_case)`. The vocabulary must contain `[UNK]`.
    pub fn from_vocab_file(path: impl AsRef<Path>, do_lower_case: bool) -> Result<Tokenizer> {
        Tokenizer::new(Vocab::from_file(path)?, do_lower_case)
    }

    /// A tokenizer over an in-memory vocabulary. Errors if it lacks `[UNK]`, which WordPiece
    /// emits for unknown words.
    pub fn new(vocab: Vocab, do_lower_case: bool) -> Result<Tokenizer> {
        Ok(Tokenizer {
            basic: BasicTokenizer { do_lower_case },
            wordpiece: WordPiece::new(vocab)?,
        })
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.wordpiece.vocab
    }

    /// Whether the basic tokenizer lower-cases and strips accents.
    pub fn do_lower_case(&self) -> bool {
        self.basic.do_lower_case
    }

    /// The basic tokenizer stage alone.
    pub fn basic(&self) -> &BasicTokenizer {
        &self.basic
    }

    /// The WordPiece stage alone.
    pub fn wordpiece(&self) -> &WordPiece {
        &self.wordpiece
    }

    /// `FullTokenizer.tokenize` + `convert_tokens_to_ids`, with spans and word indices.
    /// No special tokens, no truncation.
    pub fn tokenize(&self, text: &str) -> Vec<Token<'_>> {
        let mut out = Vec::new();
        self.tokenize_with(text, &mut Workspace::default(), &mut out);
        out
    }

    /// Like [`Tokenizer::tokenize`], appending to `out` and reusing `ws`: the allocation-free
    /// form for loops over many texts.
    pub fn tokenize_with<'t>(&'t self, text: &str, ws: &mut Workspace, out: &mut Vec<Token<'t>>) {
        self.tokenize_until(text, ws, out, usize::MAX);
    }

    /// [`Tokenizer::tokenize_with`] that stops reading `text` once it has appended `limit`
    /// tokens (a few more when the basic token it was splitting gives more): the tokens are
    /// the first ones of the full tokenization. Truncating encodes use it, so a huge text costs
    /// what its first `max_seq_length` tokens cost.
    pub(crate) fn tokenize_until<'t>(
        &'t self,
        text: &str,
        ws: &mut Workspace,
        out: &mut Vec<Token<'t>>,
        limit: usize,
    ) {
        let Workspace { basic, pieces } = ws;
        let wp = &self.wordpiece;
        let end = out.len().saturating_add(limit);
        self.basic
            .run_until(text, basic, &mut |word_text, map, word| {
                pieces.clear();
                wp.split(word_text, pieces);
                for p in pieces.iter() {
                    let (start, end) = map.span(p.start, p.end);
                    out.push(Token {
                        text: wp.vocab.token(p.id).unwrap_or(UNK),
                        id: p.id,
                        start,
                        end,
                        word,
                    });
                }
                if out.len() >= end {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
    }

    /// [`Tokenizer::tokenize`] of UTF-8 bytes; invalid UTF-8 is an error (Google drops it).
    pub fn tokenize_bytes(&self, text: &[u8]) -> Result<Vec<Token<'_>>> {
        Ok(self.tokenize(utf8(text, "text")?))
    }

    /// The basic tokenizer's normalization of `text` as one string: clean-up, and if
    /// lower-casing, `str.lower()` per whitespace token, NFD and accent stripping; whitespace
    /// and removed characters are dropped. Each token's text (without `##`) is a piece of this.
    pub fn normalize(&self, text: &str) -> String {
        let mut out = String::new();
        self.basic
            .run(text, &mut BasicScratch::default(), &mut |t, _, _| {
                out.push_str(t)
            });
        out
    }
}

/// Checks UTF-8 at the byte boundary, naming where it fails.
pub(crate) fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        what: format!("{what} at byte {}", e.valid_up_to()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_until_stops_at_the_limit() {
        let vocab = Vocab::from_tokens(["[UNK]", "a", "b", ",", "##b"]).unwrap();
        let tok = Tokenizer::new(vocab, true).unwrap();
        let text = "a b, ab ".repeat(1000);
        let full = tok.tokenize(&text);
        assert_eq!(full.len(), 5000);
        for limit in [0, 1, 2, 3, 7, 100] {
            let mut out = Vec::new();
            tok.tokenize_until(&text, &mut Workspace::default(), &mut out, limit);
            // At most the rest of one whitespace token beyond the limit ("ab" is 2 tokens).
            assert!(
                out.len() >= limit && out.len() <= limit + 1,
                "{limit}: {}",
                out.len()
            );
            assert_eq!(out[..], full[..out.len()]);
        }
    }
}
