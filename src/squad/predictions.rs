//! run_squad.py: `write_predictions`, `_get_best_indexes` and `_compute_softmax`: from each
//! feature's start and end logits to the contents of `predictions.json`,
//! `nbest_predictions.json` and (SQuAD 2.0) `null_odds.json` ([`super::prediction_files`]).
//!
//! Per example, the `n_best_size` best start and end positions of every feature are paired;
//! pairs outside the document, not in the token's window of maximum context, reversed or
//! longer than `max_answer_length` are dropped; the rest are ranked by `start_logit +
//! end_logit` and turned into text by [`get_final_text`] until `n_best_size` distinct texts
//! are found. For SQuAD 2.0 the null answer ("") scores the smallest `start_logits[0] +
//! end_logits[0]` over the features, and the prediction is "" when that score minus the best
//! non-null score exceeds `null_score_diff_threshold`. Arithmetic is in f64 on the f32 logits,
//! as Python's floats are.
//!
//! Differences: where Google raises (a feature without logits, logits shorter than the
//! feature's tokens or not finite, a SQuAD 2.0 example without features) this returns an
//! error naming the feature or question. When a SQuAD 2.0 n-best list has no non-null entry
//! (Google raises `AttributeError`), Hugging Face's fix is followed: the nonce entry "empty"
//! with logits 0 is put first. Logits shorter than `max_seq_length` (a batch trimmed to its
//! longest feature) are accepted; the padding positions they lack then cannot take n-best
//! slots, which Google's padded logits can.

use std::collections::HashMap;

use super::examples::{Document, SquadExample};
use super::features::InputFeatures;
use super::final_text::get_final_text;
use super::pystr;
use crate::{Error, Result};

/// `RawResult`: the logits of one feature, `[seq]` each (Google: `max_seq_length`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawResult {
    pub unique_id: u64,
    pub start_logits: Vec<f32>,
    pub end_logits: Vec<f32>,
}

/// The flags of `write_predictions`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Candidates per example (and start/end positions per feature) considered.
    pub n_best_size: usize,
    /// Longest answer, in WordPiece tokens.
    pub max_answer_length: usize,
    /// As the tokenizer was built (`get_final_text` re-tokenizes the original words).
    pub do_lower_case: bool,
    /// SQuAD 2.0: score the null answer and write `null_odds.json`.
    pub version_2_with_negative: bool,
    /// Predict "" when the null score exceeds the best non-null score by more than this.
    pub null_score_diff_threshold: f64,
}

impl Default for PredictOptions {
    /// `run_squad.py`'s defaults (20, 30, uncased, SQuAD 1.1, 0.0).
    fn default() -> Self {
        PredictOptions {
            n_best_size: 20,
            max_answer_length: 30,
            do_lower_case: true,
            version_2_with_negative: false,
            null_score_diff_threshold: 0.0,
        }
    }
}

/// One entry of an n-best list.
#[derive(Debug, Clone, PartialEq)]
pub struct NbestEntry {
    pub text: String,
    /// Softmax of `start_logit + end_logit` over the example's n-best list.
    pub probability: f64,
    pub start_logit: f64,
    pub end_logit: f64,
    /// Byte span in the context from the first to the last character of `text`; `None`
    /// for the null answer and the nonce "empty". Between words the context may have other
    /// whitespace than the single spaces of `text`.
    pub offsets: Option<(usize, usize)>,
}

/// The prediction for one example.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub qas_id: String,
    /// What `predictions.json` holds for it ("" for no answer).
    pub text: String,
    /// Byte span of `text` in the context; `None` for "".
    pub offsets: Option<(usize, usize)>,
    /// `nbest_predictions.json`'s list, best first.
    pub nbest: Vec<NbestEntry>,
    /// SQuAD 2.0: `null_odds.json`'s score difference (null score minus the best non-null).
    pub null_odds: Option<f64>,
}

