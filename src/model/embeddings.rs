//! modeling.py: `embedding_lookup` + `embedding_postprocessor`: word + token-type + position
//! embeddings (positions `0..seq`, no offset), then LayerNorm. Dropout is off at inference.

use std::borrow::Cow;

use super::norm::LayerNorm;
use crate::backend::{cpu, WeightBytes};
use crate::config::BertConfig;
use crate::weights::{QuantizedTensor, Weights};
use crate::{Error, Result};

/// The word embedding table `[vocab_size, hidden]` on its storage. f16 and int8 tables stay in
/// the model file's memory map: a lookup touches only the rows of the ids it reads.
#[derive(Debug, Clone)]
enum Table {
    F32(Vec<f32>),
    /// Little-endian f16, row-major.
    F16(WeightBytes),
    /// Symmetric int8, row-major, one scale per row.
    Int8 {
        values: WeightBytes,
        scales: Vec<f32>,
    },
}

impl Table {
    /// Writes row `id` (`< vocab_size`, checked by the model) into `out: [hidden]`.
    fn row(&self, id: usize, out: &mut [f32]) {
        let h = out.len();
        match self {
            Table::F32(t) => out.copy_from_slice(&t[id * h..][..h]),
            Table::F16(b) => {
                let bytes = &b.as_bytes()[2 * id * h..][..2 * h];
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
            Table::Int8 { values, scales } => {
                let scale = scales[id];
                for (o, &v) in out.iter_mut().zip(&values.as_bytes()[id * h..][..h]) {
                    *o = v as i8 as f32 * scale;
                }
            }
        }
    }
}

/// `bert/embeddings/*`.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// `word_embeddings`: `[vocab_size, hidden]`, f32, f16 or int8 rows.
    word_embeddings: Table,
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
        let name = "bert/embeddings/word_embeddings";
        let shape = [c.vocab_size, h];
        let word_embeddings = match w.quantized(name) {
            None => Table::F32(w.get_vec(name, &shape)?),
            Some(q) if q.shape() != shape => {
                return Err(Error::Shape(format!(
                    "tensor {name} has shape {:?}, the config needs {shape:?}",
                    q.shape()
                )))
            }
            Some(QuantizedTensor::F16 { bytes, .. }) => Table::F16(bytes.clone()),
            Some(QuantizedTensor::Int8Rows { values, scales, .. }) => Table::Int8 {
                values: values.clone(),
                scales: scales.clone(),
            },
            Some(q) => Table::F32(q.to_f32()?),
        };
        Ok(Embeddings {
            word_embeddings,
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

    /// The word embedding table `[vocab_size, hidden]` (the masked-LM head reuses it); a
    /// dequantized copy when the model stores it as f16 or int8.
    pub fn word_embeddings(&self) -> Cow<'_, [f32]> {
        match &self.word_embeddings {
            Table::F32(t) => Cow::Borrowed(t),
            table => {
                let h = self.hidden;
                let rows = match table {
                    Table::F16(b) => b.as_bytes().len() / (2 * h),
                    Table::Int8 { scales, .. } => scales.len(),
                    Table::F32(t) => t.len() / h,
                };
                let mut out = vec![0.0; rows * h];
                for (id, row) in out.chunks_exact_mut(h).enumerate() {
                    table.row(id, row);
                }
                Cow::Owned(out)
            }
        }
    }

    /// input_ids, segment_ids: `[batch, seq]` (already validated against the config) ->
    /// out: `[batch, seq, hidden]`.
    pub fn forward(&self, input_ids: &[u32], segment_ids: &[u32], seq: usize, out: &mut [f32]) {
        let h = self.hidden;
        for (i, row) in out.chunks_exact_mut(h).enumerate() {
            let id = input_ids[i] as usize;
            let ty = segment_ids.get(i).map_or(0, |&t| t as usize);
            let pos = i % seq;
            self.word_embeddings.row(id, row);
            cpu::add_assign(row, &self.token_type_embeddings[ty * h..][..h]);
            cpu::add_assign(row, &self.position_embeddings[pos * h..][..h]);
        }
        self.layer_norm.forward(out);
    }
}
