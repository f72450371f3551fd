//! modeling.py: the pooler: `tanh(dense(sequence_output[:, 0]))`.

use super::norm::load_dense;
use crate::backend::{cpu, Pool};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/pooler/dense`: `[hidden, hidden]` + `[hidden]`.
#[derive(Debug, Clone)]
pub struct Pooler {
    dense: cpu::Dense,
}

impl Pooler {
    pub fn load(w: &Weights, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Pooler {
            dense: load_dense(w, "bert/pooler/dense", h, h)?,
        })
    }

    /// sequence_output: `[batch, seq, hidden]` -> out: `[batch, hidden]`; `first` is scratch
    /// `[batch, hidden]` for the gathered first tokens.
    pub fn forward(
        &self,
        sequence_output: &[f32],
        batch: usize,
        seq: usize,
        first: &mut [f32],
        out: &mut [f32],
        pool: &Pool,
    ) {
        let h = self.dense.in_dim();
        for (b, row) in first.chunks_exact_mut(h).enumerate().take(batch) {
            row.copy_from_slice(&sequence_output[b * seq * h..][..h]);
        }
        self.dense
            .forward_act(first, batch, out, cpu::Activation::Tanh, pool);
    }
}
