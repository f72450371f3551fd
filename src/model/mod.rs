//! The BERT encoder (`modeling.py`): embeddings, attention, feed-forward, pooler.
//!
//! [`BertModel`] holds the weights, immutable and `Send + Sync`; it is shared between threads.
//! Each thread brings its own [`Context`], which owns the thread budget ([`Pool`]) and every
//! scratch buffer, reused across calls, so steady-state calls of the same or smaller shape
//! allocate nothing.

pub mod attention;
pub mod embeddings;
pub mod encoder;
pub mod intermediate;
pub mod layer;
mod norm;
pub mod ops;
pub mod output;
pub mod pooler;

use std::path::Path;

use crate::backend::Pool;
use crate::config::BertConfig;
use crate::weights::{self, native, quantize, DType, Weights};
use crate::{Error, Result};

pub use attention::{AttentionOutput, SelfAttention, MASK_ADDER};
pub use embeddings::Embeddings;
pub use encoder::Encoder;
pub use intermediate::Intermediate;
pub use layer::Layer;
pub use norm::LayerNorm;
pub use output::Output;
pub use pooler::Pooler;

/// A batch of model inputs, each `[batch, seq]` row-major (`modeling.py: BertModel` inputs).
/// Sequences shorter than `seq` are padded (any id, conventionally 0) and masked out.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// WordPiece ids, each `< vocab_size`.
    pub input_ids: &'a [u32],
    /// Token type (segment) ids, each `< type_vocab_size`; empty means all 0.
    pub segment_ids: &'a [u32],
    /// 1 for real tokens, 0 for padding; empty means all 1.
    pub input_mask: &'a [u32],
    pub batch: usize,
    pub seq: usize,
}

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

/// Scratch of one forward pass, sized for the largest shape seen so far.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) mask_bias: Vec<f32>,
    /// Fused query, key, value projections: `[batch * seq, 3 * hidden]`.
    pub(crate) qkv: Vec<f32>,
    pub(crate) context: Vec<f32>,
    pub(crate) attention_output: Vec<f32>,
    pub(crate) intermediate: Vec<f32>,
}

/// Asked between encoder layers whether to stop: returning true ends the pass with
/// [`crate::Error::Cancelled`] (see [`Context::set_abort`]).
pub type AbortHook = Box<dyn FnMut() -> bool + Send>;

/// The optional hook, with a `Debug` that does not try to print a closure.
#[derive(Default)]
struct Abort(Option<AbortHook>);

impl Abort {
    /// Whether the hook asks to stop now.
    fn asks_to_stop(&mut self) -> bool {
        self.0.as_mut().is_some_and(|hook| hook())
    }
}

impl std::fmt::Debug for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

/// Per-thread state: the thread budget and all scratch buffers. One context serves one call
/// at a time; create one per thread. Outputs of a call are views into the context, valid until
/// its next call.
#[derive(Debug)]
pub struct Context {
    pool: Pool,
    abort: Abort,
    scratch: Scratch,
    /// Hidden states: `[embedding, layer_0, …]` when all layers are kept, else two buffers
    /// used alternately.
    hidden: Vec<Vec<f32>>,
    first_tokens: Vec<f32>,
    pooled: Vec<f32>,
    sentence: Vec<f32>,
    mask: Vec<u32>,
}

impl Context {
    /// A context whose kernels use `threads` threads (the caller's included); 0 means all
    /// cores. The library never reads environment variables for this.
    pub fn new(threads: usize) -> Context {
        Context {
            pool: Pool::new(threads),
            abort: Abort::default(),
            scratch: Scratch::default(),
            hidden: Vec::new(),
            first_tokens: Vec::new(),
            pooled: Vec::new(),
            sentence: Vec::new(),
            mask: Vec::new(),
        }
    }

