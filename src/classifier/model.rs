//! run_classifier.py: `create_model`'s inference half, and the fine-tuned model file.
//!
//! `logits = pooled_output @ output_weightsᵀ + output_bias`, `probabilities = softmax`.
//! The encoder is the inference [`BertModel`] (the same numerics the training forward pass
//! uses, without dropout). A fine-tuned classifier is one `.bert` file: the encoder's
//! `bert/*` tensors, `output_weights` `[num_labels, hidden]`, `output_bias` `[num_labels]`,
//! the vocabulary, `do_lower_case` and the label list (format version 2).
//!
//! A classifier runs on any back end ([`Classifier::load_on`]): the encoder, the pooler and
//! the head stay on its device, and only the logits `[batch, num_labels]` come back (the
//! softmax is on the host, a few values per example).

use std::path::Path;

use super::features::InputFeatures;
use crate::backend::{cpu, Backend, Cpu};
use crate::config::BertConfig;
use crate::heads::ClassifierHead;
use crate::model::{Batch, BertModel, Context, Inputs, ModelOptions};
use crate::tokenizer::{EncodeOptions, Padding, Tokenizer, Vocab};
use crate::weights::native::{self, NativeModel};
use crate::weights::{quantize, Weights};
use crate::{Error, Result};

/// A fine-tuned sentence (pair) classifier: encoder, head, tokenizer and labels, on a back
/// end (the CPU unless said otherwise). Immutable and `Send + Sync`; each thread brings its
/// own [`Context`] (made on the same back end).
#[derive(Debug)]
pub struct Classifier<B: Backend = Cpu> {
    model: BertModel<B>,
    tokenizer: Tokenizer,
    labels: Vec<String>,
    head: ClassifierHead<B>,
}

/// Logits `[batch, num_labels]` of encoded inputs through `model` and `head`: the encoder
/// computes each sequence's position 0 in its last layer, the pooler and the head read it.
pub fn logits<B: Backend>(
    model: &BertModel<B>,
    head: &ClassifierHead<B>,
    ctx: &mut Context<B>,
    inputs: &Inputs,
) -> Result<Vec<f32>> {
    model.pooled(ctx, inputs)?;
    // `ctx.first` is free here (the pooled path gathers no first rows into it): the logits
    // reuse it rather than allocate a device buffer per call.
    head.logits(&mut ctx.exec, &ctx.pooled, inputs.batch, &mut ctx.first);
    B::status(&ctx.exec)?;
    let n = inputs.batch * head.num_labels();
    let out = B::read(&ctx.exec, &ctx.first, n).into_owned();
    // A device's read may fail (lost device): its zeros must not pass for logits.
    B::status(&ctx.exec)?;
    Ok(out)
}

impl Classifier {
    /// Loads a classifier written by [`save`] (a `.bert` file with labels and a head).
    pub fn load(path: impl AsRef<Path>) -> Result<Classifier> {
        Classifier::load_with(path, &ModelOptions::default())
    }

    /// [`Classifier::load`] with model options (e.g. the encoder quantized to int8 on load;
    /// the head stays f32).
    pub fn load_with(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Classifier> {
        Classifier::load_on(Cpu, path, opts)
    }

    /// Builds a classifier from Google-named weights that include the head.
    pub fn from_weights(
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
        labels: Vec<String>,
    ) -> Result<Classifier> {
        Classifier::from_weights_on(Cpu, config, weights, tokenizer, labels)
    }
}

impl<B: Backend> Classifier<B> {
    /// [`Classifier::load_with`] on another back end (e.g. `backend::Vulkan` with the
    /// `vulkan` feature): the file is read on the host, then the encoder and the head are
    /// prepared (uploaded) by `backend`.
    pub fn load_on(backend: B, path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Self> {
        let (config, weights, tokenizer, labels) = read_classifier(path.as_ref(), opts)?;
        Classifier::from_weights_on(backend, config, &weights, tokenizer, labels)
    }

    /// [`Classifier::from_weights`] on another back end.
    pub fn from_weights_on(
        backend: B,
        config: BertConfig,
        weights: &Weights,
        tokenizer: Tokenizer,
        labels: Vec<String>,
    ) -> Result<Self> {
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
        let head = ClassifierHead::load(&backend, weights, h, n, false)?;
        let model = BertModel::build(backend, config, weights, false)?;
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
            head,
        })
    }

    pub fn model(&self) -> &BertModel<B> {
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
    pub fn logits(&self, ctx: &mut Context<B>, inputs: &Inputs) -> Result<Vec<f32>> {
        logits(&self.model, &self.head, ctx, inputs)
    }

    /// The parts, for callers that run the encoder themselves (the C ABI shares the encoder
    /// with its embedding calls; [`logits`] runs them).
    pub fn into_parts(self) -> (BertModel<B>, Tokenizer, Vec<String>, ClassifierHead<B>) {
        (self.model, self.tokenizer, self.labels, self.head)
    }

    /// Class probabilities `[batch, num_labels]` of padded features.
    pub fn probabilities(&self, ctx: &mut Context<B>, batch: &Batch) -> Result<Vec<f32>> {
        let mut p = self.logits(ctx, &batch.inputs())?;
        cpu::softmax_rows(&mut p, self.labels.len());
        Ok(p)
    }

    /// Class probabilities `[texts.len(), num_labels]` of texts or pairs, encoded as
    /// `convert_single_example` does with `max_seq_length`, run `batch_size` at a time.
    pub fn classify(
        &self,
        ctx: &mut Context<B>,
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
            out.extend(self.probabilities(ctx, &super::features::pad(&refs))?);
        }
        Ok(out)
    }
}

/// Config, weights (converted to `opts.dtype`), tokenizer and labels of a classifier file.
fn read_classifier(
    path: &Path,
    opts: &ModelOptions,
) -> Result<(BertConfig, Weights, Tokenizer, Vec<String>)> {
    let native = NativeModel::open(path)?;
    if opts.verify_checksums {
        native.verify()?;
    }
    if native.labels().is_empty() {
        return Err(Error::NotAClassifier(format!(
            "{}: not a fine-tuned classifier (no label list; train one with `bert classify \
             --do_train`)",
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
    Ok((config, weights, tokenizer, native.labels().to_vec()))
}

/// Writes a fine-tuned classifier to `path` atomically (temporary file, fsync, rename).
pub fn save(
    path: impl AsRef<Path>,
    config: &BertConfig,
    weights: &Weights,
    tokenizer: &Tokenizer,
    labels: &[String],
) -> Result<()> {
    let n = weights.tensor("output_bias").map(|t| t.shape.clone());
    if n != Some(vec![labels.len()]) {
        return Err(Error::InvalidArgument(format!(
            "{} labels for a head of output_bias {n:?}",
            labels.len()
        )));
    }
    let vocab = tokenizer.vocab();
    let tokens: Vec<String> = (0..vocab.len() as u32)
        .map(|id| vocab.token(id).unwrap_or_default().to_string())
        .collect();
    native::save_with_labels(
        path,
        config,
        weights,
        &tokens,
        tokenizer.do_lower_case(),
        labels,
    )
}
