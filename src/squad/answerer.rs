//! Extractive question answering over any text with a SQuAD-fine-tuned model: run_squad.py's
//! prediction path ([`super::convert_examples_to_features`], the span head,
//! [`super::compute_predictions`]) behind one call.
//!
//! A context longer than one window is cut into overlapping windows (`doc_stride`); each
//! token's answer comes from the window where it has the most context, as in Google's
//! `write_predictions`. Windows of several questions share batches. Answers are byte spans
//! of the context, so `&context[a.start_byte..a.end_byte]` is `a.text` (Google's
//! `predictions.json` text joins words with single spaces; here the context's own bytes are
//! returned).

use std::path::Path;
use std::sync::Arc;

use super::examples::{split_context, SquadExample};
use super::features::{convert_examples_to_features, FeatureOptions, InputFeatures};
use super::model::SquadModel;
use super::predictions::{compute_predictions, PredictOptions, RawResult};
use super::FeatureBatch;
use crate::backend::{Backend, Cpu};
use crate::heads::squad::SpanLogits;
use crate::model::{Context, Inputs};
use crate::tokenizer::Tokenizer;
use crate::Result;

/// One answer: a span of the context.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `context[start_byte..end_byte]`.
    pub text: String,
    pub start_byte: usize,
    pub end_byte: usize,
    /// Softmax of `start_logit + end_logit` over the question's best candidates (at least
    /// 20, as `n_best_size`): comparable within one question, not across questions.
    pub score: f32,
}

/// How questions are answered, apart from the model: the windows, the longest answer (in
/// WordPieces) and the windows run per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerOptions {
    pub windows: FeatureOptions,
    pub max_answer_length: usize,
    pub batch_size: usize,
}

impl AnswerOptions {
    /// run_squad.py's defaults for a model of `max_position_embeddings` positions: windows
    /// of 384 (or the model's limit if smaller), [`default_windows`]; answers of at most 30
    /// WordPieces; 8 windows per batch.
    pub fn for_model(max_position_embeddings: usize) -> AnswerOptions {
        AnswerOptions {
            windows: default_windows(max_position_embeddings.min(384)),
            max_answer_length: 30,
            batch_size: 8,
        }
    }

    /// The windows' own checks, and windows the model can hold.
    pub fn validate(&self, max_position_embeddings: usize) -> Result<()> {
        self.windows.validate()?;
        if self.windows.max_seq_length > max_position_embeddings {
            return Err(crate::Error::InvalidArgument(format!(
                "max_seq_length {} exceeds the model's {max_position_embeddings} positions",
                self.windows.max_seq_length
            )));
        }
        Ok(())
    }
}

/// Windows of `max_seq_length` positions with run_squad.py's query and stride scaled down
/// for short windows: 64 query tokens (at most a quarter of the window) and a stride of 128
/// (at most half the document part, at least 1).
pub fn default_windows(max_seq_length: usize) -> FeatureOptions {
    let max_query_length = 64.min(max_seq_length / 4);
    FeatureOptions {
        max_seq_length,
        doc_stride: default_stride(max_seq_length, max_query_length),
        max_query_length,
    }
}

/// [`default_windows`]'s stride for a given query length.
pub fn default_stride(max_seq_length: usize, max_query_length: usize) -> usize {
    let window = max_seq_length.saturating_sub(max_query_length + 3);
    128.min(window / 2).max(1)
}

/// A SQuAD model ready to answer questions, on a back end (the CPU unless said otherwise;
/// [`SquadModel::load_on`]). Immutable and `Send + Sync`; each thread brings its own
/// [`Context`] (made on the same back end).
#[derive(Debug)]
pub struct QuestionAnswerer<B: Backend = Cpu> {
    model: SquadModel<B>,
    opts: AnswerOptions,
}

impl QuestionAnswerer {
    /// Loads a fine-tuned SQuAD model ([`SquadModel::load`]) with run_squad.py's window
    /// defaults (384 positions, or the model's limit if smaller; stride 128; 64 query
    /// tokens).
    pub fn load(path: impl AsRef<Path>) -> Result<QuestionAnswerer> {
        QuestionAnswerer::new(SquadModel::load(path)?)
    }
}

impl<B: Backend> QuestionAnswerer<B> {
    /// [`QuestionAnswerer::load`] on another back end (e.g. `backend::Vulkan` with the
    /// `vulkan` feature; [`SquadModel::load_on`]).
    pub fn load_on(backend: B, path: impl AsRef<Path>) -> Result<Self> {
        QuestionAnswerer::new(SquadModel::load_on(backend, path.as_ref(), None, None)?)
    }

    /// [`QuestionAnswerer::load`]'s defaults ([`AnswerOptions::for_model`]) for a loaded
    /// model.
    pub fn new(model: SquadModel<B>) -> Result<Self> {
        let opts = AnswerOptions::for_model(model.config().max_position_embeddings);
        QuestionAnswerer::with_options(model, opts.windows, opts.max_answer_length, opts.batch_size)
    }

