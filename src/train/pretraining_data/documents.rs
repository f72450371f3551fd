//! `create_training_instances`' first half: every line of every input file, stripped
//! (`str.strip()`), tokenized with the `FullTokenizer`, gathered into `all_documents` (a blank
//! line starts a new document; a line without tokens is skipped; empty documents are
//! dropped).
//!
//! As in Google's script, documents run across file boundaries: only a blank line ends one.
//! Token ids are stored back to back (4 bytes a token, where Google's lists of `str` take
//! dozens). Files are read in blocks of whole lines and each block's lines are tokenized on
//! all threads, then appended in input order, so the result does not depend on the thread
//! count and memory holds one block of text at a time, not a file.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::tokenizer::{Token, Tokenizer, Workspace};
use crate::{Error, Result};

/// Bytes of text each thread tokenizes per round.
const BLOCK_PER_THREAD: usize = 1 << 20;

/// Google's `all_documents` after "Remove empty documents": documents of sentences of token
/// ids, in input order (the shuffle is applied by the caller, as an order of indices).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Documents {
    /// Every sentence's token ids, back to back.
    tokens: Vec<u32>,
    /// `sentence_ends[s]`: end of sentence `s` in `tokens` (its start is the previous end).
    sentence_ends: Vec<usize>,
    /// `document_ends[d]`: end of document `d` in `sentence_ends` (never empty).
    document_ends: Vec<usize>,
}

impl Documents {
    /// Number of (non-empty) documents.
    pub fn len(&self) -> usize {
        self.document_ends.len()
    }

    /// Whether there is no document.
    pub fn is_empty(&self) -> bool {
        self.document_ends.is_empty()
    }

    /// Number of tokens in all documents.
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Sentences `start..end` (indices into the sentence list) of document `d`.
    pub(crate) fn sentences(&self, d: usize) -> std::ops::Range<usize> {
        let start = if d == 0 { 0 } else { self.document_ends[d - 1] };
        start..self.document_ends[d]
    }

    /// Token range of sentence `s` in [`Documents::tokens`].
    pub(crate) fn sentence_span(&self, s: usize) -> std::ops::Range<usize> {
        let start = if s == 0 { 0 } else { self.sentence_ends[s - 1] };
        start..self.sentence_ends[s]
    }

    /// All token ids, back to back.
    pub(crate) fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Document `d` as a list of sentences of token ids (`None` past the end).
    pub fn document(&self, d: usize) -> Option<Vec<&[u32]>> {
        if d >= self.len() {
            return None;
        }
        Some(
            self.sentences(d)
                .map(|s| &self.tokens[self.sentence_span(s)])
                .collect(),
        )
    }

    /// Builds documents from text already in memory (one sentence per line, blank lines
    /// between documents), on one thread.
    pub fn from_text(tokenizer: &Tokenizer, text: &str) -> Documents {
        let mut docs = DocumentsBuilder::default();
        let block = tokenize_block(tokenizer, text.as_bytes(), &mut Workspace::default());
        // `text` is a `&str`: no line can fail to decode.
        if let Ok(block) = block {
            docs.append(&block);
        }
        docs.finish()
    }

    /// Reads and tokenizes `files` in order on `threads` threads (at least one).
    /// `on_bytes(done)` is called after each block with the bytes read so far (all files);
    /// returning `false` cancels.
    pub fn read(
        tokenizer: &Tokenizer,
        files: &[PathBuf],
        threads: usize,
        on_bytes: &mut dyn FnMut(u64) -> bool,
    ) -> Result<Documents> {
        let mut docs = DocumentsBuilder::default();
        let mut done = 0u64;
        let mut workspaces = vec![Workspace::default(); threads.max(1)];
        for path in files {
            read_file(tokenizer, path, &mut workspaces, &mut docs, &mut |n| {
                done += n as u64;
                on_bytes(done)
            })?;
        }
        Ok(docs.finish())
    }
}

