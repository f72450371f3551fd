//! modeling.py: the two output blocks of `transformer_model` — after attention
//! (`attention/output`) and after the feed-forward up-projection (`output`): dense, dropout,
//! residual add, LayerNorm.

use super::dense::{Dense, LayerNorm};
use crate::backend::{Activation, Backend, Dropout, NormRecord, View};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `LayerNorm(dropout(x @ W + b) + input)`: `{scope}/dense` `[in, hidden]` and
/// `{scope}/LayerNorm`.
pub struct ResidualDense<B: Backend> {
    dense: Dense<B>,
    norm: LayerNorm<B>,
}

/// `bert/encoder/layer_N/attention/output`: dense `[hidden, hidden]`.
pub type AttentionOutput<B> = ResidualDense<B>;

/// `bert/encoder/layer_N/output`: dense `[intermediate, hidden]`.
pub type Output<B> = ResidualDense<B>;

super::param::params!(ResidualDense { "dense/" => dense, "LayerNorm/" => norm });

impl<B: Backend> ResidualDense<B> {
    /// `{scope}/dense` `[in_dim, hidden]` and `{scope}/LayerNorm`.
    pub fn load(
        b: &B,
        w: &Weights,
        c: &BertConfig,
        scope: &str,
        in_dim: usize,
        trainable: bool,
    ) -> Result<Self> {
        let h = c.hidden_size;
        Ok(ResidualDense {
            dense: Dense::load(b, w, &format!("{scope}/dense"), (in_dim, h), trainable)?,
            norm: LayerNorm::load(
                b,
                w,
                &format!("{scope}/LayerNorm"),
                h,
                c.layer_norm_eps,
                trainable,
            )?,
        })
    }

    /// `out = LayerNorm(drop(x @ W + b) + input)`: `x: [rows, in]`, the rest `[rows, hidden]`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        x: &B::Buf,
        input: &B::Buf,
        rows: usize,
        out: &mut B::Buf,
        record: Option<&mut NormRecord<B>>,
        drop: Option<Dropout>,
    ) {
        let view = View::rows(x, self.dense.in_dim());
        self.dense
            .forward(ex, view, rows, out, Activation::Identity);
        self.norm.forward(ex, out, rows, Some(input), drop, record);
    }

    /// Backward from `dy`: writes the residual's gradient into `dinput` and `x`'s into
    /// `dx`; `dz` is scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        x: &B::Buf,
        rows: usize,
        record: &NormRecord<B>,
        drop: Option<Dropout>,
        dy: &B::Buf,
        (dinput, dx, dz): (&mut B::Buf, &mut B::Buf, &mut B::Buf),
    ) {
        self.norm
            .backward(ex, dy, rows, record, dinput, Some((drop, &mut *dz)));
        let (x, dz) = (
            View::rows(x, self.dense.in_dim()),
            View::rows(&*dz, self.dense.out_dim()),
        );
        self.dense.backward(ex, x, dz, rows, Some((dx, false)));
    }
}
