//! modeling.py: `embedding_lookup` + `embedding_postprocessor`: word + token-type + position
//! embeddings (positions `0..seq`, no offset), then LayerNorm, then dropout (training).

use std::borrow::Cow;

use super::dense::LayerNorm;
use super::param::{Param, Visit};
use crate::backend::{Backend, Dropout, NormRecord, Rows, TableRef, TableSource};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::{Error, Result};

/// The word embedding table: prepared by the back end (f32, f16 or int8 rows: a lookup reads
/// only the rows of its ids, so a quantized table stays in the model file's memory map), or
/// plain f32 with a gradient (training).
enum Words<B: Backend> {
    Prepared(B::Table),
    Plain(Param<B>),
}

/// `bert/embeddings/*`.
pub struct Embeddings<B: Backend> {
    /// `word_embeddings`: `[vocab_size, hidden]`
    word: Words<B>,
    /// `token_type_embeddings`: `[type_vocab_size, hidden]`
    token_type: Param<B>,
    /// `position_embeddings`: `[max_position_embeddings, hidden]`
    position: Param<B>,
    norm: LayerNorm<B>,
    hidden: usize,
    vocab: usize,
}

impl<B: Backend> std::fmt::Debug for Embeddings<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embeddings[{}, {}]", self.vocab, self.hidden)
    }
}

impl<B: Backend> Embeddings<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, trainable: bool) -> Result<Self> {
        let h = c.hidden_size;
        let name = "bert/embeddings/word_embeddings";
        let shape = [c.vocab_size, h];
        let word = match (w.quantized(name), trainable) {
            (None, true) => Words::Plain(Param::new(b, w.get(name, &shape)?, &shape, true)),
            (Some(q), true) => {
                return Err(Error::Unsupported(format!(
                    "tensor {name} is stored as {}: a model is trained from f32 weights",
                    q.dtype()
                )))
            }
            (None, false) => {
                Words::Prepared(b.table(TableSource::F32(w.get(name, &shape)?), c.vocab_size, h)?)
            }
            (Some(q), false) => {
                Words::Prepared(b.table(TableSource::Quantized(q), c.vocab_size, h)?)
            }
        };
        let table = |name: &str, rows: usize| -> Result<Param<B>> {
            let name = format!("bert/embeddings/{name}");
            Ok(Param::new(
                b,
                w.get(&name, &[rows, h])?,
                &[rows, h],
                trainable,
            ))
        };
        Ok(Embeddings {
            word,
            token_type: table("token_type_embeddings", c.type_vocab_size)?,
            position: table("position_embeddings", c.max_position_embeddings)?,
            norm: LayerNorm::load(
                b,
                w,
                "bert/embeddings/LayerNorm",
                h,
                c.layer_norm_eps,
                trainable,
            )?,
            hidden: h,
            vocab: c.vocab_size,
        })
    }

    /// The word embedding table `[vocab_size, hidden]` (the masked LM's output layer); a
    /// dequantized copy when the model stores it as f16 or int8.
    pub fn word_embeddings(&self, b: &B) -> Result<Cow<'_, B::Buf>>
    where
        B::Buf: Clone,
    {
        match &self.word {
            Words::Plain(p) => Ok(Cow::Borrowed(&p.value)),
            Words::Prepared(t) => Ok(Cow::Owned(b.table_values(t, self.hidden)?)),
        }
    }

    /// The word table as an inference model prepared it on its back end (`None` in a
    /// trainable model, whose table is a plain f32 parameter).
    pub fn word_table(&self) -> Option<&B::Table> {
        match &self.word {
            Words::Prepared(t) => Some(t),
            Words::Plain(_) => None,
        }
    }

    /// The word embedding table's parameter, in a trainable model (the masked LM adds its
    /// output layer's gradient to it).
    pub(crate) fn word_param(&mut self) -> Option<&mut Param<B>> {
        match &mut self.word {
            Words::Plain(p) => Some(p),
            Words::Prepared(_) => None,
        }
    }

    /// `out[rows, hidden] = drop(LayerNorm(word + token type + position))`.
    pub(crate) fn forward(
        &self,
        ex: &mut B::Exec,
        rows: &Rows,
        out: &mut B::Buf,
        record: Option<&mut NormRecord<B>>,
        drop: Option<Dropout>,
    ) {
        let word = match &self.word {
            Words::Prepared(t) => TableRef::Prepared(t),
            Words::Plain(p) => TableRef::Plain(&p.value),
        };
        let (types, positions) = (&self.token_type.value, &self.position.value);
        B::embed(ex, word, types, positions, rows, self.hidden, out);
        self.norm.forward(ex, out, rows.len(), None, None, record);
        if let Some(d) = drop {
            B::dropout(ex, out, rows.len() * self.hidden, d);
        }
    }

    /// Backward from `dy` (the gradient of the output; overwritten): dropout, LayerNorm,
    /// then the rows scattered into the three tables' gradients.
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        rows: &Rows,
        dy: &mut B::Buf,
        record: &NormRecord<B>,
        drop: Option<Dropout>,
        dsum: &mut B::Buf,
    ) {
        let n = rows.len();
        if let Some(d) = drop {
            B::dropout(ex, dy, n * self.hidden, d);
        }
        self.norm.backward(ex, dy, n, record, dsum, None);
        let Words::Plain(word) = &mut self.word else {
            panic!("backward pass through a prepared (inference) embedding table");
        };
        let (dtype, dpos) = (self.token_type.grad(), self.position.grad());
        let g = word
            .grad
            .as_mut()
            .expect("backward pass on an inference model");
        let sq = B::embed_backward(ex, dsum, rows, self.hidden, &mut g.buf, dtype, dpos);
        if !g.dense {
            g.occurrence_sq = Some(g.occurrence_sq.unwrap_or(0.0) + sq);
        }
    }
}

impl<B: Backend> Visit<B> for Embeddings<B> {
    fn visit(&self, scope: &str, f: &mut dyn FnMut(&str, &Param<B>)) {
        if let Words::Plain(p) = &self.word {
            f(&format!("{scope}word_embeddings"), p);
        }
        self.token_type
            .visit(&format!("{scope}token_type_embeddings"), f);
        self.position
            .visit(&format!("{scope}position_embeddings"), f);
        self.norm.visit(&format!("{scope}LayerNorm/"), f);
    }
    fn visit_mut(&mut self, scope: &str, f: &mut dyn FnMut(&str, &mut Param<B>)) {
        if let Words::Plain(p) = &mut self.word {
            f(&format!("{scope}word_embeddings"), p);
        }
        self.token_type
            .visit_mut(&format!("{scope}token_type_embeddings"), f);
        self.position
            .visit_mut(&format!("{scope}position_embeddings"), f);
        self.norm.visit_mut(&format!("{scope}LayerNorm/"), f);
    }
}
