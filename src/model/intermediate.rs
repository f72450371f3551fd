//! modeling.py: the intermediate (feed-forward up-projection) block of `transformer_model`:
//! dense to `intermediate_size`, then the configured activation.

use super::norm::load_dense;
use super::ops;
use crate::backend::{cpu, Pool};
use crate::config::{Activation, BertConfig};
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_N/intermediate/dense`: `[hidden, intermediate]` + `[intermediate]`.
#[derive(Debug, Clone)]
pub struct Intermediate {
    dense: cpu::Dense,
    activation: Activation,
}

impl Intermediate {
    pub fn load(w: &Weights, c: &BertConfig, scope: &str) -> Result<Self> {
        Ok(Intermediate {
            dense: load_dense(
                w,
                &format!("{scope}/dense"),
                c.hidden_size,
                c.intermediate_size,
            )?,
            activation: c.hidden_act,
        })
    }

    /// x: `[rows, hidden]` -> out: `[rows, intermediate]`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], pool: &Pool) {
        self.dense.forward(x, rows, out, pool);
        match self.activation {
            Activation::GeluTanh => cpu::gelu_tanh(out),
            Activation::GeluErf => cpu::gelu_erf(out),
            Activation::Relu => ops::relu(out),
        }
    }
}
