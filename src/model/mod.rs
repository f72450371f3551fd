//! The BERT encoder (`modeling.py`): embeddings, attention, feed-forward, pooler — one set of
//! parts for inference and training.
//!
//! Each part ([`Embeddings`], [`SelfAttention`], [`AttentionOutput`], [`Intermediate`],
//! [`Output`], [`Layer`], [`Encoder`], [`Pooler`]) holds its parameters on a back end
//! ([`crate::backend::Backend`]) and has its forward pass next to its backward pass; all
//! arithmetic is the back end's ops. A model is built for inference (kernels prepared for
//! the back end's products: packed f32, f16 or int8) or trainable (plain f32 parameters with
//! gradients, visited by their checkpoint names: [`Visit`]).
//!
//! [`BertModel`] holds the weights, immutable and `Send + Sync` for inference; it is shared
//! between threads. Each thread brings its own [`Context`], which owns the back end's
//! executor and every scratch buffer. A training forward pass records what its backward pass
//! needs in a [`Tape`] (`encoder.rs`).

mod attention;
mod context;
mod dense;
mod embeddings;
mod encoder;
mod inputs;
mod intermediate;
mod layer;
mod output;
pub mod param;
mod pooler;

use std::borrow::Cow;
use std::path::Path;

use crate::backend::{Backend, Cpu, Reduce};
use crate::config::BertConfig;
use crate::weights::{self, native, quantize, DType, Weights};
use crate::{Error, Result};

pub use attention::SelfAttention;
pub use context::{AbortHook, Context, Outputs};
pub use dense::{Dense, LayerNorm};
pub use embeddings::Embeddings;
pub use encoder::{Drops, Encoder, Tape};
pub use inputs::{first_rows, queries_at, Batch, Inputs, MASK_ADDER};
pub use intermediate::Intermediate;
pub use layer::{Layer, LayerDrops};
pub use output::{AttentionOutput, Output, ResidualDense};
pub use param::{Grad, Param, Visit};
pub use pooler::Pooler;

/// How [`BertModel::embed`] reduces the last layer to one vector per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The last layer's hidden state at position 0 (`[CLS]`), without the pooler dense layer.
    Cls,
    /// Mean over real tokens (`input_mask == 1`), as sentence-transformers does.
    Mean,
    /// Element-wise max over real tokens.
    Max,
    /// The pooler output `tanh(dense([CLS]))` (`get_pooled_output()`).
    Pooler,
}

/// How [`BertModel::load_with`] (and `Pipeline::load_with`) build a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// Storage of the encoder's dense kernels and word embeddings. `None` keeps what the file
    /// holds (an f32 checkpoint stays f32, an int8 `.bert` file stays int8); `Some(d)`
    /// converts while loading, exactly as `bert convert --dtype d` would write it
    /// ([`weights::quantize::convert`]). An int8 `.bert` file cannot be loaded as f32 or f16
    /// (its kernels are packed): load the f32 original instead.
    pub dtype: Option<DType>,
    /// Verify the checksums of a `.bert` file's f16 and int8 blocks while loading. Off by
    /// default: it reads the whole file, while otherwise those weights stay untouched in the
    /// memory map until a layer first uses them (f32 tensors are always verified).
    pub verify_checksums: bool,
}

/// Google's `BertModel`: embeddings, encoder and (when the checkpoint has one) pooler, on a
/// back end (the CPU unless said otherwise).
pub struct BertModel<B: Backend = Cpu> {
    backend: B,
    config: BertConfig,
    trainable: bool,
    pub(crate) embeddings: Embeddings<B>,
    pub(crate) encoder: Encoder<B>,
    pub(crate) pooler: Option<Pooler<B>>,
}

param::params!(BertModel {
    "bert/embeddings/" => embeddings,
    "bert/encoder/" => encoder,
    "bert/pooler/" => pooler,
});

impl<B: Backend> std::fmt::Debug for BertModel<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertModel")
            .field("backend", &self.backend)
            .field("config", &self.config)
            .field("trainable", &self.trainable)
            .finish_non_exhaustive()
    }
}

/// Reads a model's config and weights from a directory or file (see [`BertModel::load`]),
/// converted to `opts.dtype` when given.
pub fn read_weights(path: &Path, opts: &ModelOptions) -> Result<(BertConfig, Weights)> {
    let (config, w) = if native::is_native_file(path) {
        let m = native::NativeModel::open(path)?;
        (m.config().clone(), native_weights(&m, opts)?)
    } else {
        weights::load_model_files(path)?
    };
    let w = match opts.dtype {
        Some(d) => quantize::convert(w, &config, d)?,
        None => w,
    };
    Ok((config, w))
}

/// The weights of an opened `.bert` file for an inference model: as stored (nothing large
/// copied), unless `opts.dtype` asks for a conversion, which starts from Google's layout.
pub fn native_weights(m: &native::NativeModel, opts: &ModelOptions) -> Result<Weights> {
    if opts.verify_checksums {
        m.verify()?;
    }
    match opts.dtype {
        None => m.weights_mapped(),
        Some(d) => quantize::convert(m.weights()?, m.config(), d),
    }
}

