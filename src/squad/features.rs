//! run_squad.py: `InputFeatures`, `convert_examples_to_features` and `_improve_answer_span`.
//!
//! Each doc token is WordPiece-tokenized on its own, as Google does; the query is cut to
//! `max_query_length` tokens; the document is cut into windows of `max_seq_length -
//! len(query) - 3` tokens advancing by `doc_stride` ([`crate::tokenizer::doc_spans`]), each
//! window one feature `[CLS] query [SEP] window [SEP]` zero-padded to `max_seq_length`. In
//! training mode a window that does not hold the whole answer (and every window of an
//! impossible question) gets start = end = 0, the `[CLS]` position.
//!
//! Besides Google's fields each feature keeps the byte span in the context of every
//! document token, so an answer can be returned as offsets into the caller's text.
//!
//! Differences, on input Google does not check: `doc_stride` must be at least 1 (Google's
//! loop never ends at 0) and smaller than the smallest window (`max_seq_length -
//! max_query_length - 3`; Google then makes windows that do not overlap), and a context
//! without WordPiece tokens (only control characters) is an error naming the question
//! (Google makes no feature for it and fails later, in `write_predictions`).

use std::sync::Arc;

use super::examples::{Document, SquadExample};
use crate::tokenizer::{Padding, Token, Tokenizer, Window, WindowOptions};
use crate::{Error, Result};

/// The first `unique_id`, as in `convert_examples_to_features`.
pub const UNIQUE_ID_START: u64 = 1_000_000_000;

/// The flags of `convert_examples_to_features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureOptions {
    /// Positions of a feature, `[CLS]` and `[SEP]`s included.
    pub max_seq_length: usize,
    /// Tokens between the starts of two windows of one document.
    pub doc_stride: usize,
    /// Query tokens kept (the first ones).
    pub max_query_length: usize,
}

impl Default for FeatureOptions {
    /// `run_squad.py`'s defaults: 384, 128, 64.
    fn default() -> Self {
        FeatureOptions {
            max_seq_length: 384,
            doc_stride: 128,
            max_query_length: 64,
        }
    }
}

impl FeatureOptions {
    /// `validate_flags_or_throw`'s check of the lengths, and a `doc_stride` the windows can
    /// use (see the module documentation).
    pub fn validate(&self) -> Result<()> {
        let FeatureOptions {
            max_seq_length,
            doc_stride,
            max_query_length,
        } = *self;
        if max_seq_length <= max_query_length + 3 {
            return Err(Error::InvalidArgument(format!(
                "The max_seq_length ({max_seq_length}) must be greater than max_query_length \
                 ({max_query_length}) + 3"
            )));
        }
        let smallest_window = max_seq_length - max_query_length - 3;
        if doc_stride == 0 || doc_stride >= smallest_window {
            return Err(Error::InvalidArgument(format!(
                "doc_stride ({doc_stride}) must be at least 1 and smaller than the smallest \
                 document window, max_seq_length - max_query_length - 3 = {smallest_window}"
            )));
        }
        Ok(())
    }
}

/// `run_squad.InputFeatures`: one window of one example, as model input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFeatures {
    pub unique_id: u64,
    /// Index of the example in the list given to [`convert_examples_to_features`].
    pub example_index: usize,
    /// Index of this window among the example's windows.
    pub doc_span_index: usize,
    /// `[CLS] query [SEP] window [SEP]`, not padded.
    pub tokens: Vec<String>,
    /// Per entry of `tokens`: the index into `doc_tokens` of the word a document token came
    /// from; `None` for `[CLS]`, the query and `[SEP]` (Google's dict has no such keys).
    pub token_to_orig_map: Vec<Option<usize>>,
    /// Per entry of `tokens`: whether this window is the token's window of maximum context;
    /// `false` for tokens that are not document tokens.
    pub token_is_max_context: Vec<bool>,
    /// Per entry of `tokens`: the byte span in the context of a document token; `None` for
    /// the others.
    pub offsets: Vec<Option<(usize, usize)>>,
    /// `[max_seq_length]`, zero-padded.
    pub input_ids: Vec<u32>,
    /// `[max_seq_length]`: 1 for real tokens, 0 for padding.
    pub input_mask: Vec<u32>,
    /// `[max_seq_length]`: 0 for `[CLS] query [SEP]` and padding, 1 for `window [SEP]`.
    pub segment_ids: Vec<u32>,
    /// Training: the answer's first token in `tokens`, 0 when the window does not hold the
    /// answer or there is none. `None` in prediction mode.
    pub start_position: Option<usize>,
    /// Training: the answer's last token (see `start_position`).
    pub end_position: Option<usize>,
    pub is_impossible: bool,
}

