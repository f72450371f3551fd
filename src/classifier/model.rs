//! run_classifier.py: `create_model`'s inference half, and the fine-tuned model file.
//!
//! `logits = pooled_output @ output_weightsᵀ + output_bias`, `probabilities = softmax`.
//! The encoder is the inference [`BertModel`] (the same numerics the training forward pass
//! uses, without dropout). A fine-tuned classifier is one `.bert` file: the encoder's
//! `bert/*` tensors, `output_weights` `[num_labels, hidden]`, `output_bias` `[num_labels]`,
//! the vocabulary, `do_lower_case` and the label list (format version 2).

use std::path::Path;

use super::features::{InputFeatures, PaddedBatch};
use crate::backend::{cpu, Pool};
use crate::config::BertConfig;
use crate::model::{BertModel, Context, Inputs, ModelOptions};
use crate::tokenizer::{EncodeOptions, Padding, Tokenizer, Vocab};
use crate::train::Params;
use crate::weights::native::{self, NativeModel};
use crate::weights::{quantize, Tensor, Weights};
use crate::{Error, Result};

/// A fine-tuned sentence (pair) classifier: encoder, head, tokenizer and labels. Immutable
/// and `Send + Sync`; each thread brings its own [`Context`].
#[derive(Debug)]
pub struct Classifier {
    model: BertModel,
    tokenizer: Tokenizer,
    labels: Vec<String>,
    head: Head,
}

/// The classification head of `create_model`: `logits = pooled @ output_weightsᵀ + output_bias`.
#[derive(Debug, Clone)]
pub struct Head {
    /// `[num_labels, hidden]`
    output_weights: Vec<f32>,
    /// `[num_labels]`
    output_bias: Vec<f32>,
}

impl Head {
    pub fn num_labels(&self) -> usize {
        self.output_bias.len()
    }

    /// Logits `[batch, num_labels]` of pooled outputs `[batch, hidden]`.
    pub fn logits(&self, pooled: &[f32], batch: usize) -> Vec<f32> {
        let n = self.num_labels();
        let h = self.output_weights.len() / n.max(1);
        let mut logits = vec![0.0; batch * n];
        for row in logits.chunks_exact_mut(n) {
            row.copy_from_slice(&self.output_bias);
        }
        // pooled [batch, hidden] @ output_weightsᵀ: [num_labels, hidden] read as [hidden, n].
        cpu::sgemm(
            batch,
            h,
            n,
            1.0,
            pooled,
            (h as isize, 1),
            &self.output_weights,
            (1, h as isize),
            1.0,
            &mut logits,
            (n as isize, 1),
            &Pool::single(),
        );
        logits
    }
}

impl Classifier {
    /// Loads a classifier written by [`save`] (a `.bert` file with labels and a head).
    pub fn load(path: impl AsRef<Path>) -> Result<Classifier> {
        Classifier::load_with(path, &ModelOptions::default())
    }

