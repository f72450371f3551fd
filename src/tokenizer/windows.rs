//! Overflowing windows with a stride: a text longer than the model's positions becomes
//! several overlapping inputs `[CLS] query [SEP] window [SEP]`, each token keeping its byte
//! span in the original text.
//!
//! This is the document-span machinery of `run_squad.py` (the `_DocSpan` loop of
//! `convert_examples_to_features` and `_check_is_max_context`), made general: SQuAD's features
//! are built on it ([`crate::squad`]), and a long text can be embedded window by window.
//! `doc_stride` is Google's: how far the next window *starts* after this one (not the overlap,
//! as Hugging Face's `stride` is).

use super::pad::{pad_to, Padding};
use super::vocab::{CLS, PAD, SEP};
use super::{Encoding, Token, Tokenizer};
use crate::{Error, Result};

/// Google's `_DocSpan`: the tokens `start..start + length` of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocSpan {
    pub start: usize,
    pub length: usize,
}

impl DocSpan {
    /// One past the last token.
    pub fn end(&self) -> usize {
        self.start + self.length
    }
}

/// The sliding window of `convert_examples_to_features`: windows of at most `max_tokens`
/// tokens, the next one starting `min(length, doc_stride)` tokens after this one, the last
/// one ending at the last token. A text of no tokens has no windows, as in Google's loop.
///
/// Errors: `max_tokens` is 0, `doc_stride` is 0 (Google's loop would never end), or
/// `doc_stride >= max_tokens` (the windows would not overlap, so a token at a window's edge
/// would never see context on that side).
pub fn doc_spans(num_tokens: usize, max_tokens: usize, doc_stride: usize) -> Result<Vec<DocSpan>> {
    if max_tokens == 0 {
        return Err(Error::InvalidArgument(
            "the window holds no text tokens (max_seq_length too small for the query)".into(),
        ));
    }
    if doc_stride == 0 || doc_stride >= max_tokens {
        return Err(Error::InvalidArgument(format!(
            "doc_stride {doc_stride} must be at least 1 and smaller than the window of \
             {max_tokens} text tokens"
        )));
    }
    let mut spans = Vec::with_capacity(num_tokens.div_ceil(doc_stride));
    let mut start = 0;
    while start < num_tokens {
        let length = (num_tokens - start).min(max_tokens);
        spans.push(DocSpan { start, length });
        if start + length == num_tokens {
            break;
        }
        start += length.min(doc_stride);
    }
    Ok(spans)
}

/// `_check_is_max_context(doc_spans, cur_span_index, position)`: whether window
/// `cur_span_index` is the one where token `position` has the most context, scored
/// `min(left, right) + 0.01 * window length`; the first window wins a tie.
pub fn check_is_max_context(spans: &[DocSpan], cur_span_index: usize, position: usize) -> bool {
    let mut best: Option<(f64, usize)> = None;
    for (index, span) in spans.iter().enumerate() {
        if position < span.start || position >= span.end() {
            continue;
        }
        let left = position - span.start;
        let right = span.end() - 1 - position;
        // The same doubles as Python's `min(l, r) + 0.01 * doc_span.length`.
        let score = left.min(right) as f64 + 0.01 * span.length as f64;
        if best.map_or(true, |(b, _)| score > b) {
            best = Some((score, index));
        }
    }
    best.is_some_and(|(_, index)| index == cur_span_index)
}

/// What [`Tokenizer::encode_windows`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOptions {
    /// Positions of one window, `[CLS]` and `[SEP]`s included (Google's `max_seq_length`).
    pub max_seq_length: usize,
    /// Tokens from the start of one window to the start of the next (Google's
    /// `doc_stride`); at least 1 and smaller than the text tokens a window holds.
    pub doc_stride: usize,
    /// Keep the first this many query tokens (Google's `max_query_length`); `None`: all.
    pub max_query_length: Option<usize>,
    /// Padding of the windows' encodings: `Padding::Fixed(max_seq_length)` as Google pads,
    /// `Padding::Longest` to the longest window.
    pub padding: Padding,
}

