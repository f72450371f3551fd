//! modeling.py: the layer output block of `transformer_model`: dense back to `hidden`,
//! residual add, LayerNorm.

use super::norm::{load_dense, LayerNorm};
use crate::backend::{cpu, Pool};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_N/output/{dense, LayerNorm}`; dense is `[intermediate, hidden]`.
#[derive(Debug, Clone)]
pub struct Output {
    dense: cpu::Dense,
    layer_norm: LayerNorm,
}

impl Output {
    pub fn load(w: &Weights, c: &BertConfig, scope: &str) -> Result<Self> {
        Ok(Output {
            dense: load_dense(
                w,
                &format!("{scope}/dense"),
                c.intermediate_size,
                c.hidden_size,
            )?,
            layer_norm: LayerNorm::load(
                w,
                &format!("{scope}/LayerNorm"),
                c.hidden_size,
                c.layer_norm_eps,
            )?,
        })
    }

    /// intermediate: `[rows, intermediate]`, input: `[rows, hidden]` -> out: `[rows, hidden]`.
    pub fn forward(
        &self,
        intermediate: &[f32],
        input: &[f32],
        rows: usize,
        out: &mut [f32],
        pool: &Pool,
    ) {
        self.dense.forward(intermediate, rows, out, pool);
        self.layer_norm
            .forward_residual(&mut out[..rows * self.dense.out_dim()], input, pool);
    }
}
