//! The vocabulary the model and its back ends share: what an op's arguments mean.
//!
//! Everything here is plain data: the row layout of a batch ([`Rows`], [`Queries`]), views
//! into a back end's buffers ([`View`]), a dense layer's kernel as an op sees
//! it ([`Weight`]), activations, dropout masks and the optimizer's constants. A back end
//! defines only how they are computed.

use std::fmt;

use super::Backend;

/// An activation a dense layer can apply in its epilogue: `hidden_act` of `bert_config.json`
/// (`modeling.py: get_activation`) and the pooler's `tanh`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Activation {
    /// None (`"linear"`): `x @ kernel + bias`.
    #[default]
    Identity,
    /// Google's `gelu`, the tanh approximation
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (Google checkpoints).
    GeluTanh,
    /// The exact erf form `0.5 x (1 + erf(x / sqrt(2)))` (Hugging Face checkpoints).
    GeluErf,
    /// `max(x, 0)`.
    Relu,
    /// `tanh` (the pooler).
    Tanh,
}

/// A dropout mask as `tf.nn.dropout` applies it (`1 / (1 − rate)` for a kept unit, 0 for a
/// dropped one), defined by a 64-bit key: element `i` of the tensor it applies to is kept
/// when a hash of `(key, i)` read as a 24-bit uniform is below `1 − rate`. The definition is
/// part of the seam so every back end drops the same units: a mask costs no memory, does not
/// depend on which thread (or GPU invocation) computes which element, and the backward pass
/// (or a recomputation under gradient checkpointing) regenerates it exactly. Training draws
/// the keys (`train::dropout`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub key: u64,
    /// `(1 − rate) · 2²⁴`, exact in f32.
    pub threshold: f32,
    /// `1 / (1 − rate)`.
    pub scale: f32,
}

impl Dropout {
    /// The mask of `key` at `rate` (in `(0, 1)`).
    pub fn new(key: u64, rate: f32) -> Dropout {
        let keep = 1.0 - rate;
        Dropout {
            key,
            threshold: keep * (1u32 << 24) as f32,
            scale: 1.0 / keep,
        }
    }

    /// The factor of element `i`: `scale` or 0.
    pub fn factor(&self, i: u64) -> f32 {
        if ((dropout_hash(self.key, i) >> 8) as f32) < self.threshold {
            self.scale
        } else {
            0.0
        }
    }
}

/// MurmurHash3's finalizer: a bijection with full avalanche.
#[inline(always)]
pub(crate) fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The mask's hash of element `i` (back ends compute the same with the high word hoisted).
pub fn dropout_hash(key: u64, i: u64) -> u32 {
    let h = fmix32((i as u32).wrapping_mul(0x9e37_79b9) ^ key as u32);
    fmix32(h ^ (key >> 32) as u32 ^ ((i >> 32) as u32).wrapping_mul(0x85eb_ca6b))
}

/// A sequence's rows: `start..start + len`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// How a batch's tokens are laid out as rows of the activations: sequences end to end, each
/// keeping its positions `0..len`. [`crate::model::BertModel::forward`] keeps every position
/// of `[batch, seq]` inputs (padding included, as `modeling.py` computes it); training and
/// sentence embeddings keep each sequence only up to its last real token, since nothing they
/// read depends on the positions after it (a padded key's softmax weight `exp(−10000 + …)` is
/// exactly 0 in f32).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Per sequence.
    pub seqs: Vec<Span>,
    /// Per row: WordPiece id, segment (token type) id and position.
    pub ids: Vec<u32>,
    pub segments: Vec<u32>,
    pub positions: Vec<u32>,
    /// Per row, as an attention key: 0 for a real token, `MASK_ADDER` for padding.
    pub mask_bias: Vec<f32>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The query rows of a layer that computes only some positions: the last layer, when the
