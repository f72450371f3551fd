//! run_pretraining.py: `get_masked_lm_output` and `get_next_sentence_output`.
//!
//! Masked LM: the last layer at the masked positions, `cls/predictions/transform` (dense +
//! `hidden_act` + LayerNorm), then `logits = transform @ word_embeddingsᵀ +
//! cls/predictions/output_bias` — the output layer is the word-embedding table itself, so its
//! gradient adds to the table's. Loss `Σ w·(−log p[label]) / (Σ w + 1e-5)` over all slots
//! (padding slots have weight 0). Next sentence: `pooled @ cls/seq_relationship/
//! output_weightsᵀ + output_bias`, mean cross-entropy. The total loss is their sum.

use super::{check_labels, copy, Head};
use crate::backend::{
    Activation, Backend, Cpu, Dropout, Layout, NormRecord, Queries, Rows, View, Weight,
};
use crate::config::BertConfig;
use crate::model::{queries_at, BertModel, Dense, LayerNorm, Param};
use crate::weights::Weights;
use crate::{Error, Result};

/// What the heads learn from, for a batch of `batch` sequences with `per_seq` prediction
/// slots each (`run_pretraining.py`'s features).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaskedLmTargets {
    /// `[batch * per_seq]` positions to predict (padding slots: 0).
    pub positions: Vec<u32>,
    /// `[batch * per_seq]` the original ids there.
    pub ids: Vec<u32>,
    /// `[batch * per_seq]` 1.0 for a real slot, 0.0 for padding.
    pub weights: Vec<f32>,
    /// `[batch]` 0 when segment B follows A, 1 when it is random.
    pub next_sentence: Vec<u32>,
    pub per_seq: usize,
}

/// The losses and logits of a forward pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreTrainingOutput {
    /// `Σ w·l / (Σ w + 1e-5)`.
    pub masked_lm_loss: f64,
    /// `[batch * per_seq]` `−log p[label]` of every slot, padding slots included.
    pub masked_lm_losses: Vec<f64>,
    /// Mean of `next_sentence_losses`.
    pub next_sentence_loss: f64,
    pub next_sentence_losses: Vec<f64>,
    /// `[batch, 2]`.
    pub next_sentence_logits: Vec<f32>,
    /// Of the predicted slots, how many have their label as the arg-max (the masked LM's
    /// accuracy counts real slots, weighted), and of the sequences, how many next-sentence
    /// labels are the arg-max.
    pub masked_lm_correct: f64,
    pub next_sentence_correct: usize,
}

struct Acts<B: Backend> {
    /// Per slot: its row in the last layer's query rows.
    slots: Vec<u32>,
    /// `[slots, hidden]`: gathered rows, the transform before its activation, after the
    /// transform (LayerNorm output).
    x: B::Buf,
    pre: B::Buf,
    t: B::Buf,
    norm: NormRecord<B>,
    logits: B::Buf,
    dlogits: B::Buf,
    pooled: B::Buf,
    nsp_logits: B::Buf,
    dnsp: B::Buf,
    batch: usize,
}

/// `cls/predictions/*` and `cls/seq_relationship/*`.
pub struct PreTrainingHeads<B: Backend = Cpu> {
    /// `cls/predictions/transform/dense`: `[hidden, hidden]`
    transform: Dense<B>,
    act: Activation,
    /// `cls/predictions/transform/LayerNorm`
    norm: LayerNorm<B>,
    /// `cls/predictions/output_bias`: `[vocab]`
    output_bias: Param<B>,
    /// `cls/seq_relationship/output_weights` `[2, hidden]`, `output_bias` `[2]`.
    next_sentence: Dense<B>,
    hidden: usize,
    vocab: usize,
    acts: Acts<B>,
}

crate::model::param::params!(PreTrainingHeads {
    "cls/predictions/transform/dense/" => transform,
    "cls/predictions/transform/LayerNorm/" => norm,
    "cls/predictions/output_bias" => output_bias,
    "cls/seq_relationship/" => next_sentence,
});