/// The WordPiece tokens of one document, as `convert_examples_to_features` builds them.
struct DocTokens<'t> {
    /// `all_doc_tokens`, with byte spans in the context.
    tokens: Vec<Token<'t>>,
    /// `tok_to_orig_index`: the word of each token.
    tok_to_orig_index: Vec<usize>,
    /// `orig_to_tok_index`: the first token of each word (of the next word with tokens, for
    /// a word without any).
    orig_to_tok_index: Vec<usize>,
}

fn tokenize_doc<'t>(tokenizer: &'t Tokenizer, doc: &Document) -> DocTokens<'t> {
    let mut ws = crate::tokenizer::Workspace::default();
    let mut tokens = Vec::new();
    let mut tok_to_orig_index = Vec::new();
    let mut orig_to_tok_index = Vec::with_capacity(doc.doc_tokens.len());
    let mut word_tokens = Vec::new();
    for (i, (word, &(base, _))) in doc.doc_tokens.iter().zip(&doc.doc_token_spans).enumerate() {
        orig_to_tok_index.push(tokens.len());
        word_tokens.clear();
        tokenizer.tokenize_with(word, &mut ws, &mut word_tokens);
        for t in &word_tokens {
            tok_to_orig_index.push(i);
            tokens.push(Token {
                start: base + t.start,
                end: base + t.end,
                word: i as u32,
                ..*t
            });
        }
    }
    DocTokens {
        tokens,
        tok_to_orig_index,
        orig_to_tok_index,
    }
}

/// `convert_examples_to_features(examples, tokenizer, max_seq_length, doc_stride,
/// max_query_length, is_training)`: the features of every example, in order, `unique_id`s
/// counting from [`UNIQUE_ID_START`].
pub fn convert_examples_to_features(
    examples: &[SquadExample],
    tokenizer: &Tokenizer,
    opts: &FeatureOptions,
    is_training: bool,
) -> Result<Vec<InputFeatures>> {
    opts.validate()?;
    let window_opts = WindowOptions {
        max_seq_length: opts.max_seq_length,
        doc_stride: opts.doc_stride,
        max_query_length: Some(opts.max_query_length),
        padding: Padding::None,
    };
    let mut features = Vec::new();
    let mut unique_id = UNIQUE_ID_START;
    // Questions about one paragraph share its `Document`: tokenize it once.
    let mut cached: Option<(&Arc<Document>, DocTokens<'_>)> = None;
    for (example_index, example) in examples.iter().enumerate() {
        if !matches!(&cached, Some((doc, _)) if Arc::ptr_eq(doc, &example.doc)) {
            cached = Some((&example.doc, tokenize_doc(tokenizer, &example.doc)));
        }
        let Some((_, doc)) = &cached else {
            continue; // unreachable: just filled
        };
        if doc.tokens.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "question {}: the context has no WordPiece tokens",
                example.qas_id
            )));
        }
        let query_tokens = tokenizer.tokenize(&example.question_text);
        let answer = if is_training && !example.is_impossible {
            Some(answer_tokens(example, doc, tokenizer)?)
        } else {
            None
        };
        let windows = tokenizer
            .windows_of_tokens(Some(&query_tokens), &doc.tokens, &window_opts)
            .map_err(|e| Error::InvalidArgument(format!("question {}: {e}", example.qas_id)))?;
        for (doc_span_index, window) in windows.into_iter().enumerate() {
            let (start_position, end_position) = match (is_training, answer) {
                (false, _) => (None, None),
                (true, None) => (Some(0), Some(0)),
                (true, Some(answer)) => {
                    let (s, e) = answer_in_window(answer, &window);
                    (Some(s), Some(e))
                }
            };
            features.push(feature(
                window,
                doc,
                opts.max_seq_length,
                (unique_id, example_index, doc_span_index),
                (start_position, end_position),
                example.is_impossible,
            ));
            unique_id += 1;
        }
    }
    Ok(features)
}