/// Every example's prediction, in example order.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub predictions: Vec<Prediction>,
    pub version_2_with_negative: bool,
}

/// A candidate span (`_PrelimPrediction`).
#[derive(Debug, Clone, Copy)]
struct Prelim {
    feature_index: usize,
    start_index: usize,
    end_index: usize,
    start_logit: f64,
    end_logit: f64,
}

/// `write_predictions(all_examples, all_features, all_results, ...)` without the writing:
/// the three files' contents come from [`Predictions`].
pub fn compute_predictions(
    examples: &[SquadExample],
    features: &[InputFeatures],
    results: &[RawResult],
    opts: &PredictOptions,
) -> Result<Predictions> {
    if opts.n_best_size == 0 {
        return Err(Error::InvalidArgument(
            "n_best_size must be at least 1".into(),
        ));
    }
    let mut example_index_to_features: HashMap<usize, Vec<&InputFeatures>> = HashMap::new();
    for f in features {
        example_index_to_features
            .entry(f.example_index)
            .or_default()
            .push(f);
    }
    // A repeated unique_id takes the last result, as Google's dict does.
    let unique_id_to_result: HashMap<u64, &RawResult> =
        results.iter().map(|r| (r.unique_id, r)).collect();
    let mut predictions = Vec::with_capacity(examples.len());
    for (example_index, example) in examples.iter().enumerate() {
        let features = example_index_to_features
            .get(&example_index)
            .map_or(&[][..], Vec::as_slice);
        predictions.push(predict_example(
            example,
            features,
            &unique_id_to_result,
            opts,
        )?);
    }
    Ok(Predictions {
        predictions,
        version_2_with_negative: opts.version_2_with_negative,
    })
}

