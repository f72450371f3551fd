//! run_classifier.py: `create_model`'s head: `logits = dropout(pooled) @ output_weightsᵀ +
//! output_bias`, loss = mean soft-max cross-entropy.
//!
//! `output_weights` `[num_labels, hidden]` and `output_bias` `[num_labels]` sit at the top
//! level of the variable namespace (not under `bert/`), as Google's script creates them.

use super::{check_labels, copy, Head};
use crate::backend::{Backend, Cpu, Dropout, Queries, Rows, View};
use crate::model::{first_rows, BertModel, Dense};
use crate::weights::Weights;
use crate::{Error, Result};

/// `run_classifier.create_model`: dropout on the pooled output is hard-wired to 0.1.
pub const HEAD_DROPOUT: f32 = 0.1;

/// What a training forward pass keeps.
struct Acts<B: Backend> {
    /// `[batch, hidden]` the pooled output after dropout.
    pooled: B::Buf,
    logits: B::Buf,
    /// `[batch, num_labels]` gradient of the scaled loss.
    dlogits: B::Buf,
    drop: Option<Dropout>,
    batch: usize,
}

/// The sentence (pair) classifier head.
pub struct ClassifierHead<B: Backend = Cpu> {
    output: Dense<B>,
    acts: Acts<B>,
}

crate::model::param::params!(ClassifierHead { "" => output });

impl<B: Backend> std::fmt::Debug for ClassifierHead<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClassifierHead({} labels)", self.num_labels())
    }
}

impl<B: Backend> ClassifierHead<B> {
    /// `output_weights` `[num_labels, hidden]` and `output_bias` `[num_labels]` from `w`.
    pub fn load(
        b: &B,
        w: &Weights,
        hidden: usize,
        num_labels: usize,
        trainable: bool,
    ) -> Result<Self> {
        if num_labels == 0 {
            return Err(Error::InvalidArgument(
                "a classifier needs at least one label".into(),
            ));
        }
        if !w.contains("output_weights") || !w.contains("output_bias") {
            return Err(Error::NotAClassifier(
                "no classifier head (output_weights, output_bias): fine-tune the model first"
                    .into(),
            ));
        }
        Ok(ClassifierHead {
            output: Dense::load_output(b, w, "", (hidden, num_labels), trainable)?,
            acts: Acts {
                pooled: B::Buf::default(),
                logits: B::Buf::default(),
                dlogits: B::Buf::default(),
                drop: None,
                batch: 0,
            },
        })
    }

    pub fn num_labels(&self) -> usize {
        self.output.out_dim()
    }

    /// Logits `[batch, num_labels]` of pooled outputs `[batch, hidden]` (inference).
    pub fn logits(&self, ex: &mut B::Exec, pooled: &B::Buf, batch: usize, out: &mut B::Buf) {
        let view = View::rows(pooled, self.output.in_dim());
        self.output
            .forward(ex, view, batch, out, crate::backend::Activation::Identity);
    }
}

impl<B: Backend> Head<B> for ClassifierHead<B> {
    /// `[batch]` label ids.
    type Targets = [u32];
    /// Logits `[batch, num_labels]`.
    type Output = Vec<f32>;

    fn trims(&self) -> bool {
        true
    }

    fn queries(&self, rows: &Rows, labels: &[u32]) -> Result<Option<Queries>> {
        if labels.len() != rows.seqs.len() {
            return Err(Error::InvalidArgument(format!(
                "{} labels for a batch of {}",
                labels.len(),
                rows.seqs.len()
            )));
        }
        check_labels("label", labels, self.num_labels())?;
        Ok(Some(first_rows(rows)))
    }

    fn uses_pooler(&self) -> bool {
        true
    }

    fn dropout_rate(&self) -> f32 {
        HEAD_DROPOUT
    }

    fn forward(
        &mut self,
        ex: &mut B::Exec,
        _: &BertModel<B>,
        _: &B::Buf,
        pooled: Option<&B::Buf>,
        labels: &[u32],
        drop: Option<Dropout>,
        grad_scale: Option<f32>,
    ) -> Result<(f64, Vec<f32>)> {
        let pooled =
            pooled.ok_or_else(|| Error::NotAClassifier("the model has no pooler".into()))?;
        check_labels("label", labels, self.num_labels())?;
        let (batch, n, h) = (labels.len(), self.num_labels(), self.output.in_dim());
        let a = &mut self.acts;
        copy::<B>(ex, pooled, batch * h, &mut a.pooled);
        if let Some(d) = drop {
            B::dropout(ex, &mut a.pooled, batch * h, d);
        }
        self.output.forward(
            ex,
            View::rows(&a.pooled, h),
            batch,
            &mut a.logits,
            crate::backend::Activation::Identity,
        );
        let scales = grad_scale.map(|s| vec![s / batch as f32; batch]);
        let dlogits = scales.as_deref().map(|s| (&mut a.dlogits, s));
        let losses = B::softmax_cross_entropy(ex, &a.logits, n, labels, None, dlogits);
        (a.drop, a.batch) = (drop, batch);
        let loss = losses.iter().sum::<f64>() / batch as f64;
        Ok((loss, B::read(&*ex, &a.logits, batch * n).into_owned()))
    }

    fn backward(
        &mut self,
        ex: &mut B::Exec,
        _: &mut BertModel<B>,
        _: &B::Buf,
        _: &mut B::Buf,
        dpooled: &mut B::Buf,
    ) {
        let a = &self.acts;
        let (n, h) = (self.num_labels(), self.output.in_dim());
        let (x, dy) = (View::rows(&a.pooled, h), View::rows(&a.dlogits, n));
        self.output
            .backward(ex, x, dy, a.batch, Some((dpooled, false)));
        if let Some(d) = a.drop {
            B::dropout(ex, dpooled, a.batch * h, d);
        }
    }
}
