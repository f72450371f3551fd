//! run_pretraining.py: `get_masked_lm_output` and `get_next_sentence_output` (logits only;
//! the losses belong to training).

use crate::backend::{cpu, Pool};
use crate::config::{Activation, BertConfig};
use crate::model::{ops, BertModel, LayerNorm};
use crate::weights::Weights;
use crate::{Error, Result};

/// `cls/predictions/*` and `cls/seq_relationship/*`.
#[derive(Debug, Clone)]
pub struct PreTrainingHeads {
    /// `cls/predictions/transform/dense`: `[hidden, hidden]`
    transform: cpu::Dense,
    activation: Activation,
    /// `cls/predictions/transform/LayerNorm`
    transform_norm: LayerNorm,
    /// `cls/predictions/output_bias`: `[vocab]` (the output matrix is the word embeddings)
    output_bias: Vec<f32>,
    /// `cls/seq_relationship/output_weights`: `[2, hidden]`, applied as `x @ Wᵀ + b`
    nsp_weights: Vec<f32>,
    /// `cls/seq_relationship/output_bias`: `[2]`
    nsp_bias: Vec<f32>,
    hidden: usize,
    vocab: usize,
}

impl PreTrainingHeads {
    pub fn load(w: &Weights, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        let kernel = w.get_vec("cls/predictions/transform/dense/kernel", &[h, h])?;
        let bias = w.get_vec("cls/predictions/transform/dense/bias", &[h])?;
        Ok(PreTrainingHeads {
            transform: cpu::Dense::new(h, h, kernel, bias),
            activation: c.hidden_act,
            transform_norm: LayerNorm::load(
                w,
                "cls/predictions/transform/LayerNorm",
                h,
                c.layer_norm_eps,
            )?,
            output_bias: w.get_vec("cls/predictions/output_bias", &[c.vocab_size])?,
            nsp_weights: w.get_vec("cls/seq_relationship/output_weights", &[2, h])?,
            nsp_bias: w.get_vec("cls/seq_relationship/output_bias", &[2])?,
            hidden: h,
            vocab: c.vocab_size,
        })
    }

    /// Masked-LM logits at `positions` (flat indices `example * seq + position` into
    /// `sequence_output: [batch * seq, hidden]`). Returns (transform output `[n, hidden]`,
    /// logits `[n, vocab]` before log-softmax).
    pub fn masked_lm(
        &self,
        model: &BertModel,
        sequence_output: &[f32],
        positions: &[usize],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let h = self.hidden;
        let rows = sequence_output.len() / h;
        let embeddings = model.embeddings().word_embeddings();
        if embeddings.len() != self.vocab * h || model.config().hidden_size != h {
            return Err(Error::InvalidArgument(
                "pre-training heads do not belong to this model".into(),
            ));
        }
        let mut gathered = vec![0.0; positions.len() * h];
        for (row, &p) in gathered.chunks_exact_mut(h).zip(positions) {
            if p >= rows {
                return Err(Error::InvalidArgument(format!(
                    "masked LM position {p} outside {rows} rows"
                )));
            }
            row.copy_from_slice(&sequence_output[p * h..][..h]);
        }
        let n = positions.len();
        let pool = Pool::single();
        let mut transform = vec![0.0; n * h];
        self.transform.forward(&gathered, n, &mut transform, &pool);
        match self.activation {
            Activation::GeluTanh => cpu::gelu_tanh(&mut transform),
            Activation::GeluErf => cpu::gelu_erf(&mut transform),
            Activation::Relu => ops::relu(&mut transform),
        }
        self.transform_norm.forward(&mut transform);
        let mut logits = vec![0.0; n * self.vocab];
        for row in logits.chunks_exact_mut(self.vocab) {
            row.copy_from_slice(&self.output_bias);
        }
        // transform @ word_embeddingsᵀ: the table [vocab, hidden] read as [hidden, vocab].
        cpu::sgemm(
            n,
            h,
            self.vocab,
            1.0,
            &transform,
            (h as isize, 1),
            &embeddings,
            (1, h as isize),
            1.0,
            &mut logits,
            (self.vocab as isize, 1),
            &pool,
        );
        Ok((transform, logits))
    }

    /// Next-sentence logits `[batch, 2]` from the pooled output `[batch, hidden]`.
    pub fn next_sentence(&self, pooled: &[f32]) -> Vec<f32> {
        let h = self.hidden;
        let batch = pooled.len() / h;
        let mut logits = vec![0.0; batch * 2];
        for row in logits.chunks_exact_mut(2) {
            row.copy_from_slice(&self.nsp_bias);
        }
        cpu::sgemm(
            batch,
            h,
            2,
            1.0,
            pooled,
            (h as isize, 1),
            &self.nsp_weights,
            (1, h as isize),
            1.0,
            &mut logits,
            (2, 1),
            &Pool::single(),
        );
        logits
    }
}