/// head reads only a few rows (the classifier position 0, the masked LM its masked
/// positions). Its keys and values are still every row of [`Rows`]; its outputs are the
/// query rows only, compacted in this order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Queries {
    /// Per sequence: its query rows in the compacted output.
    pub seqs: Vec<Span>,
    /// Per compacted row: the row of [`Rows`] it is.
    pub rows: Vec<u32>,
}

impl Queries {
    /// Number of query rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Attention heads: `n` of width `size` (heads are contiguous column slices of the hidden
/// dimension, head `h` in columns `h * size..`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    pub n: usize,
    pub size: usize,
}

/// How a plain f32 kernel is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `[in, out]`: Google's dense kernels (`x @ kernel`).
    InOut,
    /// `[out, in]`: the heads' `output_weights` (`x @ output_weightsᵀ`).
    OutIn,
}

/// A dense layer's kernel as an op sees it.
pub enum Weight<'a, B: Backend> {
    /// Prepared by the back end for its products (packed f32, f16 or int8): inference.
    Prepared(&'a B::Matrix),
    /// Plain f32 values, as training keeps and updates them.
    Plain(&'a B::Buf, Layout),
}

impl<B: Backend> Clone for Weight<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for Weight<'_, B> {}

impl<B: Backend> fmt::Debug for Weight<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Weight::Prepared(_) => f.write_str("Prepared"),
            Weight::Plain(_, l) => write!(f, "Plain({l:?})"),
        }
    }
}

/// Rows of a matrix inside a buffer: row `r`, column `c` is element `col + r * stride + c`.
pub struct View<'a, B: Backend> {
    pub buf: &'a B::Buf,
    pub col: usize,
    pub stride: usize,
}

impl<'a, B: Backend> View<'a, B> {
    /// A row-major `[rows, width]` matrix at the start of `buf`.
    pub fn rows(buf: &'a B::Buf, width: usize) -> Self {
        View {
            buf,
            col: 0,
            stride: width,
        }
    }

    /// Columns from `col` of rows `stride` wide.
    pub fn cols(buf: &'a B::Buf, col: usize, stride: usize) -> Self {
        View { buf, col, stride }
    }
}

impl<B: Backend> Clone for View<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for View<'_, B> {}

/// What a LayerNorm's backward pass reads: `x̂ = (x − mean) / σ` `[rows, width]` and `1/σ`
/// `[rows]`.
pub struct NormRecord<B: Backend> {
    pub xhat: B::Buf,
    pub rstd: B::Buf,
}

impl<B: Backend> Default for NormRecord<B> {
    fn default() -> Self {
        NormRecord {
            xhat: B::Buf::default(),
            rstd: B::Buf::default(),
        }
    }
}

impl<B: Backend> fmt::Debug for NormRecord<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NormRecord")
    }
}

/// A LayerNorm's parameters (`tf.contrib.layers.layer_norm`: biased variance, `eps` inside
/// the square root, then `· gamma + beta`).
pub struct Norm<'a, B: Backend> {
    pub gamma: &'a B::Buf,
    pub beta: &'a B::Buf,
    pub eps: f32,
}

/// How rows of a sequence reduce to one vector (sentence embeddings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The sequence's first row (`[CLS]`).
    First,
    /// Mean over real tokens (mask bias 0), as sentence-transformers does; zeros if none.
    Mean,
    /// Element-wise max over real tokens; zeros if none.
    Max,
}

/// One AdamW update of a variable (`optimization.py: AdamWeightDecayOptimizer`), f32
/// constants as the TF graph computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    /// `1 − beta`, computed on Python floats and rounded to f32 once (in f32, 1 − 0.999 would
    /// be 0.00100005, a relative error of 5e-5).
    pub one_minus_beta_1: f32,
    pub one_minus_beta_2: f32,
    pub epsilon: f32,
    /// The decay rate, or 0 for a variable excluded from weight decay.
    pub weight_decay: f32,
    /// The gradients' factor before the update: `tf.clip_by_global_norm`'s scale, or 1.
    pub grad_scale: f32,
}