impl BertModel<Cpu> {
    /// Loads a model from a directory or file, recognised by what it contains:
    /// `bert_config.json` + `bert_model.ckpt.index` (Google TF checkpoint),
    /// `config.json` + `model.safetensors` (Hugging Face), or a path to one of those
    /// checkpoint files (the config is read from beside it), or a libbert `.bert` file.
    pub fn load(path: impl AsRef<Path>) -> Result<BertModel> {
        BertModel::load_with(path, &ModelOptions::default())
    }

    /// [`BertModel::load`] with options: the weights' dtype (f32, f16, int8), checksums.
    pub fn load_with(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<BertModel> {
        let (config, w) = read_weights(path.as_ref(), opts)?;
        BertModel::from_weights(config, &w)
    }

    /// [`BertModel::from_weights`] after converting the weights to `dtype` (`None`: as they
    /// are stored); see [`ModelOptions::dtype`].
    pub fn from_weights_as(
        config: BertConfig,
        w: Weights,
        dtype: Option<DType>,
    ) -> Result<BertModel> {
        let w = match dtype {
            Some(d) => quantize::convert(w, &config, d)?,
            None => w,
        };
        BertModel::from_weights(config, &w)
    }

    /// Builds an inference model from Google-named weights, checking every tensor against
    /// `config`.
    pub fn from_weights(config: BertConfig, w: &Weights) -> Result<BertModel> {
        BertModel::build(Cpu, config, w, false)
    }
}

impl<B: Backend> BertModel<B> {
    /// [`BertModel::load_with`] on another back end (e.g. `backend::Vulkan` with the `vulkan` feature): the
    /// weights are read on the host, then prepared (uploaded) by `backend`.
    pub fn load_on(backend: B, path: impl AsRef<Path>, opts: &ModelOptions) -> Result<Self> {
        let (config, w) = read_weights(path.as_ref(), opts)?;
        BertModel::build(backend, config, &w, false)
    }

