//! modeling.py: the pooler: `tanh(dense(sequence_output[:, 0]))`.

use super::dense::Dense;
use crate::backend::{Activation, Backend, View};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/pooler/dense`: `[hidden, hidden]` + `[hidden]`.
pub struct Pooler<B: Backend> {
    dense: Dense<B>,
}

super::param::params!(Pooler { "dense/" => dense });

impl<B: Backend> Pooler<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, trainable: bool) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Pooler {
            dense: Dense::load(b, w, "bert/pooler/dense", (h, h), trainable)?,
        })
    }

    /// `first: [batch, hidden]` (each sequence's first row) -> `out: [batch, hidden]`.
    pub(crate) fn forward(&self, ex: &mut B::Exec, first: &B::Buf, batch: usize, out: &mut B::Buf) {
        let view = View::rows(first, self.dense.in_dim());
        self.dense.forward(ex, view, batch, out, Activation::Tanh);
    }

    /// Backward from `dpooled` (overwritten), given the forward pass's input and output:
    /// writes the first rows' gradient into `dfirst`.
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        (first, pooled): (&B::Buf, &B::Buf),
        batch: usize,
        dpooled: &mut B::Buf,
        dfirst: &mut B::Buf,
    ) {
        let h = self.dense.in_dim();
        // tanh' = 1 − y², from the output.
        B::activation_backward(ex, pooled, batch * h, Activation::Tanh, dpooled);
        let (x, d) = (View::rows(first, h), View::rows(&*dpooled, h));
        self.dense.backward(ex, x, d, batch, Some((dfirst, false)));
    }
}