/// One window of a text, as model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `[CLS] query [SEP] text-window [SEP]` (type ids 0, then 1), or `[CLS] text-window
    /// [SEP]` without a query (type ids 0). Offsets of query tokens index the query, those
    /// of text tokens the text.
    pub encoding: Encoding,
    /// Which tokens of the whole text's tokenization the window holds.
    pub span: DocSpan,
    /// Position in `encoding` of the window's first text token (`len(query) + 2`, or 1).
    pub text_start: usize,
    /// Per text token of the window (`span.length` entries): whether this is the window
    /// where the token has the most context (`_check_is_max_context`).
    pub max_context: Vec<bool>,
}

impl Tokenizer {
    /// Tokenizes `text` (and `query`) and cuts the text into overlapping windows as
    /// `run_squad.py` cuts documents. An empty text gives one window with no text tokens
    /// (Google's loop gives none).
    ///
    /// Errors: the query leaves no room for text tokens, `doc_stride` is 0 or not smaller
    /// than the window, the vocabulary lacks `[CLS]`/`[SEP]` (or `[PAD]` when padding).
    pub fn encode_windows(
        &self,
        query: Option<&str>,
        text: &str,
        opts: &WindowOptions,
    ) -> Result<Vec<Window>> {
        let query = query.map(|q| self.tokenize(q));
        let text = self.tokenize(text);
        self.windows_of_tokens(query.as_deref(), &text, opts)
    }