    /// Builds the model on `backend` from Google-named weights, checking every tensor against
    /// `config`: for inference (kernels prepared on their storage), or `trainable` (plain f32
    /// parameters with gradients; the weights must be f32).
    pub fn build(backend: B, config: BertConfig, w: &Weights, trainable: bool) -> Result<Self> {
        config.validate()?;
        let b = &backend;
        let pooler = if w.contains("bert/pooler/dense/kernel") {
            Some(Pooler::load(b, w, &config, trainable)?)
        } else {
            None
        };
        Ok(BertModel {
            embeddings: Embeddings::load(b, w, &config, trainable)?,
            encoder: Encoder::load(b, w, &config, trainable)?,
            pooler,
            trainable,
            config,
            backend,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The back end the model runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Whether the model was built with gradients (for training).
    pub fn trainable(&self) -> bool {
        self.trainable
    }

    /// How the encoder's dense kernels are stored (f32, f16 or int8; see [`ModelOptions`]).
    pub fn dtype(&self) -> DType {
        self.encoder.layers.first().map_or(DType::F32, Layer::dtype)
    }

    /// Whether the checkpoint has the pooler (`bert/pooler/dense`).
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// The embeddings block (its word table is the masked-LM head's output matrix).
    pub fn embeddings(&self) -> &Embeddings<B> {
        &self.embeddings
    }

    /// The pooler, when the checkpoint has one.
    pub fn pooler(&self) -> Option<&Pooler<B>> {
        self.pooler.as_ref()
    }

    /// Embeddings and encoder over `ctx.rows`, no recording: the last layer computes
    /// `queries` (all rows when `None`). Keeps every layer's output when `all_layers`.
    /// Returns the index of the last layer's output in `ctx.hidden`.
    fn encode(&self, ctx: &mut Context<B>, all_layers: bool, queries: bool) -> Result<usize> {
        let n = self.encoder.layers.len();
        let buffers = if all_layers { n + 1 } else { 2 };
        if ctx.hidden.len() < buffers {
            ctx.hidden.resize_with(buffers, B::Buf::default);
        }
        let ex = &mut ctx.exec;
        self.embeddings
            .forward(ex, &ctx.rows, &mut ctx.hidden[0], None, None);
        for (l, layer) in self.encoder.layers.iter().enumerate() {
            if ctx.abort.asks_to_stop() {
                return Err(Error::Cancelled(format!(
                    "the abort hook stopped the forward pass before layer {l}"
                )));
            }
            let (src, dst) = if all_layers {
                (l, l + 1)
            } else {
                (l % 2, (l + 1) % 2)
            };
            let q = (queries && l + 1 == n).then_some(&ctx.queries);
            let (x, out) = encoder::pair_mut(&mut ctx.hidden, src, dst);
            layer.forward(ex, (&ctx.rows, q), x, &mut ctx.acts, None, out);
        }
        let last = if all_layers { n } else { n % 2 };
        if queries && n == 0 {
            // No layer: the query rows of the embedding output.
            let h = self.config.hidden_size;
            let (x, out) = encoder::pair_mut(&mut ctx.hidden, 0, 1);
            B::gather(ex, x, h, &ctx.queries.rows, out);
            return Ok(1);
        }
        Ok(last)
    }

    /// The pooled output of each sequence into `ctx.pooled` (`[batch, hidden]`): the last
    /// layer computes only the first rows, which the pooler reads.
    pub(crate) fn pooled(&self, ctx: &mut Context<B>, inputs: &Inputs) -> Result<()> {
        let pooler = self.pooler.as_ref().ok_or_else(|| {
            Error::NotAClassifier("the model has no pooler (bert/pooler/dense)".into())
        })?;
        inputs.check(&self.config)?;
        inputs.rows(true, &mut ctx.rows);
        ctx.queries = first_rows(&ctx.rows);
        let last = self.encode(ctx, false, true)?;
        pooler.forward(
            &mut ctx.exec,
            &ctx.hidden[last],
            inputs.batch,
            &mut ctx.pooled,
        );
        B::status(&ctx.exec)
    }

    /// The last layer of a batch, every position computed (padding included), left in
    /// `ctx.hidden` at the returned index: what a head reading every position needs, without
    /// the pooler [`BertModel::forward`] also runs.
    pub(crate) fn sequence(&self, ctx: &mut Context<B>, inputs: &Inputs) -> Result<usize> {
        inputs.check(&self.config)?;
        inputs.rows(false, &mut ctx.rows);
        let last = self.encode(ctx, false, false)?;
        B::status(&ctx.exec)?;
        Ok(last)
    }

    /// Runs the encoder on a batch, every position computed as `modeling.py` computes it
    /// (padding included). With `all_layers` the embedding output and every layer are kept
    /// (more memory); otherwise only the sequence and pooled outputs.
    ///
    /// The result for one sequence does not depend on the others in the batch: padded keys
    /// are masked, and every other step is per position.
    pub fn forward<'c>(
        &self,
        ctx: &'c mut Context<B>,
        inputs: &Inputs,
        all_layers: bool,
    ) -> Result<Outputs<'c, B>> {
        inputs.check(&self.config)?;
        inputs.rows(false, &mut ctx.rows);
        let last = self.encode(ctx, all_layers, false)?;
        let h = self.config.hidden_size;
        if let Some(p) = &self.pooler {
            let starts: Vec<u32> = ctx.rows.seqs.iter().map(|s| s.start as u32).collect();
            B::gather(&mut ctx.exec, &ctx.hidden[last], h, &starts, &mut ctx.first);
            p.forward(&mut ctx.exec, &ctx.first, inputs.batch, &mut ctx.pooled);
        }
        B::status(&ctx.exec)?;
        Ok(Outputs {
            exec: &ctx.exec,
            batch: inputs.batch,
            seq: inputs.seq,
            hidden_size: h,
            num_layers: self.encoder.layers.len(),
            all_layers,
            hidden: &ctx.hidden,
            pooled: self.pooler.as_ref().map(|_| &ctx.pooled),
        })
    }

    /// Sentence embeddings `[batch, hidden]`: the last layer reduced by `pooling`, optionally
    /// L2-normalised. Borrowed from the context until its next call.
    ///
    /// Each sequence runs only up to its last real token (what follows changes no real
    /// position), and with `Cls` or `Pooler` pooling the last layer computes only position 0.
    pub fn embed<'c>(
        &self,
        ctx: &'c mut Context<B>,
        inputs: &Inputs,
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Cow<'c, [f32]>> {
        let h = self.config.hidden_size;
        let n = inputs.batch * h;
        match pooling {
            Pooling::Pooler => {
                self.pooled(ctx, inputs).map_err(|e| match e {
                    Error::NotAClassifier(_) => Error::Unsupported(
                        "pooler pooling: the checkpoint has no bert/pooler/dense".into(),
                    ),
                    e => e,
                })?;
                std::mem::swap(&mut ctx.pooled, &mut ctx.sentence);
            }
            Pooling::Cls => {
                inputs.check(&self.config)?;
                inputs.rows(true, &mut ctx.rows);
                ctx.queries = first_rows(&ctx.rows);
                let last = self.encode(ctx, false, true)?;
                std::mem::swap(&mut ctx.hidden[last], &mut ctx.sentence);
            }
            Pooling::Mean | Pooling::Max => {
                inputs.check(&self.config)?;
                inputs.rows(true, &mut ctx.rows);
                let last = self.encode(ctx, false, false)?;
                let how = if pooling == Pooling::Mean {
                    Reduce::Mean
                } else {
                    Reduce::Max
                };
                let x = &ctx.hidden[last];
                B::reduce(&mut ctx.exec, x, &ctx.rows, h, how, &mut ctx.sentence);
            }
        }
        if normalize {
            B::l2_normalize(&mut ctx.exec, &mut ctx.sentence, inputs.batch, h);
        }
        B::status(&ctx.exec)?;
        let values = B::read(&ctx.exec, &ctx.sentence, n);
        B::status(&ctx.exec)?;
        Ok(values)
    }
}