/// `tok_start_position`, `tok_end_position` of a training answer, improved by
/// [`improve_answer_span`]. Python's arithmetic is kept in `isize`: a word without tokens
/// at the answer's edge makes Google's span empty or reversed, and it is used as it is.
fn answer_tokens(
    example: &SquadExample,
    doc: &DocTokens<'_>,
    tokenizer: &Tokenizer,
) -> Result<(isize, isize)> {
    let missing = || {
        Error::InvalidArgument(format!(
            "question {}: a training example has no answer position",
            example.qas_id
        ))
    };
    let start = example.start_position.ok_or_else(missing)?;
    let end = example.end_position.ok_or_else(missing)?;
    let tok_of = |word: usize| {
        doc.orig_to_tok_index.get(word).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "question {}: answer word {word} is outside the context",
                example.qas_id
            ))
        })
    };
    let tok_start = tok_of(start)? as isize;
    let tok_end = if end + 1 < example.doc_tokens().len() {
        tok_of(end + 1)? as isize - 1
    } else {
        doc.tokens.len() as isize - 1
    };
    let answer_text = example.orig_answer_text.as_deref().unwrap_or("");
    Ok(improve_answer_span(
        &doc.tokens,
        tok_start,
        tok_end,
        tokenizer,
        answer_text,
    ))
}

/// `_improve_answer_span`: the first (by start, then longest) sub-span of
/// `doc_tokens[input_start..=input_end]` whose tokens, joined by spaces, equal the answer
/// text's tokens joined by spaces; the input span when there is none. E.g. the answer
/// "1895" of the word "(1895-1943)." becomes the token "1895" alone.
pub fn improve_answer_span(
    doc_tokens: &[Token<'_>],
    input_start: isize,
    input_end: isize,
    tokenizer: &Tokenizer,
    orig_answer_text: &str,
) -> (isize, isize) {
    let answer: Vec<&str> = tokenizer
        .tokenize(orig_answer_text)
        .iter()
        .map(|t| t.text)
        .collect();
    let tok_answer_text = answer.join(" ");
    for new_start in input_start..=input_end {
        for new_end in (new_start..=input_end).rev() {
            let span = usize::try_from(new_start)
                .ok()
                .zip(usize::try_from(new_end).ok())
                .and_then(|(s, e)| doc_tokens.get(s..=e));
            let Some(span) = span else { continue };
            let text_span: Vec<&str> = span.iter().map(|t| t.text).collect();
            if text_span.join(" ") == tok_answer_text {
                return (new_start, new_end);
            }
        }
    }
    (input_start, input_end)
}

/// Google's training positions of an answer in one window: its token positions when the
/// window holds it whole, else (0, 0).
fn answer_in_window((tok_start, tok_end): (isize, isize), window: &Window) -> (usize, usize) {
    let doc_start = window.span.start as isize;
    let doc_end = window.span.end() as isize - 1;
    if !(tok_start >= doc_start && tok_end <= doc_end) {
        return (0, 0);
    }
    // `len(query_tokens) + 2`: where the window starts in the feature.
    let doc_offset = window.text_start as isize;
    let position = |tok: isize| usize::try_from(tok - doc_start + doc_offset).unwrap_or(0);
    (position(tok_start), position(tok_end))
}

/// One feature from one window.
fn feature(
    window: Window,
    doc: &DocTokens<'_>,
    max_seq_length: usize,
    (unique_id, example_index, doc_span_index): (u64, usize, usize),
    (start_position, end_position): (Option<usize>, Option<usize>),
    is_impossible: bool,
) -> InputFeatures {
    let e = window.encoding;
    let n = e.tokens.len();
    let mut token_to_orig_map = vec![None; n];
    let mut token_is_max_context = vec![false; n];
    let mut offsets = vec![None; n];
    for k in 0..window.span.length {
        let position = window.text_start + k;
        let split_token_index = window.span.start + k;
        if let (Some(map), Some(max), Some(off)) = (
            token_to_orig_map.get_mut(position),
            token_is_max_context.get_mut(position),
            offsets.get_mut(position),
        ) {
            *map = doc.tok_to_orig_index.get(split_token_index).copied();
            *max = window.max_context.get(k).copied().unwrap_or(false);
            *off = e.offsets.get(position).copied().flatten();
        }
    }
    // Google zero-pads: id 0 (whatever the vocabulary has there), mask 0, segment 0.
    let pad = |mut v: Vec<u32>| {
        v.resize(max_seq_length.max(n), 0);
        v
    };
    InputFeatures {
        unique_id,
        example_index,
        doc_span_index,
        input_ids: pad(e.ids),
        input_mask: pad(vec![1; n]),
        segment_ids: pad(e.type_ids),
        tokens: e.tokens,
        token_to_orig_map,
        token_is_max_context,
        offsets,
        start_position,
        end_position,
        is_impossible,
    }
}
