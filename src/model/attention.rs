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
use crate::weights::{quantize, Weights};
use crate::Result;

/// Google's additive attention mask for padded keys.
pub const MASK_ADDER: f32 = -10000.0;

/// `bert/encoder/layer_N/attention/self/{query,key,value}`, each `[hidden, hidden]` +
/// `[hidden]`, held as one `[hidden, 3 * hidden]` dense layer (query, key, value columns) so
/// one GEMM reads the activations once. Every output element is summed exactly as by the
/// three separate layers.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    qkv: cpu::Dense,
    num_heads: usize,
    head_size: usize,
}

impl SelfAttention {
    /// Loads Google's `query`, `key`, `value` kernels, or the fused `qkv` kernel of an f16 or
    /// int8 model (see [`crate::weights::quantize`]), on their own storage.
    pub fn load(w: &Weights, c: &BertConfig, scope: &str) -> Result<Self> {
        let h = c.hidden_size;
        let fused = format!("{scope}/{}", quantize::QKV);
        let qkv = if w.contains(&format!("{fused}/kernel")) {
            load_dense(w, &fused, h, 3 * h)?
        } else {
            let (parts, bias) = quantize::qkv_parts(w, scope, h)?;
            quantize::fuse_qkv(parts, h)?.into_dense(h, 3 * h, bias)?
        };
        Ok(SelfAttention {
            qkv,
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
        self.qkv.forward(x, rows, &mut s.qkv, pool);
        cpu::attention(
            &s.qkv,
            batch,
            seq,
            self.num_heads,
            self.head_size,
            &s.mask_bias,
            &mut s.context,
            pool,
        );
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
        self.layer_norm
            .forward_residual(&mut out[..rows * self.dense.out_dim()], input, pool);
    }
}
