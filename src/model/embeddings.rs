//! modeling.py: `embedding_lookup` + `embedding_postprocessor`: word + token-type + position
//! embeddings (positions `0..seq`, no offset), then LayerNorm. Dropout is off at inference.

use super::norm::LayerNorm;
use crate::backend::cpu;
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/embeddings/*`.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// `word_embeddings`: `[vocab_size, hidden]`
    word_embeddings: Vec<f32>,
    /// `token_type_embeddings`: `[type_vocab_size, hidden]`
    token_type_embeddings: Vec<f32>,
    /// `position_embeddings`: `[max_position_embeddings, hidden]`
    position_embeddings: Vec<f32>,
    layer_norm: LayerNorm,
    hidden: usize,
}

impl Embeddings {
    pub fn load(w: &Weights, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Embeddings {
            word_embeddings: w.get_vec("bert/embeddings/word_embeddings", &[c.vocab_size, h])?,
            token_type_embeddings: w.get_vec(
                "bert/embeddings/token_type_embeddings",
                &[c.type_vocab_size, h],
            )?,
            position_embeddings: w.get_vec(
                "bert/embeddings/position_embeddings",
                &[c.max_position_embeddings, h],
            )?,
            layer_norm: LayerNorm::load(w, "bert/embeddings/LayerNorm", h, c.layer_norm_eps)?,
            hidden: h,
        })
    }

    /// The word embedding table `[vocab_size, hidden]` (the masked-LM head reuses it).
    pub fn word_embeddings(&self) -> &[f32] {
        &self.word_embeddings
    }

    /// input_ids, segment_ids: `[batch, seq]` (already validated against the config) ->
    /// out: `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &[u32], segment_ids: &[u32], seq: usize, out: &mut [f32]) {
        let h = self.hidden;
        for (i, row) in out.chunks_exact_mut(h).enumerate() {
            let id = input_ids[i] as usize;
            let ty = segment_ids.get(i).map_or(0, |&t| t as usize);
            let pos = i % seq;
            row.copy_from_slice(&self.word_embeddings[id * h..][..h]);
            cpu::add_assign(row, &self.token_type_embeddings[ty * h..][..h]);
            cpu::add_assign(row, &self.position_embeddings[pos * h..][..h]);
        }
        self.layer_norm.forward(out);
    }
}
