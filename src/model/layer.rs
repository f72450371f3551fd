//! modeling.py: one iteration of the loop in `transformer_model`.

use super::attention::{AttentionOutput, SelfAttention};
use super::intermediate::Intermediate;
use super::output::Output;
use super::Scratch;
use crate::backend::Pool;
use crate::config::BertConfig;
use crate::weights::{DType, Weights};
use crate::Result;

/// `bert/encoder/layer_N`.
#[derive(Debug, Clone)]
pub struct Layer {
    attention: SelfAttention,
    attention_output: AttentionOutput,
    intermediate: Intermediate,
    output: Output,
}

impl Layer {
    pub fn load(w: &Weights, c: &BertConfig, index: usize) -> Result<Self> {
        let scope = format!("bert/encoder/layer_{index}");
        Ok(Layer {
            attention: SelfAttention::load(w, c, &format!("{scope}/attention/self"))?,
            attention_output: AttentionOutput::load(w, c, &format!("{scope}/attention/output"))?,
            intermediate: Intermediate::load(w, c, &format!("{scope}/intermediate"))?,
            output: Output::load(w, c, &format!("{scope}/output"))?,
        })
    }

    /// How the layer's dense kernels are stored (that of the intermediate dense layer).
    pub(crate) fn weight_dtype(&self) -> DType {
        self.intermediate.weight_dtype()
    }

    /// x: `[batch, seq, hidden]` -> out: `[batch, seq, hidden]`; `s.mask_bias` holds the
    /// additive key mask `[batch, seq]`.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        out: &mut [f32],
        batch: usize,
        seq: usize,
        s: &mut Scratch,
        pool: &Pool,
    ) {
        let rows = batch * seq;
        self.attention.forward(x, batch, seq, s, pool);
        self.attention_output
            .forward(&s.context, x, rows, &mut s.attention_output, pool);
        self.intermediate
            .forward(&s.attention_output, rows, &mut s.intermediate, pool);
        self.output
            .forward(&s.intermediate, &s.attention_output, rows, out, pool);
    }
}
