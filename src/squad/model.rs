//! run_squad.py's model for prediction: the encoder and the span head (`cls/squad/*`) with
//! the tokenizer it was fine-tuned with. A fine-tuned model is one `.bert` file (the
//! encoder, `cls/squad/output_weights` `[2, hidden]`, `cls/squad/output_bias` `[2]`, the
//! vocabulary and `do_lower_case`); a Google TF checkpoint holding the head loads as well
//! (its `global_step` and AdamW slots are not weights and are left out).
//!
//! The model runs on any back end ([`SquadModel::load_on`]): the encoder's last layer stays
//! on the device for the span head, and only the start and end logits come back.

use std::path::Path;

use super::features::InputFeatures;
use super::predictions::RawResult;
use super::FeatureBatch;
use crate::backend::{Backend, Cpu};
use crate::classifier::ModelStart;
use crate::config::BertConfig;
use crate::heads::squad::SpanLogits;
use crate::heads::SquadHead;
use crate::model::{BertModel, Context, Inputs};
use crate::tokenizer::Tokenizer;
use crate::weights::{native, Weights};
use crate::{Error, Result};

/// A SQuAD model for inference, on a back end (the CPU unless said otherwise). Immutable
/// and `Send + Sync`; each thread brings its own [`Context`] (made on the same back end).
#[derive(Debug)]
pub struct SquadModel<B: Backend = Cpu> {
    model: BertModel<B>,
    head: SquadHead<B>,
    tokenizer: Tokenizer,
}

impl SquadModel {
    /// Loads any model [`ModelStart::load`] reads (a `.bert` file, a TF checkpoint, a
    /// safetensors directory) whose weights hold the span head; the vocabulary and casing
    /// are found as there.
    pub fn load(path: impl AsRef<Path>) -> Result<SquadModel> {
        SquadModel::load_with(path.as_ref(), None, None)
    }

    /// [`SquadModel::load`] with an explicit vocabulary file and/or casing.
    pub fn load_with(
        path: &Path,
        vocab_file: Option<&Path>,
        do_lower_case: Option<bool>,
    ) -> Result<SquadModel> {
        SquadModel::load_on(Cpu, path, vocab_file, do_lower_case)
    }

    /// Builds the model from Google-named weights that include `cls/squad/*`.
    pub fn from_weights(
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
    ) -> Result<SquadModel> {
        SquadModel::from_weights_on(Cpu, config, weights, tokenizer)
    }
}

impl<B: Backend> SquadModel<B> {
    /// [`SquadModel::load_with`] on another back end (e.g. `backend::Vulkan` with the
    /// `vulkan` feature): the weights are read on the host, then prepared by `backend`.
    pub fn load_on(
        backend: B,
        path: &Path,
        vocab_file: Option<&Path>,
        do_lower_case: Option<bool>,
    ) -> Result<Self> {
        let s = ModelStart::load(path, vocab_file, do_lower_case)?;
        // A missing head names the file it is missing from.
        let named = |e| match e {
            Error::NotAClassifier(m) => Error::NotAClassifier(format!("{}: {m}", path.display())),
            e => e,
        };
        SquadModel::from_weights_on(backend, s.config, &s.weights, s.tokenizer).map_err(named)
    }

    /// [`SquadModel::from_weights`] on another back end.
    pub fn from_weights_on(
        backend: B,
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
    ) -> Result<Self> {
        let head = SquadHead::load(&backend, weights, config.hidden_size, false)?;
        let model = BertModel::build(backend, config, weights, false)?;
        if tokenizer.vocab().len() > model.config().vocab_size {
            return Err(Error::Vocab(format!(
                "the vocabulary has {} tokens but the model only {} embeddings",
                tokenizer.vocab().len(),
                model.config().vocab_size
            )));
        }
        Ok(SquadModel {
            model,
            head,
            tokenizer,
        })
    }

    pub fn model(&self) -> &BertModel<B> {
        &self.model
    }

    pub fn config(&self) -> &BertConfig {
        self.model.config()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Start and end logits `[batch, seq]` of a batch, every position computed (padding
    /// included, as Google's logits are).
    pub fn logits(&self, ctx: &mut Context<B>, inputs: &Inputs) -> Result<SpanLogits> {
        span_logits(&self.model, &self.head, ctx, inputs)
    }

    /// The encoder, the span head and the tokenizer, for a caller that keeps them apart
    /// (the C ABI lends the encoder out as a model of its own).
    pub fn into_parts(self) -> (BertModel<B>, SquadHead<B>, Tokenizer) {
        (self.model, self.head, self.tokenizer)
    }

    /// `RawResult`s of features (prediction mode), `batch_size` at a time, in order;
    /// `on_batch(done, total)` after each batch.
    pub fn raw_results(
        &self,
        ctx: &mut Context<B>,
        features: &[InputFeatures],
        batch_size: usize,
        mut on_batch: impl FnMut(usize, usize),
    ) -> Result<Vec<RawResult>> {
        let mut results = Vec::with_capacity(features.len());
        for batch in FeatureBatch::batches(features, batch_size) {
            let batch = batch?;
            let logits = self.logits(ctx, &batch.inputs())?;
            for (i, &unique_id) in batch.unique_ids.iter().enumerate() {
                let row = i * batch.seq..(i + 1) * batch.seq;
                results.push(RawResult {
                    unique_id,
                    start_logits: logits.start[row.clone()].to_vec(),
                    end_logits: logits.end[row].to_vec(),
                });
            }
            on_batch(results.len(), features.len());
        }
        Ok(results)
    }
}

/// [`SquadModel::logits`] on a model kept in parts ([`SquadModel::into_parts`]).
pub fn span_logits<B: Backend>(
    model: &BertModel<B>,
    head: &SquadHead<B>,
    ctx: &mut Context<B>,
    inputs: &Inputs,
) -> Result<SpanLogits> {
    let rows = inputs.batch * inputs.seq;
    // The head reads the last layer where the encoder left it (on a device, nothing but the
    // logits comes back); `ctx.sentence` is free scratch on this path.
    let last = model.sequence(ctx, inputs)?;
    head.logits(&mut ctx.exec, &ctx.hidden[last], rows, &mut ctx.sentence);
    B::status(&ctx.exec)?;
    let both = B::read(&ctx.exec, &ctx.sentence, 2 * rows);
    let out = SpanLogits {
        start: both[..rows].to_vec(),
        end: both[rows..2 * rows].to_vec(),
    };
    // A device's read may fail (lost device): its zeros must not pass for logits.
    B::status(&ctx.exec)?;
    Ok(out)
}

/// Writes a fine-tuned SQuAD model (a `.bert` file with the span head and the vocabulary)
/// atomically.
pub fn save(
    path: impl AsRef<Path>,
    config: &BertConfig,
    weights: &Weights,
    tokenizer: &Tokenizer,
) -> Result<()> {
    if !weights.contains("cls/squad/output_weights") || !weights.contains("cls/squad/output_bias") {
        return Err(Error::InvalidArgument(
            "no SQuAD head (cls/squad/output_weights, output_bias) to save".into(),
        ));
    }
    let vocab = tokenizer.vocab();
    let tokens: Vec<String> = (0..vocab.len() as u32)
        .map(|id| vocab.token(id).unwrap_or_default().to_string())
        .collect();
    native::save(path, config, weights, &tokens, tokenizer.do_lower_case())
}
