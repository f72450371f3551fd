//! Buffers of one training pass, kept between steps so a steady run allocates nothing: the
//! packed token layout, the activations the backward pass reads, and scratch.
//!
//! Activations are stored for real tokens only. Each example keeps its rows up to its last
//! real token (`input_mask`); trailing padding is dropped, because nothing the loss depends
//! on reads it: a padded position is only ever a key or value of attention, where its
//! weight `exp(−10000 + …)` is exactly 0 in f32, and the classifier reads position 0. The
//! loss and every gradient are therefore those of the padded computation, with less work.
//! (An example without any real token keeps all its rows: its softmax is then uniform over
//! every position, as in `modeling.py`.)

use super::dropout::Dropout;
use super::forward::{Batch, MASK_ADDER};

/// One example's rows in the packed layout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Span {
    /// First packed row.
    pub off: usize,
    /// Rows kept: up to the last real token.
    pub len: usize,
}

/// Real tokens of a batch, example after example.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    pub spans: Vec<Span>,
    /// Total rows.
    pub rows: usize,
    /// Per packed row: its index in the batch's `[batch, seq]` inputs.
    pub src: Vec<usize>,
    /// Per packed row as a key: 0 for a real token, −10000 for padding inside a span.
    pub mask_bias: Vec<f32>,
    /// Per example: offset of its `[heads, len, len]` attention probabilities.
    pub probs_off: Vec<usize>,
    pub probs_len: usize,
    /// The same for the last layer, where only position 0 is a query: `[heads, 1, len]`.
    pub probs_off_first: Vec<usize>,
    pub probs_len_first: usize,
}

impl Packed {
    /// Lays out `b` (checked by the caller) for `heads` attention heads.
    pub(crate) fn build(&mut self, b: &Batch, heads: usize) {
        self.spans.clear();
        self.src.clear();
        self.mask_bias.clear();
        self.probs_off.clear();
        self.probs_off_first.clear();
        let (mut rows, mut probs, mut probs_first) = (0, 0, 0);
        for e in 0..b.batch {
            let mask = &b.input_mask[e * b.seq..][..b.seq];
            let len = mask.iter().rposition(|&m| m != 0).map_or(b.seq, |i| i + 1);
            self.spans.push(Span { off: rows, len });
            for (t, &m) in mask[..len].iter().enumerate() {
                self.src.push(e * b.seq + t);
                self.mask_bias.push(if m != 0 { 0.0 } else { MASK_ADDER });
            }
            self.probs_off.push(probs);
            self.probs_off_first.push(probs_first);
            rows += len;
            probs += heads * len * len;
            probs_first += heads * len;
        }
        self.rows = rows;
        self.probs_len = probs;
        self.probs_len_first = probs_first;
    }
}

/// Grows `v` to at least `n` values (never shrinks: the next batch may be as large).
pub(crate) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// What the backward pass of one encoder layer reads. `R` is the packed rows, `Rq` the query
/// rows (`R`, or one per example in the last layer), `h` hidden, `I` intermediate.
#[derive(Debug, Default)]
pub(crate) struct LayerActs {
    /// `[Rq, h]`: the query rows' inputs, gathered (last layer only; otherwise the input).
    pub xq: Vec<f32>,
    /// `[Rq, h]` query projection.
    pub q: Vec<f32>,
    /// `[R, 2h]`: key and value projections side by side.
    pub kv: Vec<f32>,
    /// Softmax outputs before dropout, per example `[heads, Rq_e, R_e]`.
    pub probs: Vec<f32>,
    /// `[Rq, h]` attention context (heads side by side).
    pub context: Vec<f32>,
    /// Attention-output LayerNorm: `x̂` `[Rq, h]`, `1/σ` `[Rq]`.
    pub attn_xhat: Vec<f32>,
    pub attn_rstd: Vec<f32>,
    /// `[Rq, h]` attention block output (LayerNorm output).
    pub h1: Vec<f32>,
    /// `[Rq, I]` intermediate dense output before the activation (the activation itself is
    /// recomputed in the backward pass rather than stored).
    pub inter_pre: Vec<f32>,
    /// Output LayerNorm: `x̂` `[Rq, h]`, `1/σ` `[Rq]`.
    pub out_xhat: Vec<f32>,
    pub out_rstd: Vec<f32>,
}

