//! `tokenization.py: BasicTokenizer`, in Google's order: clean text (drop NUL, U+FFFD,
//! Cc/Cf; whitespace is a separator) → spaces around CJK ideographs → split on whitespace →
//! if lower-casing: `str.lower()` (with the final-sigma rule), NFD, drop Mn → split off
//! punctuation.
//!
//! Instead of building the intermediate strings, one pass over the input finds the
//! whitespace tokens ("segments") and hands each basic token to a callback with a map back to
//! byte offsets in the original input. Pure-ASCII segments (most text) take a fast path whose
//! map is a plain shift.

use std::cell::Cell;
use std::ops::ControlFlow;

use super::unicode::{
    combining_class, flags, is_cjk, push_lower, push_nfd, CASED, CASE_IGNORABLE, CCC, DECOMP,
    LOWER, MN, PUNCT, REMOVED, SEPARATOR,
};

/// Maps byte ranges of a normalized basic token back to byte ranges of the original input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SrcMap<'a> {
    /// The token is an unchanged-length copy of the input starting at this byte.
    Shift(usize),
    /// Per byte of the normalized token: start and end of the input character it came from.
    Bytes {
        start: &'a [usize],
        end: &'a [usize],
    },
}

impl SrcMap<'_> {
    /// Input span of normalized bytes `a..b` (`a < b`). Canonical reordering can permute
    /// combining marks, so the span is the hull of the characters, not first..last.
    #[inline]
    pub(crate) fn span(&self, a: usize, b: usize) -> (usize, usize) {
        match *self {
            SrcMap::Shift(s) => (s + a, s + b),
            SrcMap::Bytes { start, end } => {
                let lo = start.get(a..b).and_then(|s| s.iter().min().copied());
                let hi = end.get(a..b).and_then(|s| s.iter().max().copied());
                (lo.unwrap_or(0), hi.unwrap_or(0))
            }
        }
    }
}

/// Reusable buffers of the slow (non-ASCII) path, so tokenizing many texts does not allocate.
#[derive(Debug, Default, Clone)]
pub(crate) struct BasicScratch {
    lower: String,
    /// Characters of the segment kept by clean-up: (char, input start, input end).
    kept: Vec<(char, usize, usize)>,
    /// Normalized characters: (char, input start, input end, combining class).
    chars: Vec<(char, usize, usize, u8)>,
    norm: String,
    start: Vec<usize>,
    end: Vec<usize>,
}

/// Google's `BasicTokenizer(do_lower_case)`.
#[derive(Debug, Clone, Copy)]
pub struct BasicTokenizer {
    /// Lower-case, decompose (NFD) and strip accents (Mn), as for uncased models.
    pub do_lower_case: bool,
}

/// Where the scanner is inside the current whitespace token.
struct Segment {
    start: usize,
    end: usize,
    /// All ASCII and contiguous in the input (no removed character inside).
    simple: bool,
    /// A removed character was skipped since the last kept one.
    gap: bool,
}