    /// Explicit windows, longest answer (in WordPieces) and windows per batch.
    pub fn with_options(
        model: SquadModel<B>,
        windows: FeatureOptions,
        max_answer_length: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let opts = AnswerOptions {
            windows,
            max_answer_length,
            batch_size: batch_size.max(1),
        };
        opts.validate(model.config().max_position_embeddings)?;
        Ok(QuestionAnswerer { model, opts })
    }

    pub fn model(&self) -> &SquadModel<B> {
        &self.model
    }

    pub fn options(&self) -> &AnswerOptions {
        &self.opts
    }

    /// The `top_k` best answers to `question` in `context`, best first (fewer when the
    /// context has fewer distinct candidate spans; none for a context without words).
    pub fn answer(
        &self,
        ctx: &mut Context<B>,
        question: &str,
        context: &str,
        top_k: usize,
    ) -> Result<Vec<Answer>> {
        Ok(self
            .answer_batch(ctx, &[(question, context)], top_k)?
            .pop()
            .unwrap_or_default())
    }

    /// [`QuestionAnswerer::answer`] for several `(question, context)` pairs, their windows
    /// batched together; one list per pair, in order.
    pub fn answer_batch(
        &self,
        ctx: &mut Context<B>,
        pairs: &[(&str, &str)],
        top_k: usize,
    ) -> Result<Vec<Vec<Answer>>> {
        let m = &self.model;
        answer_batch_with(
            m.tokenizer(),
            &self.opts,
            ctx,
            pairs,
            top_k,
            |ctx, inputs| m.logits(ctx, inputs),
        )
    }
}

/// [`QuestionAnswerer::answer_batch`] for a model kept in parts ([`SquadModel::into_parts`]):
/// `logits` runs the encoder and the span head on a batch ([`super::model::span_logits`]).
/// `opts` must have passed [`AnswerOptions::validate`] for the model.
pub fn answer_batch_with<B: Backend>(
    tokenizer: &Tokenizer,
    opts: &AnswerOptions,
    ctx: &mut Context<B>,
    pairs: &[(&str, &str)],
    top_k: usize,
    mut logits: impl FnMut(&mut Context<B>, &Inputs) -> Result<SpanLogits>,
) -> Result<Vec<Vec<Answer>>> {
    // A context without WordPieces has no answer (Google's conversion refuses it); the
    // other questions are answered. Tokenizing costs little next to the encoder.
    let mut answerable = Vec::new();
    let mut examples = Vec::new();
    for (i, (question, context)) in pairs.iter().enumerate() {
        let doc = split_context(context);
        if doc.doc_tokens.is_empty() || tokenizer.tokenize(context).is_empty() {
            continue;
        }
        answerable.push(i);
        examples.push(SquadExample {
            qas_id: i.to_string(),
            question_text: question.to_string(),
            doc: Arc::new(doc),
            orig_answer_text: None,
            start_position: None,
            end_position: None,
            is_impossible: false,
        });
    }
    let mut out = vec![Vec::new(); pairs.len()];
    if examples.is_empty() {
        return Ok(out);
    }
    let features = convert_examples_to_features(&examples, tokenizer, &opts.windows, false)?;
    let results = raw_results(ctx, &features, opts.batch_size.max(1), &mut logits)?;
    let predict = PredictOptions {
        n_best_size: top_k.max(20),
        max_answer_length: opts.max_answer_length,
        do_lower_case: tokenizer.do_lower_case(),
        version_2_with_negative: false,
        null_score_diff_threshold: 0.0,
    };
    let preds = compute_predictions(&examples, &features, &results, &predict)?;
    for (p, &i) in preds.predictions.iter().zip(&answerable) {
        let context = pairs[i].1;
        out[i] = p
            .nbest
            .iter()
            .filter_map(|e| {
                let (a, b) = e.offsets?;
                Some(Answer {
                    text: context.get(a..b)?.to_string(),
                    start_byte: a,
                    end_byte: b,
                    score: e.probability as f32,
                })
            })
            .take(top_k)
            .collect();
    }
    Ok(out)
}

/// Each feature's logits over its real positions only: padding cannot be an answer, and
/// without it a window's candidates do not depend on the other windows of its batch
/// (Google's padded logits let padding take n-best slots).
fn raw_results<B: Backend>(
    ctx: &mut Context<B>,
    features: &[InputFeatures],
    batch_size: usize,
    logits: &mut impl FnMut(&mut Context<B>, &Inputs) -> Result<SpanLogits>,
) -> Result<Vec<RawResult>> {
    let mut results = Vec::with_capacity(features.len());
    for batch in FeatureBatch::batches(features, batch_size) {
        let mut batch = batch?;
        batch.trim_to_longest();
        let logits = logits(ctx, &batch.inputs())?;
        for (i, &unique_id) in batch.unique_ids.iter().enumerate() {
            let mask = &batch.input_mask[i * batch.seq..(i + 1) * batch.seq];
            let real = mask.iter().filter(|&&m| m != 0).count();
            let row = i * batch.seq..i * batch.seq + real;
            results.push(RawResult {
                unique_id,
                start_logits: logits.start[row.clone()].to_vec(),
                end_logits: logits.end[row].to_vec(),
            });
        }
    }
    Ok(results)
}
