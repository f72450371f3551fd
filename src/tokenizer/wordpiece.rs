//! `tokenization.py: WordpieceTokenizer`: greedy longest-match-first over one basic token.

use super::vocab::Vocab;

/// Google's `max_input_chars_per_word`: longer words (in characters) become one `[UNK]`.
pub const MAX_INPUT_CHARS_PER_WORD: usize = 200;

/// One WordPiece of a word: its id and the byte range it covers in the (normalized) word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub id: u32,
    pub start: usize,
    pub end: usize,
}

/// Greedy longest-match-first WordPiece over an immutable [`Vocab`].
#[derive(Debug, Clone)]
pub struct WordPiece {
    pub(crate) vocab: Vocab,
    pub(crate) unk: u32,
    pub(crate) max_input_chars_per_word: usize,
}

impl WordPiece {
    /// Google's `WordpieceTokenizer(vocab)` with `max_input_chars_per_word = 200`.
    /// Errors if the vocabulary has no `[UNK]`.
    pub fn new(vocab: Vocab) -> crate::Result<WordPiece> {
        let unk = vocab.require(super::vocab::UNK, "WordPiece")?;
        Ok(WordPiece {
            vocab,
            unk,
            max_input_chars_per_word: MAX_INPUT_CHARS_PER_WORD,
        })
    }

    /// Splits `word` (a basic token: no whitespace, one punctuation character at most when it
    /// is punctuation) and appends its pieces to `out`. A word with a part that matches nothing,
    /// or with more than `max_input_chars_per_word` characters, becomes one `[UNK]` covering
    /// the whole word, as in Google's code. Probes are slices of `word`: no allocation.
    pub(crate) fn split(&self, word: &str, out: &mut Vec<Piece>) {
        if word.is_empty() {
            return;
        }
        let first = out.len();
        // Counting chars only matters for long words; bytes >= chars always.
        if word.len() > self.max_input_chars_per_word
            && word.chars().count() > self.max_input_chars_per_word
        {
            out.push(self.unk_piece(word));
            return;
        }
        let bytes = word.as_bytes();
        let max_piece = self.vocab.max_piece_bytes();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len().min(start + max_piece);
            let mut found = None;
            while end > start {
                // Only char boundaries: UTF-8 continuation bytes are 0b10xx_xxxx.
                if end == word.len() || (bytes[end] as i8) >= -0x40 {
                    let probe = &word[start..end];
                    let id = if start == 0 {
                        self.vocab.initial(probe)
                    } else {
                        self.vocab.continuation(probe)
                    };
                    if let Some(id) = id {
                        found = Some(id);
                        break;
                    }
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    out.push(Piece { id, start, end });
                    start = end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk_piece(word));
                    return;
                }
            }
        }
    }

    fn unk_piece(&self, word: &str) -> Piece {
        Piece {
            id: self.unk,
            start: 0,
            end: word.len(),
        }
    }

    /// The vocabulary this WordPiece reads.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// Google's `WordpieceTokenizer.tokenize` on one whitespace-free token, as token strings.
    pub fn tokenize(&self, word: &str) -> Vec<String> {
        let mut pieces = Vec::new();
        for w in word
            .split(super::unicode::is_py_space)
            .filter(|w| !w.is_empty())
        {
            self.split(w, &mut pieces);
        }
        pieces
            .iter()
            .map(|p| self.vocab.token(p.id).unwrap_or_default().to_string())
            .collect()
    }
}