fn predict_example(
    example: &SquadExample,
    features: &[&InputFeatures],
    results: &HashMap<u64, &RawResult>,
    opts: &PredictOptions,
) -> Result<Prediction> {
    let v2 = opts.version_2_with_negative;
    if v2 && features.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "question {}: no features",
            example.qas_id
        )));
    }
    let mut prelim = Vec::new();
    // The feature with the smallest null score (start + end logit at [CLS]).
    let mut score_null = 1_000_000.0;
    let mut min_null_feature_index = 0;
    let mut null_start_logit = 0.0;
    let mut null_end_logit = 0.0;
    for (feature_index, feature) in features.iter().enumerate() {
        let result = logits_of(example, feature, results)?;
        let start_logits = &result.start_logits;
        let end_logits = &result.end_logits;
        let logit = |l: &[f32], i: usize| f64::from(l[i]);
        if v2 {
            let feature_null_score = logit(start_logits, 0) + logit(end_logits, 0);
            if feature_null_score < score_null {
                score_null = feature_null_score;
                min_null_feature_index = feature_index;
                null_start_logit = logit(start_logits, 0);
                null_end_logit = logit(end_logits, 0);
            }
        }
        let start_indexes = get_best_indexes(start_logits, opts.n_best_size);
        let end_indexes = get_best_indexes(end_logits, opts.n_best_size);
        let n = feature.tokens.len();
        let in_doc = |i: usize| {
            feature
                .token_to_orig_map
                .get(i)
                .is_some_and(Option::is_some)
        };
        for &start_index in &start_indexes {
            for &end_index in &end_indexes {
                // Spans in the question, the padding or a window where the start token has
                // less context than in another one are thrown out.
                if start_index >= n || end_index >= n || !in_doc(start_index) || !in_doc(end_index)
                {
                    continue;
                }
                if !feature.token_is_max_context[start_index] || end_index < start_index {
                    continue;
                }
                if end_index - start_index + 1 > opts.max_answer_length {
                    continue;
                }
                prelim.push(Prelim {
                    feature_index,
                    start_index,
                    end_index,
                    start_logit: logit(start_logits, start_index),
                    end_logit: logit(end_logits, end_index),
                });
            }
        }
    }
    if v2 {
        prelim.push(Prelim {
            feature_index: min_null_feature_index,
            start_index: 0,
            end_index: 0,
            start_logit: null_start_logit,
            end_logit: null_end_logit,
        });
    }
    // `sorted(..., reverse=True)` is stable: equal scores keep their order.
    prelim.sort_by(|a, b| {
        (b.start_logit + b.end_logit)
            .partial_cmp(&(a.start_logit + a.end_logit))
            .unwrap_or(std::cmp::Ordering::Equal)
    });

    let mut seen: Vec<String> = Vec::new();
    let mut nbest: Vec<NbestEntry> = Vec::new();
    for pred in &prelim {
        if nbest.len() >= opts.n_best_size {
            break;
        }
        let (text, offsets) = if pred.start_index > 0 {
            let feature = features[pred.feature_index];
            span_text(example, feature, pred.start_index, pred.end_index, opts)
        } else {
            (String::new(), None)
        };
        if pred.start_index > 0 && seen.contains(&text) {
            continue;
        }
        if !seen.contains(&text) {
            seen.push(text.clone());
        }
        nbest.push(entry(text, pred.start_logit, pred.end_logit, offsets));
    }
    // If the null answer did not make the list, it is added.
    if v2 && !seen.iter().any(String::is_empty) {
        nbest.push(entry(String::new(), null_start_logit, null_end_logit, None));
    }
    // "In very rare edge cases we could have no valid predictions": a nonce prediction.
    if nbest.is_empty() {
        nbest.push(entry("empty".into(), 0.0, 0.0, None));
    }
    if v2 && nbest.iter().all(|e| e.text.is_empty()) {
        // Google raises here (best_non_null_entry is None); Hugging Face's fix.
        nbest.insert(0, entry("empty".into(), 0.0, 0.0, None));
    }
    let total_scores: Vec<f64> = nbest.iter().map(|e| e.start_logit + e.end_logit).collect();
    for (e, p) in nbest.iter_mut().zip(compute_softmax(&total_scores)) {
        e.probability = p;
    }
    let best_non_null = nbest.iter().find(|e| !e.text.is_empty());
    let (text, offsets, null_odds) = match (v2, best_non_null) {
        (true, Some(best)) => {
            let score_diff = score_null - best.start_logit - best.end_logit;
            if score_diff > opts.null_score_diff_threshold {
                (String::new(), None, Some(score_diff))
            } else {
                (best.text.clone(), best.offsets, Some(score_diff))
            }
        }
        _ => (nbest[0].text.clone(), nbest[0].offsets, None),
    };
    Ok(Prediction {
        qas_id: example.qas_id.clone(),
        text,
        offsets,
        nbest,
        null_odds,
    })
}

fn entry(
    text: String,
    start_logit: f64,
    end_logit: f64,
    offsets: Option<(usize, usize)>,
) -> NbestEntry {
    NbestEntry {
        text,
        probability: 0.0,
        start_logit,
        end_logit,
        offsets,
    }
}

/// The logits of a feature, checked: present, as long as its tokens, finite.
fn logits_of<'r>(
    example: &SquadExample,
    feature: &InputFeatures,
    results: &HashMap<u64, &'r RawResult>,
) -> Result<&'r RawResult> {
    let bad = |what: &str| {
        Error::InvalidArgument(format!(
            "question {}: feature {} {what}",
            example.qas_id, feature.unique_id
        ))
    };
    let r = *results
        .get(&feature.unique_id)
        .ok_or_else(|| bad("has no logits"))?;
    let n = feature.tokens.len().max(1);
    if r.start_logits.len() < n || r.end_logits.len() < n {
        return Err(bad(&format!(
            "has {} start and {} end logits for {n} tokens",
            r.start_logits.len(),
            r.end_logits.len()
        )));
    }
    if !r
        .start_logits
        .iter()
        .chain(&r.end_logits)
        .all(|x| x.is_finite())
    {
        return Err(bad("has logits that are not finite"));
    }
    Ok(r)
}

