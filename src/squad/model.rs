//! run_squad.py's model for prediction: the encoder and the span head (`cls/squad/*`) with
//! the tokenizer it was fine-tuned with. A fine-tuned model is one `.bert` file (the
//! encoder, `cls/squad/output_weights` `[2, hidden]`, `cls/squad/output_bias` `[2]`, the
//! vocabulary and `do_lower_case`); a Google TF checkpoint holding the head loads as well
//! (its `global_step` and AdamW slots are not weights and are left out).

use std::path::Path;

use super::features::InputFeatures;
use super::predictions::RawResult;
use super::FeatureBatch;
use crate::classifier::ModelStart;
use crate::config::BertConfig;
use crate::heads::squad::SpanLogits;
use crate::heads::SquadHead;
use crate::model::{BertModel, Context, Inputs};
use crate::tokenizer::Tokenizer;
use crate::weights::{native, Weights};
use crate::{Error, Result};

/// A SQuAD model for inference. Immutable and `Send + Sync`; each thread brings its own
/// [`Context`].
#[derive(Debug)]
pub struct SquadModel {
    model: BertModel,
    head: SquadHead,
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
        let s = ModelStart::load(path, vocab_file, do_lower_case)?;
        SquadModel::from_weights(s.config, &s.weights, s.tokenizer).map_err(|e| match e {
            Error::NotAClassifier(m) => Error::NotAClassifier(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// Builds the model from Google-named weights that include `cls/squad/*`.
    pub fn from_weights(
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
    ) -> Result<SquadModel> {
        let head = SquadHead::load(&crate::Cpu, weights, config.hidden_size, false)?;
        let model = BertModel::from_weights(config, weights)?;
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

    pub fn model(&self) -> &BertModel {
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
    pub fn logits(&self, ctx: &mut Context, inputs: &Inputs) -> Result<SpanLogits> {
        span_logits(&self.model, &self.head, ctx, inputs)
    }

    /// The encoder, the span head and the tokenizer, for a caller that keeps them apart
    /// (the C ABI lends the encoder out as a model of its own).
    pub fn into_parts(self) -> (BertModel, SquadHead, Tokenizer) {
        (self.model, self.head, self.tokenizer)
    }

    /// `RawResult`s of features (prediction mode), `batch_size` at a time, in order;
    /// `on_batch(done, total)` after each batch.
    pub fn raw_results(
        &self,
        ctx: &mut Context,
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
pub fn span_logits(
    model: &BertModel,
    head: &SquadHead,
    ctx: &mut Context,
    inputs: &Inputs,
) -> Result<SpanLogits> {
    let rows = inputs.batch * inputs.seq;
    // A copy of the last layer frees the context for the head (small next to the encoder's
    // work).
    let sequence = model
        .forward(ctx, inputs, false)?
        .sequence_output()
        .to_vec();
    let mut both = Vec::new();
    head.logits(ctx.exec(), &sequence, rows, &mut both);
    Ok(SpanLogits {
        start: both[..rows].to_vec(),
        end: both[rows..2 * rows].to_vec(),
    })
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
