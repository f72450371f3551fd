//! modeling.py: the intermediate (feed-forward up-projection) block of `transformer_model`:
//! dense to `intermediate_size`, then the configured activation.

use super::norm::load_dense;
use super::ops;
use crate::backend::{cpu, Pool, WeightDType};
use crate::config::{Activation, BertConfig};
use crate::weights::{DType, Weights};
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

    /// How the dense kernel is stored.
    pub(crate) fn weight_dtype(&self) -> DType {
        match self.dense.dtype() {
            WeightDType::F32 => DType::F32,
            WeightDType::F16 => DType::F16,
            WeightDType::Int8 => DType::Int8,
        }
    }

    /// x: `[rows, hidden]` -> out: `[rows, intermediate]`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], pool: &Pool) {
        // The GELUs run in the GEMM's epilogue, on each tile while it is in cache.
        let act = match self.activation {
            Activation::GeluTanh => cpu::Activation::GeluTanh,
            Activation::GeluErf => cpu::Activation::GeluErf,
            Activation::Relu => cpu::Activation::Identity,
        };
        self.dense.forward_act(x, rows, out, act, pool);
        if self.activation == Activation::Relu {
            ops::relu(&mut out[..rows * self.dense.out_dim()]);
        }
    }
}