    /// [`Tokenizer::encode_windows`] of text that is already tokenized (by this tokenizer),
    /// e.g. once for several questions about one paragraph.
    pub fn windows_of_tokens(
        &self,
        query: Option<&[Token<'_>]>,
        text: &[Token<'_>],
        opts: &WindowOptions,
    ) -> Result<Vec<Window>> {
        let cls = self.vocab().require(CLS, "windows")?;
        let sep = self.vocab().require(SEP, "windows")?;
        let query = query.map(|q| match opts.max_query_length {
            Some(max) => &q[..q.len().min(max)],
            None => q,
        });
        // `max_seq_length - len(query_tokens) - 3`: [CLS], [SEP] and [SEP].
        let specials = if query.is_some() { 3 } else { 2 };
        let used = query.map_or(0, <[Token<'_>]>::len) + specials;
        let max_tokens = opts.max_seq_length.saturating_sub(used);
        let mut spans = doc_spans(text.len(), max_tokens, opts.doc_stride)?;
        if spans.is_empty() {
            spans.push(DocSpan {
                start: 0,
                length: 0,
            });
        }
        let pad_id = match opts.padding {
            Padding::None => None,
            _ => Some(self.vocab().require(PAD, "padding")?),
        };
        let text_type = u32::from(query.is_some());
        let mut windows = Vec::with_capacity(spans.len());
        for (index, span) in spans.iter().enumerate() {
            let mut e = Encoding::default();
            push(&mut e, None, CLS, cls, 0);
            if let Some(query) = query {
                for t in query {
                    push(&mut e, Some(t), t.text, t.id, 0);
                }
                push(&mut e, None, SEP, sep, 0);
            }
            let text_start = e.len();
            let window = text.get(span.start..span.end()).unwrap_or(&[]);
            for t in window {
                push(&mut e, Some(t), t.text, t.id, text_type);
            }
            push(&mut e, None, SEP, sep, text_type);
            let max_context = (span.start..span.end())
                .map(|p| check_is_max_context(&spans, index, p))
                .collect();
            windows.push(Window {
                encoding: e,
                span: *span,
                text_start,
                max_context,
            });
        }
        if let Some(pad_id) = pad_id {
            let len = match opts.padding {
                Padding::Fixed(n) => n,
                _ => windows.iter().map(|w| w.encoding.len()).max().unwrap_or(0),
            };
            for w in &mut windows {
                pad_to(&mut w.encoding, len, pad_id)?;
            }
        }
        Ok(windows)
    }
}

/// Appends one position: a token of the query or text (`Some`), or a special token.
fn push(e: &mut Encoding, token: Option<&Token<'_>>, text: &str, id: u32, type_id: u32) {
    e.ids.push(id);
    e.type_ids.push(type_id);
    e.tokens.push(text.to_string());
    e.offsets.push(token.map(|t| (t.start, t.end)));
    e.word_ids.push(token.map(|t| t.word));
    e.special_tokens_mask.push(u8::from(token.is_none()));
    e.attention_mask.push(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Vocab;
    use proptest::prelude::*;

    #[test]
    fn googles_docstring_example() {
        // _check_is_max_context's comment: "the man went to the store and bought a gallon of
        // milk", spans A = "the man went to the", B = "to the store and bought",
        // C = "and bought a gallon of": 'bought' (7) has most context in C.
        let spans = doc_spans(12, 5, 3).unwrap();
        let starts: Vec<_> = spans.iter().map(|s| (s.start, s.length)).collect();
        assert_eq!(starts, [(0, 5), (3, 5), (6, 5), (9, 3)]);
        assert!(!check_is_max_context(&spans, 1, 7));
        assert!(check_is_max_context(&spans, 2, 7));
        // 'to' (3): A has 3 left, 1 right; B has 0 left: A wins.
        assert!(check_is_max_context(&spans, 0, 3));
        // Equal min-context: the longer window wins by 0.01 * length (C over D for 'gallon'
        // at 9: C has left 3, right 1 -> 1.05; D has left 0 -> 0.03).
        assert!(check_is_max_context(&spans, 2, 9));
    }

    #[test]
    fn a_tie_goes_to_the_first_window() {
        // Windows of equal length, token 5 with min(left, right) 2 in both.
        let spans = [
            DocSpan {
                start: 0,
                length: 8,
            },
            DocSpan {
                start: 3,
                length: 8,
            },
        ];
        assert!(check_is_max_context(&spans, 0, 5));
        assert!(!check_is_max_context(&spans, 1, 5));
    }

    #[test]
    fn bad_strides_are_errors() {
        assert!(doc_spans(10, 0, 1).is_err());
        assert!(doc_spans(10, 5, 0).is_err());
        assert!(doc_spans(10, 5, 5).is_err());
        assert!(doc_spans(10, 5, 4).is_ok());
        assert!(doc_spans(0, 5, 4).unwrap().is_empty());
    }

    fn tokenizer() -> Tokenizer {
        let words = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "man", "went", "to", "store", "##s", ".",
        ];
        Tokenizer::new(Vocab::from_tokens(words).unwrap(), true).unwrap()
    }

    #[test]
    fn windows_of_a_pair() {
        let tok = tokenizer();
        let opts = WindowOptions {
            max_seq_length: 9,
            doc_stride: 2,
            max_query_length: Some(1),
            padding: Padding::Fixed(9),
        };
        let text = "The man went to the stores.";
        let w = tok.encode_windows(Some("man went"), text, &opts).unwrap();
        // The query is cut to "man": 9 - 1 - 3 = 5 text tokens per window, stride 2.
        let spans: Vec<_> = w.iter().map(|w| (w.span.start, w.span.length)).collect();
        assert_eq!(spans, [(0, 5), (2, 5), (4, 4)]);
        let tokens = |i: usize| w[i].encoding.tokens.join(" ");
        assert_eq!(tokens(0), "[CLS] man [SEP] the man went to the [SEP]");
        assert_eq!(tokens(1), "[CLS] man [SEP] went to the store ##s [SEP]");
        assert_eq!(tokens(2), "[CLS] man [SEP] the store ##s . [SEP] [PAD]");
        assert_eq!(w[2].encoding.attention_mask, [1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(w[0].text_start, 3);
        assert_eq!(w[0].encoding.type_ids, [0, 0, 0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(
            w[0].encoding.offsets[1],
            Some((0, 3)),
            "offsets of the query"
        );
        assert_eq!(w[0].encoding.offsets[3], Some((0, 3)));
        assert_eq!(w[1].encoding.offsets[5], Some((16, 19)));
        assert_eq!(w[1].encoding.offsets[7], Some((25, 26)));
        // Token 3 ("to") ties between windows 0 and 1 (1.05 each): the first wins.
        assert_eq!(w[0].max_context, [true, true, true, true, false]);
        assert_eq!(w[1].max_context, [false, false, true, true, false]);
        assert_eq!(w[2].max_context, [false, false, true, true]);
    }

    #[test]
    fn a_text_alone_and_an_empty_text() {
        let tok = tokenizer();
        let opts = WindowOptions {
            max_seq_length: 5,
            doc_stride: 2,
            max_query_length: None,
            padding: Padding::None,
        };
        let w = tok.encode_windows(None, "the man went to", &opts).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].encoding.tokens.join(" "), "[CLS] went to [SEP]");
        assert_eq!(w[1].text_start, 1);
        assert_eq!(w[1].encoding.type_ids, [0, 0, 0, 0]);
        let empty = tok.encode_windows(None, " ", &opts).unwrap();
        assert_eq!(empty.len(), 1);
        assert_eq!(empty[0].encoding.tokens.join(" "), "[CLS] [SEP]");
        let longest = WindowOptions {
            padding: Padding::Longest,
            ..opts
        };
        let w = tok
            .encode_windows(None, "the man went to", &longest)
            .unwrap();
        assert_eq!(w[1].encoding.tokens.join(" "), "[CLS] went to [SEP] [PAD]");
        assert_eq!(w[1].encoding.attention_mask, [1, 1, 1, 1, 0]);
        // A query of 2 tokens leaves 5 - 2 - 3 = 0 text tokens.
        assert!(tok.encode_windows(Some("the man"), "went", &opts).is_err());
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "the", "man", "went", "stores", "to", ".", " ", "  ", "\t", "é", "Man", "x", "\u{3000}",
        ]);
        prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn spans_cover_every_token_in_order(n in 0usize..200, max in 1usize..40, stride in 1usize..40) {
            prop_assume!(stride < max);
            let spans = doc_spans(n, max, stride).unwrap();
            if n == 0 {
                prop_assert!(spans.is_empty());
                return Ok(());
            }
            prop_assert_eq!(spans[0].start, 0);
            prop_assert_eq!(spans.last().unwrap().end(), n);
            for pair in spans.windows(2) {
                // Each window starts `stride` after the previous one and overlaps it.
                prop_assert_eq!(pair[1].start, pair[0].start + stride);
                prop_assert!(pair[1].start < pair[0].end());
            }
            for s in &spans {
                prop_assert!(s.length >= 1 && s.length <= max);
            }
            // Every token has exactly one window of maximum context.
            for p in 0..n {
                let best = (0..spans.len()).filter(|&i| check_is_max_context(&spans, i, p)).count();
                prop_assert_eq!(best, 1);
            }
        }

        #[test]
        fn windows_index_the_original_text(text in text_strategy(), max in 4usize..12, stride in 1usize..8) {
            let tok = tokenizer();
            let opts = WindowOptions {
                max_seq_length: max + 4,
                doc_stride: stride,
                max_query_length: Some(1),
                padding: Padding::None,
            };
            prop_assume!(stride < max);
            let windows = tok.encode_windows(Some("man"), &text, &opts).unwrap();
            let whole = tok.tokenize(&text);
            let mut kept = Vec::new();
            for w in &windows {
                let e = &w.encoding;
                prop_assert!(e.len() <= opts.max_seq_length);
                for (k, i) in (w.text_start..w.text_start + w.span.length).enumerate() {
                    let (a, b) = e.offsets[i].unwrap();
                    // The offsets slice the original text, and it is the token's own text.
                    let piece = text.get(a..b).unwrap();
                    if e.tokens[i] != "[UNK]" {
                        prop_assert_eq!(&tok.normalize(piece), e.tokens[i].trim_start_matches("##"));
                    }
                    prop_assert_eq!(&whole[w.span.start + k].text, &e.tokens[i].as_str());
                    if w.max_context[k] {
                        kept.push((a, b, e.tokens[i].clone()));
                    }
                }
            }
            // The max-context tokens of all windows are the text's tokens, each once, in order.
            let all: Vec<_> = whole.iter().map(|t| (t.start, t.end, t.text.to_string())).collect();
            prop_assert_eq!(kept, all);
        }
    }
}
