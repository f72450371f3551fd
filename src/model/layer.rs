//! modeling.py: one iteration of the loop in `transformer_model`, forward and backward.
//!
//! Forward: `q, k, v` projections, attention, `h1 = LN(drop(context W_ao + b_ao) + x_q)`,
//! `y = LN(drop(act(h1 W_i + b_i) W_o + b_o) + h1)`. Query rows `x_q` are all rows, or the
//! subset a head reads (the last layer): the other rows then still serve as keys and values,
//! but need no query, attention output or feed-forward block.

use super::attention::{Qkv, SelfAttention};
use super::intermediate::Intermediate;
use super::output::{AttentionOutput, Output};
use crate::backend::{Backend, Dropout, NormRecord, Queries, Rows};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_N`.
pub struct Layer<B: Backend> {
    attention: SelfAttention<B>,
    attention_output: AttentionOutput<B>,
    intermediate: Intermediate<B>,
    output: Output<B>,
    hidden: usize,
}

super::param::params!(Layer {
    "attention/self/" => attention,
    "attention/output/" => attention_output,
    "intermediate/" => intermediate,
    "output/" => output,
});

/// Dropout masks of one layer (training): on the attention probabilities, on the attention
/// output's dense and on the output's dense.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerDrops {
    pub probs: Option<Dropout>,
    pub attn: Option<Dropout>,
    pub out: Option<Dropout>,
}

/// The activations of one layer's forward pass: scratch for inference, and in training what
/// its backward pass reads. `R` is the rows, `Rq` the query rows, `h` hidden, `I`
/// intermediate.
pub struct LayerActs<B: Backend> {
    /// `[Rq, h]`: the query rows' inputs, gathered (query subsets only).
    pub(crate) xq: B::Buf,
    /// Projections (see [`Qkv`]).
    pub(crate) q: B::Buf,
    pub(crate) k: B::Buf,
    pub(crate) v: B::Buf,
    /// Soft-max outputs before dropout (training).
    pub(crate) probs: B::Buf,
    /// `[Rq, h]` attention context (heads side by side).
    pub(crate) context: B::Buf,
    pub(crate) attn_norm: NormRecord<B>,
    /// `[Rq, h]` attention block output.
    pub(crate) h1: B::Buf,
    /// `[Rq, I]` intermediate dense output before the activation (training).
    pub(crate) inter_pre: B::Buf,
    /// `[Rq, I]` after the activation (recomputed in the backward pass, not kept).
    pub(crate) inter: B::Buf,
    pub(crate) out_norm: NormRecord<B>,
}

impl<B: Backend> Default for LayerActs<B> {
    fn default() -> Self {
        LayerActs {
            xq: B::Buf::default(),
            q: B::Buf::default(),
            k: B::Buf::default(),
            v: B::Buf::default(),
            probs: B::Buf::default(),
            context: B::Buf::default(),
            attn_norm: NormRecord::default(),
            h1: B::Buf::default(),
            inter_pre: B::Buf::default(),
            inter: B::Buf::default(),
            out_norm: NormRecord::default(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for LayerActs<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerActs")
    }
}

/// Gradient scratch every layer's backward pass reuses.
pub struct LayerGrads<B: Backend> {
    dh1: B::Buf,
    dz: B::Buf,
    dinter: B::Buf,
    dctx: B::Buf,
    dq: B::Buf,
    dk: B::Buf,
    dv: B::Buf,
    dxq: B::Buf,
}

impl<B: Backend> Default for LayerGrads<B> {
    fn default() -> Self {
        LayerGrads {
            dh1: B::Buf::default(),
            dz: B::Buf::default(),
            dinter: B::Buf::default(),
            dctx: B::Buf::default(),
            dq: B::Buf::default(),
            dk: B::Buf::default(),
            dv: B::Buf::default(),
            dxq: B::Buf::default(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for LayerGrads<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerGrads")
    }
}

impl<B: Backend> Layer<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, index: usize, trainable: bool) -> Result<Self> {
        let s = format!("bert/encoder/layer_{index}");
        let (h, i) = (c.hidden_size, c.intermediate_size);
        Ok(Layer {
            attention: SelfAttention::load(b, w, c, &format!("{s}/attention/self"), trainable)?,
            attention_output: AttentionOutput::load(
                b,
                w,
                c,
                &format!("{s}/attention/output"),
                h,
                trainable,
            )?,
            intermediate: Intermediate::load(b, w, c, &format!("{s}/intermediate"), trainable)?,
            output: Output::load(b, w, c, &format!("{s}/output"), i, trainable)?,
            hidden: h,
        })
    }

    /// How the layer's dense kernels are stored (that of the intermediate dense layer).
    pub(crate) fn dtype(&self) -> crate::weights::DType {
        self.intermediate.dtype()
    }

    /// `x: [R, h]` -> `out: [Rq, h]`. With `drops` (training) the dropout masks apply and
    /// `a` keeps what the backward pass reads; else `a` is scratch.
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        x: &B::Buf,
        a: &mut LayerActs<B>,
        drops: Option<&LayerDrops>,
        out: &mut B::Buf,
    ) {
        let record = drops.is_some();
        let d = drops.copied().unwrap_or_default();
        let h = self.hidden;
        let nq = queries.map_or(rows.len(), Queries::len);
        let LayerActs {
            xq,
            q,
            k,
            v,
            probs,
            context,
            attn_norm,
            h1,
            inter_pre,
            inter,
            out_norm,
        } = a;
        let xq: &B::Buf = match queries {
            Some(qs) => {
                B::gather(ex, x, h, &qs.rows, xq);
                xq
            }
            None => x,
        };
        let qkv = Qkv { q, k, v };
        let probs = record.then_some(probs);
        let batch = (rows, queries);
        self.attention
            .forward(ex, batch, x, xq, qkv, context, probs, d.probs);
        let attn_norm = record.then_some(attn_norm);
        self.attention_output
            .forward(ex, context, xq, nq, h1, attn_norm, d.attn);
        let pre = record.then_some(inter_pre);
        self.intermediate.forward(ex, h1, nq, inter, pre);
        let out_norm = record.then_some(out_norm);
        self.output.forward(ex, inter, h1, nq, out, out_norm, d.out);
    }

    /// Backward from `dy: [Rq, h]` given the layer's input `x` and its forward pass's
    /// activations: adds every parameter's gradient and writes `dx: [R, h]`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        x: &B::Buf,
        a: &mut LayerActs<B>,
        drops: &LayerDrops,
        dy: &B::Buf,
        dx: &mut B::Buf,
        s: &mut LayerGrads<B>,
    ) {
        let nq = queries.map_or(rows.len(), Queries::len);
        let h = self.hidden;
        // Output block, then the intermediate dense: dh1 collects both paths to h1.
        self.intermediate
            .activation(ex, &a.inter_pre, nq, &mut a.inter);
        let grads = (&mut s.dh1, &mut s.dinter, &mut s.dz);
        self.output
            .backward(ex, &a.inter, nq, &a.out_norm, drops.out, dy, grads);
        self.intermediate
            .backward(ex, &a.h1, &a.inter_pre, nq, &mut s.dinter, &mut s.dh1);
        // Attention output block: the residual's gradient goes to the query rows' inputs.
        let xq = if queries.is_some() { &a.xq } else { x };
        let dres: &mut B::Buf = if queries.is_some() {
            &mut s.dxq
        } else {
            &mut *dx
        };
        let grads = (dres, &mut s.dctx, &mut s.dz);
        self.attention_output
            .backward(ex, &a.context, nq, &a.attn_norm, drops.attn, &s.dh1, grads);
        // Self-attention and the projections.
        let qkv = (&a.q, &a.k, &a.v);
        let dqkv = (&mut s.dq, &mut s.dk, &mut s.dv);
        let batch = (rows, queries);
        let dinputs = match queries {
            Some(_) => (&mut *dx, Some(&mut s.dxq)),
            None => (&mut *dx, None),
        };
        self.attention.backward(
            ex,
            batch,
            (x, xq),
            qkv,
            &a.probs,
            drops.probs,
            &s.dctx,
            dqkv,
            dinputs,
        );
        if let Some(qs) = queries {
            B::scatter_add(ex, &s.dxq, h, &qs.rows, dx);
        }
    }
}
