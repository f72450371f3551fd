//! modeling.py: `attention_layer` (self-attention). Its output block (projection, dropout,
//! residual, LayerNorm) is [`super::AttentionOutput`].
//!
//! Per head: `softmax(q kᵀ / sqrt(head_size) + (1 − mask[key]) · −10000) v`. Heads are
//! contiguous column slices of the hidden dimension; the ops read them in place, so no
//! `[batch, heads, seq, head_size]` transpose is materialised.

use super::dense::Dense;
use super::param::{Param, Visit};
use crate::backend::{Activation, Backend, Dropout, Heads, Queries, Rows, View};
use crate::config::BertConfig;
use crate::weights::{quantize, Weights};
use crate::Result;

/// The query, key and value projections (one per layer: the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
enum Projections<B: Backend> {
    /// One `[hidden, 3 * hidden]` layer (query, key, value columns), so one product reads the
    /// activations once: an inference model (every output element is summed exactly as by
    /// the three separate layers).
    Fused(Dense<B>),
    /// Google's three layers, as training updates them.
    Separate {
        query: Dense<B>,
        key: Dense<B>,
        value: Dense<B>,
    },
}

/// `bert/encoder/layer_N/attention/self/{query,key,value}`, each `[hidden, hidden]` +
/// `[hidden]`.
pub struct SelfAttention<B: Backend> {
    proj: Projections<B>,
    heads: Heads,
}

/// The projections a forward pass leaves for the attention and for the backward pass.
pub(crate) struct Qkv<'a, B: Backend> {
    /// `[queries, h]`, or the fused `[rows, 3h]`.
    pub q: &'a mut B::Buf,
    /// `[rows, h]` each (scratch of the fused path).
    pub k: &'a mut B::Buf,
    pub v: &'a mut B::Buf,
}

impl<B: Backend> SelfAttention<B> {
    /// Loads Google's `query`, `key`, `value` layers (fused for inference), or the fused `qkv`
    /// layer of an f16 or int8 model (see [`crate::weights::quantize`]).
    pub fn load(b: &B, w: &Weights, c: &BertConfig, scope: &str, trainable: bool) -> Result<Self> {
        let h = c.hidden_size;
        let fused = format!("{scope}/{}", quantize::QKV);
        let proj = if trainable {
            let load = |name: &str| Dense::load(b, w, &format!("{scope}/{name}"), (h, h), true);
            Projections::Separate {
                query: load("query")?,
                key: load("key")?,
                value: load("value")?,
            }
        } else if w.contains(&format!("{fused}/kernel")) {
            Projections::Fused(Dense::load(b, w, &fused, (h, 3 * h), false)?)
        } else {
            let (parts, bias) = quantize::qkv_parts(w, scope, h)?;
            let kernel = quantize::fuse_qkv(parts, h)?;
            Projections::Fused(Dense::prepared(b, kernel.source(), &bias, (h, 3 * h))?)
        };
        Ok(SelfAttention {
            proj,
            heads: Heads {
                n: c.num_attention_heads,
                size: c.head_size(),
            },
        })
    }

    fn width(&self) -> usize {
        self.heads.n * self.heads.size
    }

    /// The query, key and value views of a forward pass's projections `(q, k, v)` (see
    /// [`Qkv`]).
    fn views<'a>(
        &self,
        (q, k, v): (&'a B::Buf, &'a B::Buf, &'a B::Buf),
        subset: bool,
    ) -> [View<'a, B>; 3] {
        let h = self.width();
        match &self.proj {
            // The query rows of a subset were gathered (whole fused rows) into `k`.
            Projections::Fused(_) => {
                let qs = if subset { k } else { q };
                [
                    View::cols(qs, 0, 3 * h),
                    View::cols(q, h, 3 * h),
                    View::cols(q, 2 * h, 3 * h),
                ]
            }
            Projections::Separate { .. } => [View::rows(q, h), View::rows(k, h), View::rows(v, h)],
        }
    }

    /// `x: [rows, h]` (all rows), `xq: [queries, h]` (the query rows' inputs) ->
    /// `context: [queries, h]`; with `probs`, the soft-max outputs are recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        x: &B::Buf,
        xq: &B::Buf,
        p: Qkv<'_, B>,
        context: &mut B::Buf,
        probs: Option<&mut B::Buf>,
        drop: Option<Dropout>,
    ) {
        let (h, r) = (self.width(), rows.len());
        let nq = queries.map_or(r, Queries::len);
        let id = Activation::Identity;
        match &self.proj {
            Projections::Fused(d) => {
                d.forward(ex, View::rows(x, h), r, p.q, id);
                if let Some(qs) = queries {
                    B::gather(ex, p.q, 3 * h, &qs.rows, p.k);
                }
            }
            Projections::Separate { query, key, value } => {
                query.forward(ex, View::rows(xq, h), nq, p.q, id);
                key.forward(ex, View::rows(x, h), r, p.k, id);
                value.forward(ex, View::rows(x, h), r, p.v, id);
            }
        }
        let [qv, kv, vv] = self.views((&*p.q, &*p.k, &*p.v), queries.is_some());
        B::attention(
            ex, qv, kv, vv, rows, queries, self.heads, context, probs, drop,
        );
    }

    /// Backward from `dctx: [queries, h]`: the projections' parameter gradients, and the
    /// inputs' gradient added into `dx` (all rows are queries: `dx += dk W_kᵀ + dv W_vᵀ +
    /// dq W_qᵀ`), or with a query subset `dx = dk W_kᵀ + dv W_vᵀ` (overwritten) and
    /// `dxq += dq W_qᵀ` (the query rows' inputs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        (x, xq): (&B::Buf, &B::Buf),
        qkv: (&B::Buf, &B::Buf, &B::Buf),
        probs: &B::Buf,
        drop: Option<Dropout>,
        dctx: &B::Buf,
        (dq, dk, dv): (&mut B::Buf, &mut B::Buf, &mut B::Buf),
        (dx, dxq): (&mut B::Buf, Option<&mut B::Buf>),
    ) {
        let (h, r) = (self.width(), rows.len());
        let nq = queries.map_or(r, Queries::len);
        let [qv, kv, vv] = self.views(qkv, queries.is_some());
        B::attention_backward(
            ex, qv, kv, vv, rows, queries, self.heads, probs, drop, dctx, dq, dk, dv,
        );
        let Projections::Separate { query, key, value } = &mut self.proj else {
            panic!("backward pass through fused (inference) projections");
        };
        let split = dxq.is_some();
        key.backward(
            ex,
            View::rows(x, h),
            View::rows(dk, h),
            r,
            Some((&mut *dx, !split)),
        );
        value.backward(
            ex,
            View::rows(x, h),
            View::rows(dv, h),
            r,
            Some((&mut *dx, true)),
        );
        let dxq = dxq.unwrap_or(dx);
        query.backward(
            ex,
            View::rows(xq, h),
            View::rows(dq, h),
            nq,
            Some((dxq, true)),
        );
    }
}

impl<B: Backend> Visit<B> for SelfAttention<B> {
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        if let Projections::Separate { query, key, value } = &self.proj {
            query.visit(&format!("{scope}query/"), f);
            key.visit(&format!("{scope}key/"), f);
            value.visit(&format!("{scope}value/"), f);
        }
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        if let Projections::Separate { query, key, value } = &mut self.proj {
            query.visit_mut(&format!("{scope}query/"), f);
            key.visit_mut(&format!("{scope}key/"), f);
            value.visit_mut(&format!("{scope}value/"), f);
        }
    }
}
