//! modeling.py: the intermediate (feed-forward up-projection) block of `transformer_model`:
//! dense to `intermediate_size`, then `hidden_act`.

use super::dense::Dense;
use crate::backend::{Activation, Backend, View};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_N/intermediate/dense`: `[hidden, intermediate]` + `[intermediate]`.
pub struct Intermediate<B: Backend> {
    dense: Dense<B>,
    act: Activation,
}

super::param::params!(Intermediate { "dense/" => dense });

impl<B: Backend> Intermediate<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, scope: &str, trainable: bool) -> Result<Self> {
        let dims = (c.hidden_size, c.intermediate_size);
        Ok(Intermediate {
            dense: Dense::load(b, w, &format!("{scope}/dense"), dims, trainable)?,
            act: c.hidden_act,
        })
    }

    /// How the dense kernel is stored.
    pub(crate) fn dtype(&self) -> crate::weights::DType {
        self.dense.dtype()
    }

    /// x: `[rows, hidden]` -> out: `[rows, intermediate]`. The activation runs in the
    /// product's epilogue, on each tile while it is in cache; with `pre` (training) the
    /// product is kept before it.
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        x: &B::Buf,
        rows: usize,
        out: &mut B::Buf,
        pre: Option<&mut B::Buf>,
    ) {
        let x = View::rows(x, self.dense.in_dim());
        match pre {
            None => self.dense.forward(ex, x, rows, out, self.act),
            Some(pre) => {
                self.dense.forward(ex, x, rows, pre, Activation::Identity);
                B::activate(ex, pre, rows * self.dense.out_dim(), self.act, out);
            }
        }
    }

    /// `act(pre)` again (the backward pass recomputes it rather than keeping it).
    pub(crate) fn activation(&self, ex: &mut B::Exec, pre: &B::Buf, rows: usize, out: &mut B::Buf) {
        B::activate(ex, pre, rows * self.dense.out_dim(), self.act, out);
    }

    /// Backward from `dout` (the gradient of the activation's output; overwritten), given
    /// the forward pass's input `x` and pre-activation `pre`: adds `dx += dpre Wᵀ`.
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        x: &B::Buf,
        pre: &B::Buf,
        rows: usize,
        dout: &mut B::Buf,
        dx: &mut B::Buf,
    ) {
        let (i, o) = (self.dense.in_dim(), self.dense.out_dim());
        B::activation_backward(ex, pre, rows * o, self.act, dout);
        let (x, d) = (View::rows(x, i), View::rows(&*dout, o));
        self.dense.backward(ex, x, d, rows, Some((dx, true)));
    }
}