/// Dropout masks of one layer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LayerDrops {
    pub probs: Option<Dropout>,
    pub attn: Option<Dropout>,
    pub out: Option<Dropout>,
}

/// Buffers every layer reuses.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// `[Rq, h]`: a dense layer's output before its fused pass; in the backward pass the
    /// gradient of a dropout branch.
    pub z: Vec<f32>,
    /// `[Rq, I]` activation output.
    pub inter: Vec<f32>,
    /// `[Rq, I]` its gradient.
    pub dinter: Vec<f32>,
    /// `[Rq, h]` gradient of the attention block output.
    pub dh1: Vec<f32>,
    /// `[Rq, h]` gradient of the attention context.
    pub dctx: Vec<f32>,
    /// `[Rq, h]`, `[R, 2h]`: gradients of the projections.
    pub dq: Vec<f32>,
    pub dkv: Vec<f32>,
    /// `[Rq, h]` gradient of the gathered query-row inputs (last layer).
    pub dxq: Vec<f32>,
    /// Per-chunk partial sums of bias / LayerNorm gradients.
    pub partials: Vec<f32>,
    /// `[2h]` key and value biases side by side.
    pub kv_bias: Vec<f32>,
}

/// Classifier head activations.
#[derive(Debug, Default)]
pub(crate) struct HeadActs {
    /// `[batch, hidden]` first-token hidden states of the last layer.
    pub first: Vec<f32>,
    /// `[batch, hidden]` tanh output of the pooler, and after the head's dropout.
    pub pooled: Vec<f32>,
    pub pooled_d: Vec<f32>,
    /// `[batch, num_labels]` softmax of the logits.
    pub label_probs: Vec<f32>,
    pub drop: Option<Dropout>,
    /// Backward-pass scratch: `[batch, num_labels]`, `[batch, hidden]`.
    pub dlogits: Vec<f32>,
    pub dpooled: Vec<f32>,
}

/// Everything one forward + backward pass needs besides the parameters and gradients.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    /// Keep only each layer's input and recompute the layer in the backward pass.
    pub checkpointing: bool,
    pub packed: Packed,
    /// `[L + 1]`: the input of every layer (`[R, h]`) and the last layer's output
    /// (`[batch, h]`: position 0 only).
    pub inputs: Vec<Vec<f32>>,
    /// One per layer, or a single reused one under checkpointing (or for evaluation).
    pub layers: Vec<LayerActs>,
    pub drops: Vec<LayerDrops>,
    /// Embedding LayerNorm `x̂` `[R, h]`, `1/σ` `[R]`, and the dropout after it.
    pub emb_xhat: Vec<f32>,
    pub emb_rstd: Vec<f32>,
    pub emb_drop: Option<Dropout>,
    pub head: HeadActs,
    pub scratch: Scratch,
    /// `[R, h]` gradients flowing down the layers (swapped after each layer).
    pub dy: Vec<f32>,
    pub dx: Vec<f32>,
}

impl Workspace {
    pub(crate) fn new(checkpointing: bool) -> Workspace {
        Workspace {
            checkpointing,
            ..Workspace::default()
        }
    }

    /// Makes room for `num_layers` layers' activation sets (one when checkpointing),
    /// releasing any others.
    pub(crate) fn prepare(&mut self, num_layers: usize) {
        let sets = if self.checkpointing {
            1
        } else {
            num_layers.max(1)
        };
        self.layers.truncate(sets);
        self.layers.resize_with(sets, LayerActs::default);
        self.inputs.resize_with(num_layers + 1, Vec::new);
        self.drops.clear();
        self.drops.resize(num_layers, LayerDrops::default());
    }

    /// The activation set of layer `l`.
    pub(crate) fn acts_index(&self, l: usize) -> usize {
        if self.checkpointing {
            0
        } else {
            l
        }
    }
}