impl<B: Backend> std::fmt::Debug for PreTrainingHeads<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreTrainingHeads")
    }
}

impl<B: Backend> PreTrainingHeads<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, trainable: bool) -> Result<Self> {
        let (h, v) = (c.hidden_size, c.vocab_size);
        let scope = "cls/predictions/transform";
        let bias = w.get("cls/predictions/output_bias", &[v])?;
        let empty = || B::Buf::default();
        Ok(PreTrainingHeads {
            transform: Dense::load(b, w, &format!("{scope}/dense"), (h, h), trainable)?,
            act: c.hidden_act,
            norm: LayerNorm::load(
                b,
                w,
                &format!("{scope}/LayerNorm"),
                h,
                c.layer_norm_eps,
                trainable,
            )?,
            output_bias: Param::new(b, bias, &[v], trainable),
            next_sentence: Dense::load_output(b, w, "cls/seq_relationship/", (h, 2), trainable)?,
            hidden: h,
            vocab: v,
            acts: Acts {
                slots: Vec::new(),
                x: empty(),
                pre: empty(),
                t: empty(),
                norm: NormRecord::default(),
                logits: empty(),
                dlogits: empty(),
                pooled: empty(),
                nsp_logits: empty(),
                dnsp: empty(),
                batch: 0,
            },
        })
    }

    /// Masked-LM logits `[slots, vocab]` of rows `x: [slots, hidden]` (the last layer at the
    /// masked positions) into `logits`; the transform output `[slots, hidden]` stays in the
    /// head until the next call ([`Self::transform_output`]).
    pub fn masked_lm_logits(
        &mut self,
        ex: &mut B::Exec,
        model: &BertModel<B>,
        x: &B::Buf,
        slots: usize,
        record: bool,
    ) -> Result<()>
    where
        B::Buf: Clone,
    {
        let (h, v) = (self.hidden, self.vocab);
        if model.config().vocab_size != v || model.config().hidden_size != h {
            return Err(Error::InvalidArgument(
                "pre-training heads do not belong to this model".into(),
            ));
        }
        let word = model.embeddings().word_embeddings(model.backend())?;
        let a = &mut self.acts;
        self.transform.forward(
            ex,
            View::rows(x, h),
            slots,
            &mut a.pre,
            Activation::Identity,
        );
        B::activate(ex, &a.pre, slots * h, self.act, &mut a.t);
        self.norm.forward(
            ex,
            &mut a.t,
            slots,
            None,
            None,
            record.then_some(&mut a.norm),
        );
        let w = Weight::Plain(&*word, Layout::OutIn);
        let bias = Some(&self.output_bias.value);
        B::dense(
            ex,
            w,
            h,
            v,
            bias,
            View::rows(&a.t, h),
            slots,
            &mut a.logits,
            Activation::Identity,
        );
        Ok(())
    }

    /// The transform output `[slots, hidden]` of the last call.
    pub fn transform_output(&self) -> &B::Buf {
        &self.acts.t
    }

    /// The masked-LM logits `[slots, vocab]` of the last call.
    pub fn logits(&self) -> &B::Buf {
        &self.acts.logits
    }

    /// Next-sentence logits `[batch, 2]` of the pooled output `[batch, hidden]`.
    pub fn next_sentence_logits(
        &self,
        ex: &mut B::Exec,
        pooled: &B::Buf,
        batch: usize,
        out: &mut B::Buf,
    ) {
        let view = View::rows(pooled, self.hidden);
        self.next_sentence
            .forward(ex, view, batch, out, Activation::Identity);
    }

    fn check(&self, rows: &Rows, t: &MaskedLmTargets) -> Result<()> {
        let batch = rows.seqs.len();
        let slots = batch * t.per_seq;
        if t.positions.len() != slots || t.ids.len() != slots || t.weights.len() != slots {
            return Err(Error::InvalidArgument(format!(
                "masked LM targets: {} positions, {} ids, {} weights for {batch} x {} slots",
                t.positions.len(),
                t.ids.len(),
                t.weights.len(),
                t.per_seq
            )));
        }
        if t.next_sentence.len() != batch {
            return Err(Error::InvalidArgument(format!(
                "{} next-sentence labels for a batch of {batch}",
                t.next_sentence.len()
            )));
        }
        check_labels("masked_lm_ids", &t.ids, self.vocab)?;
        check_labels("next_sentence_labels", &t.next_sentence, 2)?;
        for (e, s) in rows.seqs.iter().enumerate() {
            let ps = &t.positions[e * t.per_seq..][..t.per_seq];
            check_labels(&format!("masked_lm_positions of sequence {e}"), ps, s.len)?;
        }
        Ok(())
    }
}