    /// Number of threads the context's kernels use.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Sets (or with `None` removes) the hook [`BertModel::forward`] asks before each encoder
    /// layer whether to stop: a long batch can be abandoned within one layer's time.
    pub fn set_abort(&mut self, hook: Option<AbortHook>) {
        self.abort = Abort(hook);
    }
}

impl Default for Context {
    /// All cores.
    fn default() -> Self {
        Context::new(0)
    }
}

/// Resizes `v` to `n` (no allocation once it has been that large).
fn sized(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// Results of [`BertModel::forward`], borrowed from the context.
#[derive(Debug)]
pub struct Outputs<'a> {
    batch: usize,
    seq: usize,
    hidden_size: usize,
    num_layers: usize,
    all_layers: bool,
    hidden: &'a [Vec<f32>],
    pooled: Option<&'a [f32]>,
}

impl<'a> Outputs<'a> {
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn seq(&self) -> usize {
        self.seq
    }
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn len(&self) -> usize {
        self.batch * self.seq * self.hidden_size
    }

    /// `get_embedding_output()`: `[batch, seq, hidden]`; `None` unless all layers were kept.
    pub fn embedding_output(&self) -> Option<&'a [f32]> {
        let len = self.len();
        self.all_layers.then(|| &self.hidden[0][..len])
    }

    /// `get_all_encoder_layers()[layer]`: `[batch, seq, hidden]`; `None` unless all layers
    /// were kept (the last one is always available as [`Outputs::sequence_output`]).
    pub fn encoder_layer(&self, layer: usize) -> Option<&'a [f32]> {
        let len = self.len();
        if layer + 1 == self.num_layers {
            return Some(self.sequence_output());
        }
        (self.all_layers && layer < self.num_layers).then(|| &self.hidden[layer + 1][..len])
    }

    /// `get_sequence_output()`: the last layer, `[batch, seq, hidden]`.
    pub fn sequence_output(&self) -> &'a [f32] {
        let len = self.len();
        let i = if self.all_layers {
            self.num_layers
        } else {
            self.num_layers % 2
        };
        &self.hidden[i][..len]
    }

    /// `get_pooled_output()`: `[batch, hidden]`; `None` when the checkpoint has no pooler.
    pub fn pooled_output(&self) -> Option<&'a [f32]> {
        self.pooled
    }
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

/// Google's `BertModel`: embeddings, encoder and (when the checkpoint has one) pooler.
#[derive(Debug, Clone)]
pub struct BertModel {
    config: BertConfig,
    embeddings: Embeddings,
    encoder: Encoder,
    pooler: Option<Pooler>,
}

impl BertModel {
    /// Loads a model from a directory or file, recognised by what it contains:
    /// `bert_config.json` + `bert_model.ckpt.index` (Google TF checkpoint),
    /// `config.json` + `model.safetensors` (Hugging Face), or a path to one of those
    /// checkpoint files (the config is read from beside it), or a libbert `.bert` file.
    pub fn load(path: impl AsRef<Path>) -> Result<BertModel> {
        BertModel::load_with(path, &ModelOptions::default())
    }