/// What one input line contributes.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// A blank line (after `strip()`): Google appends a new, empty document.
    Blank,
    /// A sentence whose tokens end at this offset of the block's token list.
    Sentence(usize),
    /// A line with text but no tokens (e.g. only control characters): nothing.
    Nothing,
}

/// The tokenized lines of one block of text.
#[derive(Debug, Default)]
struct Block {
    tokens: Vec<u32>,
    lines: Vec<Line>,
}

/// A line of the block that is not UTF-8: its index in the block and the bad byte's offset.
struct BadLine {
    line: usize,
    byte: usize,
}

/// Tokenizes the lines of `text` (split on `\n` only, as `GFile.readline` does; a last line
/// without `\n` counts).
fn tokenize_block(
    tokenizer: &Tokenizer,
    text: &[u8],
    ws: &mut Workspace,
) -> std::result::Result<Block, BadLine> {
    let mut block = Block::default();
    if text.is_empty() {
        return Ok(block);
    }
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        // `GFile` in text mode decodes strictly: invalid UTF-8 is an error there too.
        let line = std::str::from_utf8(raw).map_err(|e| BadLine {
            line: i,
            byte: e.valid_up_to(),
        })?;
        let line = line.trim_matches(is_py_space);
        if line.is_empty() {
            block.lines.push(Line::Blank);
            continue;
        }
        tokens.clear();
        tokenizer.tokenize_with(line, ws, &mut tokens);
        if tokens.is_empty() {
            block.lines.push(Line::Nothing);
        } else {
            block.tokens.extend(tokens.iter().map(|t| t.id));
            block.lines.push(Line::Sentence(block.tokens.len()));
        }
    }
    Ok(block)
}

/// Python's `str.isspace()` (what `str.strip()` removes), CPython 3.11's table. It differs
/// from BERT's `_is_whitespace`: U+2028/U+2029 are stripped here but are neither whitespace
/// nor control characters to the tokenizer, so a line ending in one must be stripped first.
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\x1c'..='\x20'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Reads one file in blocks of whole lines, tokenizing each block's pieces in parallel.
fn read_file(
    tokenizer: &Tokenizer,
    path: &Path,
    workspaces: &mut [Workspace],
    docs: &mut DocumentsBuilder,
    on_bytes: &mut dyn FnMut(usize) -> bool,
) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let threads = workspaces.len();
    let target = BLOCK_PER_THREAD * threads;
    let mut buf: Vec<u8> = Vec::with_capacity(target);
    let mut line_base = 0usize; // lines of this file before `buf`
    let mut eof = false;
    while !eof || !buf.is_empty() {
        // Fill to the target size (or more, until a newline, for a giant line).
        while !eof && (buf.len() < target || !buf.contains(&b'\n')) {
            let old = buf.len();
            buf.resize(old + target.max(1 << 16), 0);
            let n = read_some(&mut file, &mut buf[old..]).map_err(|e| Error::io(path, e))?;
            buf.truncate(old + n);
            eof = n == 0;
        }
        let cut = if eof {
            buf.len()
        } else {
            buf.iter()
                .rposition(|&b| b == b'\n')
                .map_or(buf.len(), |p| p + 1)
        };
        let pieces = split_lines(&buf[..cut], threads);
        let results = tokenize_pieces(tokenizer, &pieces, workspaces);
        for (piece, result) in pieces.iter().zip(results) {
            match result {
                Ok(block) => docs.append(&block),
                Err(bad) => {
                    return Err(Error::InvalidUtf8 {
                        what: format!(
                            "{} line {} at byte {}",
                            path.display(),
                            line_base + bad.line + 1,
                            bad.byte
                        ),
                    })
                }
            }
            line_base += piece.iter().filter(|&&b| b == b'\n').count();
        }
        buf.drain(..cut);
        if !on_bytes(cut) {
            return Err(Error::Cancelled(
                "create_pretraining_data: cancelled while reading".into(),
            ));
        }
    }
    Ok(())
}

