//! modeling.py: `attention_layer` (self-attention) and the attention output block of
//! `transformer_model` (projection, residual, LayerNorm).
//!
//! Per head: `softmax(q kᵀ / sqrt(head_size) + (1 − mask[key]) · −10000) v`. Heads are
//! contiguous column slices of the hidden dimension; the strided matmuls read them in place,
//! so no `[batch, heads, seq, head_size]` transpose is materialised.

use super::norm::{load_dense, LayerNorm};
use super::Scratch;
use crate::backend::{cpu, Pool};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// Google's additive attention mask for padded keys.
pub const MASK_ADDER: f32 = -10000.0;

/// `bert/encoder/layer_N/attention/self/{query,key,value}`, each `[hidden, hidden]` + `[hidden]`.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    query: cpu::Dense,
    key: cpu::Dense,
    value: cpu::Dense,
    num_heads: usize,
    head_size: usize,
}

impl SelfAttention {
    pub fn load(w: &Weights, c: &BertConfig, scope: &str) -> Result<Self> {
        let h = c.hidden_size;
        Ok(SelfAttention {
            query: load_dense(w, &format!("{scope}/query"), h, h)?,
            key: load_dense(w, &format!("{scope}/key"), h, h)?,
            value: load_dense(w, &format!("{scope}/value"), h, h)?,
            num_heads: c.num_attention_heads,
            head_size: c.head_size(),
        })
    }

    /// x: `[batch, seq, hidden]`, `s.mask_bias: [batch, seq]` -> `s.context: [batch, seq, hidden]`.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        batch: usize,
        seq: usize,
        s: &mut Scratch,
        pool: &Pool,
    ) {
        let rows = batch * seq;
        let (d, h) = (self.head_size, self.num_heads * self.head_size);
        self.query.forward(x, rows, &mut s.q, pool);
        self.key.forward(x, rows, &mut s.k, pool);
        self.value.forward(x, rows, &mut s.v, pool);
        let scale = 1.0 / (d as f32).sqrt();
        let scores = &mut s.scores[..seq * seq];
        let hs = h as isize;
        for b in 0..batch {
            let bias = &s.mask_bias[b * seq..][..seq];
            for head in 0..self.num_heads {
                let off = b * seq * h + head * d;
                for row in scores.chunks_exact_mut(seq) {
                    row.copy_from_slice(bias);
                }
                // scores = q_h k_hᵀ / sqrt(d) + mask adder: [seq, d] x [d, seq].
                cpu::sgemm(
                    seq,
                    d,
                    seq,
                    scale,
                    &s.q[off..],
                    (hs, 1),
                    &s.k[off..],
                    (1, hs),
                    1.0,
                    scores,
                    (seq as isize, 1),
                    pool,
                );
                cpu::softmax_rows(scores, seq);
                // context_h = probs v_h: [seq, seq] x [seq, d], written into the head's columns.
                cpu::sgemm(
                    seq,
                    seq,
                    d,
                    1.0,
                    scores,
                    (seq as isize, 1),
                    &s.v[off..],
                    (hs, 1),
                    0.0,
                    &mut s.context[off..],
                    (hs, 1),
                    pool,
                );
            }
        }
    }
}

/// `bert/encoder/layer_N/attention/output/{dense, LayerNorm}`.
#[derive(Debug, Clone)]
pub struct AttentionOutput {
    /// `[hidden, hidden]`
    dense: cpu::Dense,
    layer_norm: LayerNorm,
}

impl AttentionOutput {
    pub fn load(w: &Weights, c: &BertConfig, scope: &str) -> Result<Self> {
        let h = c.hidden_size;
        Ok(AttentionOutput {
            dense: load_dense(w, &format!("{scope}/dense"), h, h)?,
            layer_norm: LayerNorm::load(w, &format!("{scope}/LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    /// `LayerNorm(context @ W + b + input)`; all `[rows, hidden]`.
    pub fn forward(
        &self,
        context: &[f32],
        input: &[f32],
        rows: usize,
        out: &mut [f32],
        pool: &Pool,
    ) {
        self.dense.forward(context, rows, out, pool);
        cpu::add_assign(out, input);
        self.layer_norm.forward(out);
    }
}