impl BasicTokenizer {
    /// Google's `BasicTokenizer.tokenize`: the basic tokens as strings.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.run(text, &mut BasicScratch::default(), &mut |t, _, _| {
            out.push(t.to_string())
        });
        out
    }

    /// Calls `emit(token, map, word)` for every basic token, in order. `word` counts the
    /// whitespace-separated words of the input (CJK characters do not start a new word).
    pub(crate) fn run(
        &self,
        text: &str,
        s: &mut BasicScratch,
        emit: &mut impl FnMut(&str, SrcMap<'_>, u32),
    ) {
        self.run_until(text, s, &mut |t, m, w| {
            emit(t, m, w);
            ControlFlow::Continue(())
        });
    }

    /// [`Self::run`] that stops when `emit` breaks: the rest of the whitespace token being
    /// split is still split (and not emitted), nothing after it is read. What was emitted is
    /// what [`Self::run`] emits first.
    pub(crate) fn run_until(
        &self,
        text: &str,
        s: &mut BasicScratch,
        emit: &mut impl FnMut(&str, SrcMap<'_>, u32) -> ControlFlow<()>,
    ) {
        let stopped = Cell::new(false);
        let emit = &mut |t: &str, m: SrcMap<'_>, w: u32| {
            if !stopped.get() && emit(t, m, w).is_break() {
                stopped.set(true);
            }
        };
        let bytes = text.as_bytes();
        let mut seg = Segment {
            start: 0,
            end: 0,
            simple: true,
            gap: false,
        };
        let mut word = 0u32;
        let mut seen_word = false;
        let mut after_sep = true;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let (c, len) = if b < 0x80 {
                (b as char, 1)
            } else {
                match text.get(i..).and_then(|t| t.chars().next()) {
                    Some(c) => (c, c.len_utf8()),
                    None => break, // unreachable for &str: i is always a char boundary
                }
            };
            let f = flags(c);
            if f & REMOVED != 0 {
                seg.gap = true;
            } else if f & SEPARATOR != 0 {
                self.flush(text, &mut seg, s, word, emit);
                if stopped.get() {
                    return;
                }
                after_sep = true;
            } else {
                if after_sep {
                    word += u32::from(seen_word);
                    seen_word = true;
                    after_sep = false;
                }
                if b >= 0x80 && is_cjk(c) {
                    // `_tokenize_chinese_chars`: the ideograph is a whitespace token alone.
                    self.flush(text, &mut seg, s, word, emit);
                    if stopped.get() {
                        return;
                    }
                    if self.do_lower_case && f & DECOMP != 0 {
                        self.slow(text, i, i + len, s, word, emit);
                    } else {
                        emit(&text[i..i + len], SrcMap::Shift(i), word);
                    }
                } else if seg.end == seg.start {
                    seg = Segment {
                        start: i,
                        end: i + len,
                        simple: b < 0x80,
                        gap: false,
                    };
                } else {
                    seg.simple &= b < 0x80 && !seg.gap;
                    seg.gap = false;
                    seg.end = i + len;
                }
            }
            i += len;
        }
        self.flush(text, &mut seg, s, word, emit);
    }

    fn flush(
        &self,
        text: &str,
        seg: &mut Segment,
        s: &mut BasicScratch,
        word: u32,
        emit: &mut impl FnMut(&str, SrcMap<'_>, u32),
    ) {
        if seg.end > seg.start {
            if seg.simple {
                self.ascii(text, seg.start, seg.end, s, word, emit);
            } else {
                self.slow(text, seg.start, seg.end, s, word, emit);
            }
        }
        seg.start = 0;
        seg.end = 0;
        seg.gap = false;
    }

    /// Fast path: an ASCII segment with nothing removed. Lower-casing keeps lengths and NFD
    /// changes nothing, so the map is a shift.
    fn ascii(
        &self,
        text: &str,
        start: usize,
        end: usize,
        s: &mut BasicScratch,
        word: u32,
        emit: &mut impl FnMut(&str, SrcMap<'_>, u32),
    ) {
        let mut seg = &text[start..end];
        if self.do_lower_case && seg.bytes().any(|b| b.is_ascii_uppercase()) {
            s.lower.clear();
            s.lower.push_str(seg);
            s.lower.make_ascii_lowercase();
            seg = &s.lower;
        }
        let mut piece = 0;
        for (j, b) in seg.bytes().enumerate() {
            if flags(b as char) & PUNCT != 0 {
                if piece < j {
                    emit(&seg[piece..j], SrcMap::Shift(start + piece), word);
                }
                emit(&seg[j..j + 1], SrcMap::Shift(start + j), word);
                piece = j + 1;
            }
        }
        if piece < seg.len() {
            emit(&seg[piece..], SrcMap::Shift(start + piece), word);
        }
    }

    /// General path for one segment `text[start..end]` (no separator or CJK inside).
    fn slow(
        &self,
        text: &str,
        start: usize,
        end: usize,
        s: &mut BasicScratch,
        word: u32,
        emit: &mut impl FnMut(&str, SrcMap<'_>, u32),
    ) {
        s.kept.clear();
        for (k, c) in text[start..end].char_indices() {
            if flags(c) & REMOVED == 0 {
                s.kept.push((c, start + k, start + k + c.len_utf8()));
            }
        }
        s.chars.clear();
        if self.do_lower_case {
            self.lower_nfd_strip(s);
        } else {
            s.chars.extend(s.kept.iter().map(|&(c, a, b)| (c, a, b, 0)));
        }
        s.norm.clear();
        s.start.clear();
        s.end.clear();
        for &(c, a, b, _) in &s.chars {
            s.norm.push(c);
            for _ in 0..c.len_utf8() {
                s.start.push(a);
                s.end.push(b);
            }
        }
        // `_run_split_on_punc`: every punctuation character is a token of its own. The map
        // handed out is sliced like the token, so piece offsets index it directly.
        let (norm, starts, ends) = (&s.norm, &s.start, &s.end);
        let mut emit_range = |a: usize, b: usize| {
            if let (Some(t), Some(start), Some(end)) =
                (norm.get(a..b), starts.get(a..b), ends.get(a..b))
            {
                emit(t, SrcMap::Bytes { start, end }, word);
            }
        };
        let mut piece = 0;
        let mut pos = 0;
        for &(c, ..) in &s.chars {
            let len = c.len_utf8();
            if flags(c) & PUNCT != 0 {
                if piece < pos {
                    emit_range(piece, pos);
                }
                emit_range(pos, pos + len);
                piece = pos + len;
            }
            pos += len;
        }
        if piece < norm.len() {
            emit_range(piece, norm.len());
        }
    }

    /// `token.lower()`, then `_run_strip_accents` (NFD, drop Mn), from `s.kept` into `s.chars`.
    fn lower_nfd_strip(&self, s: &mut BasicScratch) {
        let chars = &mut s.chars;
        for (idx, &(c, a, b)) in s.kept.iter().enumerate() {
            let mut nfd = |l: char| {
                if flags(l) & DECOMP != 0 {
                    push_nfd(l, &mut |d| chars.push((d, a, b, 0)));
                } else {
                    chars.push((l, a, b, 0));
                }
            };
            if c == '\u{3A3}' {
                nfd(if final_sigma(&s.kept, idx) {
                    '\u{3C2}'
                } else {
                    '\u{3C3}'
                });
            } else if flags(c) & LOWER != 0 {
                push_lower(c, &mut nfd);
            } else {
                nfd(c);
            }
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for ch in chars.iter_mut() {
            if flags(ch.0) & CCC != 0 {
                ch.3 = combining_class(ch.0);
            }
        }
        let mut i = 0;
        while i < chars.len() {
            if chars[i].3 == 0 {
                i += 1;
                continue;
            }
            let run = i;
            while i < chars.len() && chars[i].3 != 0 {
                i += 1;
            }
            chars[run..i].sort_by_key(|ch| ch.3); // stable
        }
        chars.retain(|ch| flags(ch.0) & MN == 0);
    }
}

/// Python's `str.lower()` final-sigma context (`unicodeobject.c: handle_capital_sigma`):
/// Σ becomes ς when preceded by a cased letter and not followed by one, skipping
/// case-ignorable characters both ways, within the string being lowered (one whitespace token).
fn final_sigma(kept: &[(char, usize, usize)], i: usize) -> bool {
    let not_ignorable = |&&(c, ..): &&(char, usize, usize)| flags(c) & CASE_IGNORABLE == 0;
    let before = kept
        .get(..i)
        .and_then(|k| k.iter().rev().find(not_ignorable));
    if !matches!(before, Some(&(c, ..)) if flags(c) & CASED != 0) {
        return false;
    }
    let after = kept.get(i + 1..).and_then(|k| k.iter().find(not_ignorable));
    !matches!(after, Some(&(c, ..)) if flags(c) & CASED != 0)
}