    /// [`BertModel::load`] with options: the weights' dtype (f32, f16, int8), checksums.
    pub fn load_with(path: impl AsRef<Path>, opts: &ModelOptions) -> Result<BertModel> {
        let path = path.as_ref();
        let (config, w) = if native::is_native_file(path) {
            let m = native::NativeModel::open(path)?;
            if opts.verify_checksums {
                m.verify()?;
            }
            (m.config().clone(), m.weights()?)
        } else {
            weights::load_model_files(path)?
        };
        BertModel::from_weights_as(config, w, opts.dtype)
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

    /// Builds the model from Google-named weights, checking every tensor against `config`.
    pub fn from_weights(config: BertConfig, w: &Weights) -> Result<BertModel> {
        config.validate()?;
        let pooler = if w.contains("bert/pooler/dense/kernel") {
            Some(Pooler::load(w, &config)?)
        } else {
            None
        };
        Ok(BertModel {
            embeddings: Embeddings::load(w, &config)?,
            encoder: Encoder::load(w, &config)?,
            pooler,
            config,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// How the encoder's dense kernels are stored (f32, f16 or int8; see [`ModelOptions`]).
    pub fn dtype(&self) -> DType {
        self.encoder
            .layers
            .first()
            .map_or(DType::F32, Layer::weight_dtype)
    }

    /// Whether the checkpoint has the pooler (`bert/pooler/dense`).
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// The embeddings block (its word table is the masked-LM head's output matrix).
    pub fn embeddings(&self) -> &Embeddings {
        &self.embeddings
    }

    fn check(&self, x: &Inputs) -> Result<()> {
        let c = &self.config;
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if x.batch == 0 || x.seq == 0 {
            return bad(format!("empty batch ({} x {})", x.batch, x.seq));
        }
        if x.seq > c.max_position_embeddings {
            return bad(format!(
                "sequence length {} exceeds max_position_embeddings {}",
                x.seq, c.max_position_embeddings
            ));
        }
        let n = x
            .batch
            .checked_mul(x.seq)
            .ok_or_else(|| Error::InvalidArgument("batch * seq overflows".into()))?;
        for (what, v, optional) in [
            ("input_ids", x.input_ids, false),
            ("segment_ids", x.segment_ids, true),
            ("input_mask", x.input_mask, true),
        ] {
            if v.len() != n && !(optional && v.is_empty()) {
                return bad(format!(
                    "{what} has {} values, batch {} x seq {} needs {n}",
                    v.len(),
                    x.batch,
                    x.seq
                ));
            }
        }
        if let Some((i, id)) = x
            .input_ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id as usize >= c.vocab_size)
        {
            return bad(format!(
                "input_ids[{i}] = {id} is not < vocab_size {}",
                c.vocab_size
            ));
        }
        if let Some((i, t)) = x
            .segment_ids
            .iter()
            .enumerate()
            .find(|(_, &t)| t as usize >= c.type_vocab_size)
        {
            return bad(format!(
                "segment_ids[{i}] = {t} is not < type_vocab_size {}",
                c.type_vocab_size
            ));
        }
        if let Some((i, m)) = x.input_mask.iter().enumerate().find(|(_, &m)| m > 1) {
            return bad(format!("input_mask[{i}] = {m} is not 0 or 1"));
        }
        Ok(())
    }

    /// Runs the encoder on a batch. With `all_layers` the embedding output and every layer are
    /// kept (more memory); otherwise only the sequence and pooled outputs.
    ///
    /// The result for one sequence does not depend on the others in the batch: padded keys
    /// are masked, and every other step is per position.
    pub fn forward<'c>(
        &self,
        ctx: &'c mut Context,
        inputs: &Inputs,
        all_layers: bool,
    ) -> Result<Outputs<'c>> {
        self.check(inputs)?;
        let c = &self.config;
        let (batch, seq, h) = (inputs.batch, inputs.seq, c.hidden_size);
        let rows = batch * seq;
        let n = rows * h;
        let num_layers = self.encoder.layers.len();

        let buffers = if all_layers { num_layers + 1 } else { 2 };
        if ctx.hidden.len() < buffers {
            ctx.hidden.resize_with(buffers, Vec::new);
        }
        for b in &mut ctx.hidden[..buffers] {
            sized(b, n);
        }
        let s = &mut ctx.scratch;
        sized(&mut s.mask_bias, rows);
        for (bias, i) in s.mask_bias.iter_mut().zip(0..) {
            let real = inputs.input_mask.get(i).map_or(true, |&m| m != 0);
            // modeling.py: adder = (1.0 - mask) * -10000.0
            *bias = if real { 0.0 } else { MASK_ADDER };
        }
        sized(&mut s.qkv, 3 * n);
        for v in [&mut s.context, &mut s.attention_output] {
            sized(v, n);
        }
        sized(&mut s.intermediate, rows * c.intermediate_size);

        self.embeddings.forward(
            inputs.input_ids,
            inputs.segment_ids,
            seq,
            &mut ctx.hidden[0],
        );
        for (l, layer) in self.encoder.layers.iter().enumerate() {
            if ctx.abort.asks_to_stop() {
                return Err(crate::Error::Cancelled(format!(
                    "the abort hook stopped the forward pass before layer {l}"
                )));
            }
            let (src, dst) = if all_layers {
                (l, l + 1)
            } else {
                (l % 2, (l + 1) % 2)
            };
            let (x, out) = pair_mut(&mut ctx.hidden, src, dst);
            layer.forward(&x[..n], &mut out[..n], batch, seq, s, &ctx.pool);
        }

        let last = if all_layers {
            num_layers
        } else {
            num_layers % 2
        };
        let pooled = match &self.pooler {
            Some(p) => {
                sized(&mut ctx.first_tokens, batch * h);
                sized(&mut ctx.pooled, batch * h);
                p.forward(
                    &ctx.hidden[last][..n],
                    batch,
                    seq,
                    &mut ctx.first_tokens,
                    &mut ctx.pooled,
                    &ctx.pool,
                );
                Some(&ctx.pooled[..])
            }
            None => None,
        };
        Ok(Outputs {
            batch,
            seq,
            hidden_size: h,
            num_layers,
            all_layers,
            hidden: &ctx.hidden,
            pooled,
        })
    }

    /// Sentence embeddings `[batch, hidden]`: the last layer reduced by `pooling`, optionally
    /// L2-normalised. Borrowed from the context until its next call.
    pub fn embed<'c>(
        &self,
        ctx: &'c mut Context,
        inputs: &Inputs,
        pooling: Pooling,
        normalize: bool,
    ) -> Result<&'c [f32]> {
        if pooling == Pooling::Pooler && self.pooler.is_none() {
            return Err(Error::Unsupported(
                "pooler pooling: the checkpoint has no bert/pooler/dense".into(),
            ));
        }
        let (batch, seq, h) = (inputs.batch, inputs.seq, self.config.hidden_size);
        let mut sentence = std::mem::take(&mut ctx.sentence);
        let mut mask = std::mem::take(&mut ctx.mask);
        mask.clear();
        if inputs.input_mask.is_empty() {
            mask.resize(batch * seq, 1);
        } else {
            mask.extend_from_slice(inputs.input_mask);
        }
        sized(&mut sentence, batch * h);
        let result = self.forward(ctx, inputs, false).map(|out| {
            let last = out.sequence_output();
            match pooling {
                Pooling::Cls => {
                    for (b, row) in sentence.chunks_exact_mut(h).enumerate() {
                        row.copy_from_slice(&last[b * seq * h..][..h]);
                    }
                }
                Pooling::Mean => ops::masked_mean(last, &mask, seq, h, &mut sentence),
                Pooling::Max => ops::masked_max(last, &mask, seq, h, &mut sentence),
                Pooling::Pooler => {
                    if let Some(p) = out.pooled_output() {
                        sentence.copy_from_slice(p);
                    }
                }
            }
        });
        ctx.sentence = sentence;
        ctx.mask = mask;
        result?;
        if normalize {
            ops::l2_normalize_rows(&mut ctx.sentence, h);
        }
        Ok(&ctx.sentence[..batch * h])
    }
}

/// `(&v[src], &mut v[dst])` for `src != dst`.
fn pair_mut<T>(v: &mut [T], src: usize, dst: usize) -> (&T, &mut T) {
    if src < dst {
        let (a, b) = v.split_at_mut(dst);
        (&a[src], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(src);
        (&b[0], &mut a[dst])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn model_is_send_and_sync_and_context_is_send() {
        assert_send_sync::<BertModel>();
        fn assert_send<T: Send>() {}
        assert_send::<Context>();
    }
}