/// The text of tokens `start..=end` of a feature: the WordPieces de-tokenized, then
/// projected onto the original words by [`get_final_text`]; and its byte span in the context.
fn span_text(
    example: &SquadExample,
    feature: &InputFeatures,
    start: usize,
    end: usize,
    opts: &PredictOptions,
) -> (String, Option<(usize, usize)>) {
    let tok_tokens = feature.tokens.get(start..=end).unwrap_or(&[]);
    let orig = |i: usize| feature.token_to_orig_map.get(i).copied().flatten();
    let (Some(orig_doc_start), Some(orig_doc_end)) = (orig(start), orig(end)) else {
        return (String::new(), None); // unreachable: both were checked to be document tokens
    };
    let doc = &example.doc;
    let orig_tokens = doc
        .doc_tokens
        .get(orig_doc_start..=orig_doc_end)
        .unwrap_or(&[]);
    let tok_text = tok_tokens.join(" ");
    // De-tokenize WordPieces that have been split off, then clean whitespace.
    let tok_text = tok_text.replace(" ##", "").replace("##", "");
    let tok_text = pystr::split_whitespace(pystr::strip(&tok_text)).join(" ");
    let orig_text = orig_tokens.join(" ");
    let final_text = get_final_text(&tok_text, &orig_text, opts.do_lower_case);
    let offsets = context_span(doc, orig_doc_start, orig_doc_end, final_text.chars);
    (final_text.text, offsets)
}

/// Byte span in the context of characters `first..=last` of `" ".join(doc_tokens[a..=b])`.
fn context_span(
    doc: &Document,
    a: usize,
    b: usize,
    (first, last): (usize, usize),
) -> Option<(usize, usize)> {
    // Context byte of character `c` of the joined text, and its end; None for a joining space.
    let locate = |mut c: usize| -> Option<(usize, usize)> {
        for w in a..=b {
            let word = doc.doc_tokens.get(w)?;
            let n = word.chars().count();
            if c < n {
                let (off, ch) = word.char_indices().nth(c)?;
                let base = doc.doc_token_spans.get(w)?.0;
                return Some((base + off, base + off + ch.len_utf8()));
            }
            if c == n {
                return None;
            }
            c -= n + 1;
        }
        None
    };
    Some((locate(first)?.0, locate(last)?.1))
}

/// `_get_best_indexes`: the positions of the `n_best_size` largest logits, largest first,
/// the earlier position first among equal logits.
pub fn get_best_indexes(logits: &[f32], n_best_size: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| {
        logits[b]
            .partial_cmp(&logits[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order.truncate(n_best_size);
    order
}

/// `_compute_softmax`: `exp(s - max) / sum`, summed in order, in f64.
pub fn compute_softmax(scores: &[f64]) -> Vec<f64> {
    let Some(max_score) = scores.iter().copied().reduce(f64::max) else {
        return Vec::new();
    };
    let exp_scores: Vec<f64> = scores.iter().map(|s| (s - max_score).exp()).collect();
    let total_sum: f64 = exp_scores.iter().sum();
    exp_scores.iter().map(|x| x / total_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_indexes_and_softmax_like_python() {
        // sorted(enumerate(logits), key=lambda x: x[1], reverse=True) keeps ties in order.
        assert_eq!(
            get_best_indexes(&[1.0, 3.0, 1.0, 3.0, 2.0], 4),
            [1, 3, 4, 0]
        );
        assert_eq!(get_best_indexes(&[1.0], 20), [0]);
        let p = compute_softmax(&[1.0, 2.0, 3.0]);
        // Google's _compute_softmax([1.0, 2.0, 3.0]) in CPython 3.11.
        assert_eq!(
            p,
            [0.09003057317038046, 0.24472847105479764, 0.6652409557748218]
        );
        assert!(compute_softmax(&[]).is_empty());
    }
}
