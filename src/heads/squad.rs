//! run_squad.py: `create_model`'s span head: `logits = sequence_output @
//! cls/squad/output_weightsᵀ + cls/squad/output_bias` (`[2, hidden]`, `[2]`), split into
//! start and end logits `[batch, seq]`; the loss is `(CE(start) + CE(end)) / 2`, each a mean
//! soft-max cross-entropy over all `max_seq_length` positions, padding included (so the
//! encoder keeps every position: [`Head::trims`] is false).

use super::{check_labels, Head};
use crate::backend::{Activation, Backend, Cpu, Dropout, Queries, Rows, View};
use crate::model::{BertModel, Dense};
use crate::weights::Weights;
use crate::{Error, Result};

/// Start and end logits, `[batch, seq]` each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanLogits {
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

struct Acts<B: Backend> {
    /// `[rows, 2]`, then transposed to `[2, rows]` (start logits, then end logits).
    logits: B::Buf,
    by_pos: B::Buf,
    /// Gradient of the scaled loss, `[2, rows]` then `[rows, 2]`.
    dby_pos: B::Buf,
    dlogits: B::Buf,
    rows: usize,
}

/// `cls/squad/*`.
pub struct SquadHead<B: Backend = Cpu> {
    output: Dense<B>,
    acts: Acts<B>,
}

crate::model::param::params!(SquadHead { "cls/squad/" => output });

impl<B: Backend> std::fmt::Debug for SquadHead<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SquadHead")
    }
}

impl<B: Backend> SquadHead<B> {
    /// `cls/squad/output_weights` `[2, hidden]` and `cls/squad/output_bias` `[2]`.
    pub fn load(b: &B, w: &Weights, hidden: usize, trainable: bool) -> Result<Self> {
        if !w.contains("cls/squad/output_weights") {
            return Err(Error::NotAClassifier(
                "no SQuAD head (cls/squad/output_weights): fine-tune the model on SQuAD first"
                    .into(),
            ));
        }
        Ok(SquadHead {
            output: Dense::load_output(b, w, "cls/squad/", (hidden, 2), trainable)?,
            acts: Acts {
                logits: B::Buf::default(),
                by_pos: B::Buf::default(),
                dby_pos: B::Buf::default(),
                dlogits: B::Buf::default(),
                rows: 0,
            },
        })
    }

    /// Start and end logits of a sequence output `[batch * seq, hidden]` (every position):
    /// `[2, batch * seq]`, start logits first, into `out`.
    pub fn logits(&self, ex: &mut B::Exec, sequence: &B::Buf, rows: usize, out: &mut B::Buf) {
        let mut pairs = B::Buf::default();
        let view = View::rows(sequence, self.output.in_dim());
        self.output
            .forward(ex, view, rows, &mut pairs, Activation::Identity);
        B::transpose(ex, &pairs, rows, 2, out);
    }
}

impl<B: Backend> Head<B> for SquadHead<B> {
    /// Per sequence, the answer's start and end positions (0 and 0 for a feature whose
    /// answer lies outside its window, or an impossible question).
    type Targets = [[u32; 2]];
    type Output = SpanLogits;

    fn trims(&self) -> bool {
        false
    }

    fn queries(&self, rows: &Rows, spans: &[[u32; 2]]) -> Result<Option<Queries>> {
        if spans.len() != rows.seqs.len() {
            return Err(Error::InvalidArgument(format!(
                "{} answer spans for a batch of {}",
                spans.len(),
                rows.seqs.len()
            )));
        }
        Ok(None)
    }

    fn uses_pooler(&self) -> bool {
        false
    }

    fn forward(
        &mut self,
        ex: &mut B::Exec,
        _: &BertModel<B>,
        last: &B::Buf,
        _: Option<&B::Buf>,
        spans: &[[u32; 2]],
        _: Option<Dropout>,
        grad_scale: Option<f32>,
    ) -> Result<(f64, SpanLogits)> {
        let batch = spans.len();
        let rows = B::len(last) / self.output.in_dim();
        if batch == 0 || rows % batch != 0 {
            return Err(Error::InvalidArgument(format!(
                "{rows} rows for a batch of {batch}"
            )));
        }
        let seq = rows / batch;
        // Start and end rows side by side: `[2 * batch, seq]`, labels start then end.
        let labels: Vec<u32> = spans
            .iter()
            .map(|s| s[0])
            .chain(spans.iter().map(|s| s[1]))
            .collect();
        check_labels("start/end position", &labels, seq)?;
        let a = &mut self.acts;
        let view = View::rows(last, self.output.in_dim());
        self.output
            .forward(ex, view, rows, &mut a.logits, Activation::Identity);
        B::transpose(ex, &a.logits, rows, 2, &mut a.by_pos);
        let scales = grad_scale.map(|s| vec![s / (2 * batch) as f32; 2 * batch]);
        let d = scales.as_deref().map(|s| (&mut a.dby_pos, s));
        let losses = B::softmax_cross_entropy(ex, &a.by_pos, seq, &labels, None, d);
        a.rows = rows;
        let loss = losses.iter().sum::<f64>() / (2 * batch) as f64;
        let all = B::read(&*ex, &a.by_pos, 2 * rows);
        let out = SpanLogits {
            start: all[..rows].to_vec(),
            end: all[rows..].to_vec(),
        };
        Ok((loss, out))
    }

    fn backward(
        &mut self,
        ex: &mut B::Exec,
        _: &mut BertModel<B>,
        last: &B::Buf,
        dlast: &mut B::Buf,
        _: &mut B::Buf,
    ) {
        let a = &mut self.acts;
        let h = self.output.in_dim();
        B::transpose(ex, &a.dby_pos, 2, a.rows, &mut a.dlogits);
        let (x, dy) = (View::rows(last, h), View::rows(&a.dlogits, 2));
        self.output.backward(ex, x, dy, a.rows, Some((dlast, true)));
    }
}