    /// [`Classifier::load`] with model options (e.g. the encoder quantized to int8 on load;
    /// the head stays f32).
    pub fn load_with(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Classifier> {
        let path = path.as_ref();
        let native = NativeModel::open(path)?;
        if opts.verify_checksums {
            native.verify()?;
        }
        if native.labels().is_empty() {
            return Err(Error::NotAClassifier(format!(
                "{}: not a fine-tuned classifier (no label list; train one with `bert \
                 classify --do_train`)",
                path.display()
            )));
        }
        let vocab = Vocab::from_tokens(native.vocab().iter().map(String::as_str))?;
        let tokenizer = Tokenizer::new(vocab, native.do_lower_case())?;
        let config = native.config().clone();
        let weights = match opts.dtype {
            Some(d) => quantize::convert(native.weights()?, &config, d)?,
            None => native.weights()?,
        };
        Classifier::from_weights(config, &weights, tokenizer, native.labels().to_vec())
    }

    /// Builds a classifier from Google-named weights that include the head.
    pub fn from_weights(
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
        labels: Vec<String>,
    ) -> Result<Classifier> {
        let (h, n) = (config.hidden_size, labels.len());
        if n == 0 {
            return Err(Error::InvalidArgument("a classifier needs labels".into()));
        }
        if !weights.contains("bert/pooler/dense/kernel") {
            return Err(Error::Shape(
                "missing tensor bert/pooler/dense/kernel (the classifier reads the pooled \
                 output)"
                    .into(),
            ));
        }
        if !weights.contains("output_weights") || !weights.contains("output_bias") {
            return Err(Error::NotAClassifier(
                "no classifier head (output_weights, output_bias): fine-tune the model first"
                    .into(),
            ));
        }
        let output_weights = weights.get_vec("output_weights", &[n, h])?;
        let output_bias = weights.get_vec("output_bias", &[n])?;
        let model = BertModel::from_weights(config, weights)?;
        if tokenizer.vocab().len() > model.config().vocab_size {
            return Err(Error::Vocab(format!(
                "the vocabulary has {} tokens but the model only {} embeddings",
                tokenizer.vocab().len(),
                model.config().vocab_size
            )));
        }
        Ok(Classifier {
            model,
            tokenizer,
            labels,
            head: Head {
                output_weights,
                output_bias,
            },
        })
    }

    /// A classifier from training parameters (no file round trip).
    pub fn from_params(params: &Params, tokenizer: Tokenizer, labels: Vec<String>) -> Result<Self> {
        if labels.len() != params.num_labels() {
            return Err(Error::InvalidArgument(format!(
                "{} labels for a {}-way head",
                labels.len(),
                params.num_labels()
            )));
        }
        Classifier::from_weights(
            params.config().clone(),
            &params_to_weights(params)?,
            tokenizer,
            labels,
        )
    }

    pub fn model(&self) -> &BertModel {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Label names, index = label id.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }

    /// Logits `[batch, num_labels]` of encoded inputs.
    pub fn logits(&self, ctx: &mut Context, inputs: &Inputs) -> Result<Vec<f32>> {
        let out = self.model.forward(ctx, inputs, false)?;
        let pooled = out
            .pooled_output()
            .ok_or_else(|| Error::NotAClassifier("the model has no pooler".into()))?;
        Ok(self.head.logits(pooled, inputs.batch))
    }

    /// The parts, for callers that run the encoder themselves (the C ABI shares the encoder
    /// with its embedding calls).
    pub fn into_parts(self) -> (BertModel, Tokenizer, Vec<String>, Head) {
        (self.model, self.tokenizer, self.labels, self.head)
    }

    /// Class probabilities `[batch, num_labels]` of padded features.
    pub fn probabilities(&self, ctx: &mut Context, batch: &PaddedBatch) -> Result<Vec<f32>> {
        let mut p = self.logits(ctx, &batch.inputs())?;
        softmax_rows(&mut p, self.labels.len());
        Ok(p)
    }

    /// Class probabilities `[texts.len(), num_labels]` of texts or pairs, encoded as
    /// `convert_single_example` does with `max_seq_length`, run `batch_size` at a time.
    pub fn classify(
        &self,
        ctx: &mut Context,
        inputs: &[(&str, Option<&str>)],
        max_seq_length: usize,
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        let opts = EncodeOptions {
            max_seq_length: Some(max_seq_length),
            padding: Padding::None,
        };
        let mut out = Vec::with_capacity(inputs.len() * self.labels.len());
        for chunk in inputs.chunks(batch_size.max(1)) {
            let features: Vec<InputFeatures> = self
                .tokenizer
                .encode_batch(chunk, &opts, ctx.threads())?
                .into_iter()
                .map(|e| InputFeatures {
                    input_ids: e.ids,
                    segment_ids: e.type_ids,
                    label_id: 0,
                })
                .collect();
            let refs: Vec<&InputFeatures> = features.iter().collect();
            out.extend(self.probabilities(ctx, &PaddedBatch::new(&refs))?);
        }
        Ok(out)
    }
}

/// Softmax of each row of `width`, in place (max subtracted first).
pub fn softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Training parameters as Google-named [`Weights`] (encoder and head).
pub fn params_to_weights(params: &Params) -> Result<Weights> {
    let mut w = Weights::new();
    for (name, shape, values) in params.iter() {
        w.insert(name, Tensor::new(shape.to_vec(), values.to_vec())?);
    }
    Ok(w)
}

/// Writes a fine-tuned classifier to `path` atomically (temporary file, fsync, rename).
pub fn save(
    path: impl AsRef<Path>,
    params: &Params,
    tokenizer: &Tokenizer,
    labels: &[String],
) -> Result<()> {
    if labels.len() != params.num_labels() {
        return Err(Error::InvalidArgument(format!(
            "{} labels for a {}-way head",
            labels.len(),
            params.num_labels()
        )));
    }
    let vocab = tokenizer.vocab();
    let tokens: Vec<String> = (0..vocab.len() as u32)
        .map(|id| vocab.token(id).unwrap_or_default().to_string())
        .collect();
    native::save_with_labels(
        path,
        params.config(),
        &params_to_weights(params)?,
        &tokens,
        tokenizer.do_lower_case(),
        labels,
    )
}