impl<B: Backend> Head<B> for PreTrainingHeads<B>
where
    B::Buf: Clone,
{
    type Targets = MaskedLmTargets;
    type Output = PreTrainingOutput;

    fn trims(&self) -> bool {
        true
    }

    /// Per sequence: position 0 (the pooler's input), then every masked position.
    fn queries(&self, rows: &Rows, t: &MaskedLmTargets) -> Result<Option<Queries>> {
        self.check(rows, t)?;
        let lists: Vec<Vec<u32>> = (0..rows.seqs.len())
            .map(|e| query_positions(t, e))
            .collect();
        let lists: Vec<Vec<usize>> = lists
            .iter()
            .map(|l| l.iter().map(|&p| p as usize).collect())
            .collect();
        Ok(Some(queries_at(rows, |e| &lists[e])))
    }

    fn uses_pooler(&self) -> bool {
        true
    }

    fn forward(
        &mut self,
        ex: &mut B::Exec,
        model: &BertModel<B>,
        last: &B::Buf,
        pooled: Option<&B::Buf>,
        t: &MaskedLmTargets,
        _: Option<Dropout>,
        grad_scale: Option<f32>,
    ) -> Result<(f64, PreTrainingOutput)> {
        let pooled = pooled.ok_or_else(|| Error::Unsupported("the model has no pooler".into()))?;
        let (h, v) = (self.hidden, self.vocab);
        let batch = t.next_sentence.len();
        // Each slot's row among the query rows (`query_positions` of every sequence).
        let mut slots = Vec::with_capacity(t.positions.len());
        let mut start = 0;
        for e in 0..batch {
            let list = query_positions(t, e);
            for p in &t.positions[e * t.per_seq..][..t.per_seq] {
                slots.push((start + list.binary_search(p).unwrap_or(0)) as u32);
            }
            start += list.len();
        }
        let n = slots.len();
        B::gather(ex, last, h, &slots, &mut self.acts.x);
        let x = std::mem::take(&mut self.acts.x);
        let r = self.masked_lm_logits(ex, model, &x, n, grad_scale.is_some());
        self.acts.x = x;
        r?;
        let a = &mut self.acts;
        let wsum: f64 = t.weights.iter().map(|&w| w as f64).sum::<f64>() + 1e-5;
        let scales: Option<Vec<f32>> = grad_scale.map(|s| {
            t.weights
                .iter()
                .map(|&w| (s as f64 * w as f64 / wsum) as f32)
                .collect()
        });
        let d = scales.as_deref().map(|s| (&mut a.dlogits, s));
        let mlm = B::softmax_cross_entropy(ex, &a.logits, v, &t.ids, None, d);
        let logits = B::read(&*ex, &a.logits, n * v);
        let mut correct = 0.0;
        for (r, row) in logits.chunks_exact(v).enumerate() {
            if argmax(row) == t.ids[r] as usize {
                correct += t.weights[r] as f64;
            }
        }
        copy::<B>(ex, pooled, batch * h, &mut a.pooled);
        self.next_sentence.forward(
            ex,
            View::rows(&a.pooled, h),
            batch,
            &mut a.nsp_logits,
            Activation::Identity,
        );
        let scales = grad_scale.map(|s| vec![s / batch as f32; batch]);
        let d = scales.as_deref().map(|s| (&mut a.dnsp, s));
        let nsp = B::softmax_cross_entropy(ex, &a.nsp_logits, 2, &t.next_sentence, None, d);
        let nsp_logits = B::read(&*ex, &a.nsp_logits, batch * 2).into_owned();
        let nsp_correct = nsp_logits
            .chunks_exact(2)
            .zip(&t.next_sentence)
            .filter(|(row, &l)| argmax(row) == l as usize)
            .count();
        (a.slots, a.batch) = (slots, batch);
        let mlm_loss = mlm
            .iter()
            .zip(&t.weights)
            .map(|(l, &w)| l * w as f64)
            .sum::<f64>()
            / wsum;
        let nsp_loss = nsp.iter().sum::<f64>() / batch as f64;
        Ok((
            mlm_loss + nsp_loss,
            PreTrainingOutput {
                masked_lm_loss: mlm_loss,
                masked_lm_losses: mlm,
                next_sentence_loss: nsp_loss,
                next_sentence_losses: nsp,
                next_sentence_logits: nsp_logits,
                masked_lm_correct: correct,
                next_sentence_correct: nsp_correct,
            },
        ))
    }

    fn backward(
        &mut self,
        ex: &mut B::Exec,
        model: &mut BertModel<B>,
        last: &B::Buf,
        dlast: &mut B::Buf,
        dpooled: &mut B::Buf,
    ) {
        let (h, v) = (self.hidden, self.vocab);
        let a = &mut self.acts;
        let n = a.slots.len();
        // Next sentence.
        let (x, dy) = (View::rows(&a.pooled, h), View::rows(&a.dnsp, 2));
        self.next_sentence
            .backward(ex, x, dy, a.batch, Some((dpooled, false)));
        // The output layer: the word-embedding table's gradient, the bias's, the transform's.
        let word = model
            .embeddings
            .word_param()
            .expect("pre-training backward pass on an inference model");
        let (t, dl) = (View::rows(&a.t, h), View::rows(&a.dlogits, v));
        let g = word
            .grad
            .as_mut()
            .expect("backward pass on an inference model");
        B::dense_weight_grad(ex, t, dl, n, h, v, Layout::OutIn, &mut g.buf);
        (g.dense, g.occurrence_sq) = (true, None);
        B::column_sums(ex, dl, n, v, self.output_bias.grad());
        let mut dt = B::Buf::default();
        B::dense_input_grad(ex, &word.value, Layout::OutIn, h, v, dl, n, &mut dt, false);
        // Transform: LayerNorm, activation, dense.
        let mut dpre = B::Buf::default();
        self.norm.backward(ex, &dt, n, &a.norm, &mut dpre, None);
        B::activation_backward(ex, &a.pre, n * h, self.act, &mut dpre);
        let mut dx = B::Buf::default();
        let (xv, dv) = (View::rows(&a.x, h), View::rows(&dpre, h));
        self.transform
            .backward(ex, xv, dv, n, Some((&mut dx, false)));
        let _ = last;
        B::scatter_add(ex, &dx, h, &a.slots, dlast);
    }
}

/// The positions the last layer computes for sequence `e`: 0 and its masked positions,
/// sorted, each once.
fn query_positions(t: &MaskedLmTargets, e: usize) -> Vec<u32> {
    let mut list: Vec<u32> = t.positions[e * t.per_seq..][..t.per_seq].to_vec();
    list.push(0);
    list.sort_unstable();
    list.dedup();
    list
}

/// Index of the largest value (the first on ties, as `tf.argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}
