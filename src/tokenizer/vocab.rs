//! `vocab.txt`: one token per line, the line number is the id (`tokenization.py: load_vocab`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use crate::{Error, Result};

/// The special tokens BERT uses, by their literal text in Google's vocabularies.
pub const UNK: &str = "[UNK]";
/// Classification token that starts every encoding.
pub const CLS: &str = "[CLS]";
/// Separator that ends each segment.
pub const SEP: &str = "[SEP]";
/// Padding token.
pub const PAD: &str = "[PAD]";
/// Masked-LM token.
pub const MASK: &str = "[MASK]";

/// Largest `vocab.txt` read (real ones, multilingual and 250,000-token vocabularies included,
/// are a few megabytes).
pub const MAX_VOCAB_FILE_BYTES: u64 = 64 << 20;
/// Most tokens of a vocabulary: `BertConfig::validate`'s bound on `vocab_size`.
pub const MAX_VOCAB_TOKENS: usize = 1 << 24;

/// A small multiplicative hasher (FxHash): vocab keys are short and trusted-size, and SipHash
/// would dominate WordPiece's lookups. Collisions only cost time, never correctness.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A loaded WordPiece vocabulary: immutable, cheap to share between threads.
///
/// Lookups take `&str` slices of the word being split, so WordPiece never allocates per probe:
/// word-initial pieces and `##` continuations live in two maps, the latter keyed without `##`.
#[derive(Debug, Clone)]
pub struct Vocab {
    tokens: Vec<Box<str>>,
    initial: FxMap<Box<str>, u32>,
    continuation: FxMap<Box<str>, u32>,
    /// Longest key in bytes of either map: longer probes cannot match, so WordPiece skips them.
    max_piece_bytes: usize,
}

impl Vocab {
    /// Reads `vocab.txt`. Errors: missing or unreadable file, invalid UTF-8, empty vocabulary,
    /// duplicate tokens.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Vocab> {
        use std::io::Read;
        let path = path.as_ref();
        // Read at most one byte past the bound: `/dev/zero` or a mistaken multi-gigabyte file
        // is an error, not a process that grows until it is killed.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_VOCAB_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > MAX_VOCAB_FILE_BYTES {
            return Err(Error::Vocab(format!(
                "{}: larger than {} MiB, not a vocabulary file",
                path.display(),
                MAX_VOCAB_FILE_BYTES >> 20
            )));
        }
        Vocab::from_bytes(&bytes).map_err(|e| match e {
            Error::InvalidUtf8 { what } => Error::InvalidUtf8 {
                what: format!("{}: {what}", path.display()),
            },
            Error::Vocab(m) => Error::Vocab(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses the bytes of a `vocab.txt`, rejecting invalid UTF-8 with its line number.
    pub fn from_bytes(bytes: &[u8]) -> Result<Vocab> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::InvalidUtf8 {
                what: format!("vocabulary line {line}"),
            }
        })?;
        Vocab::from_text(text)
    }

    /// Parses vocabulary text. Like `load_vocab`, lines are split on `\n`, a final newline
    /// does not start another entry, and each line is stripped of Python whitespace.
    pub fn from_text(text: &str) -> Result<Vocab> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.is_empty() {
            return Err(Error::Vocab("the vocabulary is empty".into()));
        }
        Vocab::from_tokens(
            body.split('\n')
                .map(|l| l.trim_matches(super::unicode::is_py_space)),
        )
    }

    /// Builds a vocabulary from tokens in id order. Duplicates are an error (Google's dict
    /// would silently keep the last id, leaving a hole).
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Vocab> {
        let tokens: Vec<&str> = tokens.into_iter().collect();
        // Sized up front: growing three maps of 30k entries by rehashing was a tenth of the
        // time from process start to the first vector of a memory-mapped model.
        let n = tokens.len().min(MAX_VOCAB_TOKENS);
        let mut v = Vocab {
            tokens: Vec::with_capacity(n),
            initial: FxMap::with_capacity_and_hasher(n, Default::default()),
            continuation: FxMap::default(),
            max_piece_bytes: 0,
        };
        let mut all: FxMap<&str, usize> = FxMap::with_capacity_and_hasher(n, Default::default());
        if tokens.is_empty() {
            return Err(Error::Vocab("the vocabulary is empty".into()));
        }
        if tokens.len() > MAX_VOCAB_TOKENS {
            return Err(Error::Vocab(format!(
                "{} tokens, more than {MAX_VOCAB_TOKENS} (the largest vocab_size a config \
                 may have)",
                tokens.len()
            )));
        }
        for (i, &t) in tokens.iter().enumerate() {
            if let Some(first) = all.insert(t, i) {
                return Err(Error::Vocab(format!(
                    "duplicate token {t:?} on lines {} and {}",
                    first + 1,
                    i + 1
                )));
            }
            let id = i as u32;
            if let Some(rest) = t.strip_prefix("##") {
                v.continuation.insert(rest.into(), id);
            }
            v.initial.insert(t.into(), id);
            v.max_piece_bytes = v.max_piece_bytes.max(t.len());
            v.tokens.push(t.into());
        }
        Ok(v)
    }

    /// Number of tokens (ids are `0..len()`).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true for a loaded vocabulary; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of a token, as `convert_tokens_to_ids` gives it.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.initial.get(token).copied()
    }

    /// The text of an id, as `convert_ids_to_tokens` gives it.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|t| &**t)
    }

    /// The id of a special token that an operation needs, or an error naming it.
    pub fn require(&self, token: &str, needed_for: &str) -> Result<u32> {
        self.id(token).ok_or_else(|| {
            Error::Vocab(format!(
                "the vocabulary has no {token} token, needed for {needed_for}"
            ))
        })
    }

    /// Word-initial piece lookup (no allocation).
    #[inline]
    pub(crate) fn initial(&self, piece: &str) -> Option<u32> {
        self.initial.get(piece).copied()
    }

    /// `##` continuation lookup by the text after `##` (no allocation).
    #[inline]
    pub(crate) fn continuation(&self, piece: &str) -> Option<u32> {
        self.continuation.get(piece).copied()
    }

    #[inline]
    pub(crate) fn max_piece_bytes(&self) -> usize {
        self.max_piece_bytes
    }
}