fn read_some(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Splits `text` (whole lines) into at most `n` pieces of whole lines of similar size.
fn split_lines(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let mut rest = text;
    for k in (1..=n).rev() {
        if rest.is_empty() {
            break;
        }
        let want = rest.len() / k;
        let cut = if k == 1 {
            rest.len()
        } else {
            rest[want..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| want + p + 1)
        };
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn tokenize_pieces(
    tokenizer: &Tokenizer,
    pieces: &[&[u8]],
    workspaces: &mut [Workspace],
) -> Vec<std::result::Result<Block, BadLine>> {
    if pieces.len() <= 1 {
        return pieces
            .iter()
            .map(|p| tokenize_block(tokenizer, p, &mut workspaces[0]))
            .collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .iter()
            .zip(workspaces.iter_mut())
            .map(|(piece, ws)| scope.spawn(move || tokenize_block(tokenizer, piece, ws)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                // The tokenizer does not panic on any input; if it ever did, re-raise it.
                Err(payload) => std::panic::resume_unwind(payload),
            })
            .collect()
    })
}

/// Google's `all_documents` being appended to, line by line.
#[derive(Debug, Default)]
struct DocumentsBuilder {
    docs: Documents,
}

impl DocumentsBuilder {
    fn append(&mut self, block: &Block) {
        let d = &mut self.docs;
        let base = d.tokens.len();
        d.tokens.extend_from_slice(&block.tokens);
        for line in &block.lines {
            match *line {
                Line::Blank => self.end_document(),
                Line::Sentence(end) => self.docs.sentence_ends.push(base + end),
                Line::Nothing => {}
            }
        }
    }

    /// Closes the current document, unless it is empty (Google drops empty ones later).
    fn end_document(&mut self) {
        let d = &mut self.docs;
        let start = d.document_ends.last().copied().unwrap_or(0);
        if d.sentence_ends.len() > start {
            d.document_ends.push(d.sentence_ends.len());
        }
    }

    fn finish(mut self) -> Documents {
        self.end_document();
        self.docs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Vocab;

    fn tokenizer() -> Tokenizer {
        let vocab = Vocab::from_tokens([
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##x",
        ])
        .unwrap();
        Tokenizer::new(vocab, true).unwrap()
    }

    #[test]
    fn blank_lines_split_documents_and_empty_ones_vanish() {
        let t = tokenizer();
        let text = "a b\n\n\n c \n\x00\nax\n  \nb\n\u{2028}\n\nc\u{2028}\n\x1f\na";
        let docs = Documents::from_text(&t, text);
        // "\x00" has text but no tokens: skipped, no new document. "\u{2028}" and "\x1f"
        // alone strip to blank lines (new documents), though the tokenizer sees neither as
        // whitespace; "c\u{2028}" strips to "c".
        assert_eq!(docs.len(), 5);
        assert_eq!(docs.document(0).unwrap(), vec![&[5, 6][..]]);
        assert_eq!(docs.document(1).unwrap(), vec![&[7][..], &[5, 8][..]]);
        assert_eq!(docs.document(2).unwrap(), vec![&[6][..]]);
        assert_eq!(docs.document(3).unwrap(), vec![&[7][..]]);
        assert_eq!(docs.document(4).unwrap(), vec![&[5][..]]);
        assert_eq!(docs.num_tokens(), 8);
        assert!(docs.document(5).is_none());
    }

    #[test]
    fn py_space_is_cpythons_isspace() {
        // CPython 3.11: [c for c in range(0x110000) if chr(c).isspace()]
        let want: Vec<u32> = [
            0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000,
            0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028,
            0x2029, 0x202f, 0x205f, 0x3000,
        ]
        .to_vec();
        let got: Vec<u32> = (0..0x11_0000u32)
            .filter(|&c| char::from_u32(c).is_some_and(is_py_space))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn split_lines_keeps_whole_lines() {
        let text = b"aa\nbbbb\nc\ndd\n";
        for n in 1..6 {
            let pieces = split_lines(text, n);
            assert!(pieces.len() <= n);
            assert_eq!(pieces.concat(), text.to_vec());
            assert!(pieces.iter().all(|p| p.ends_with(b"\n")));
        }
        assert!(split_lines(b"", 3).is_empty());
    }
}
