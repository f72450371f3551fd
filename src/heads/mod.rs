//! Task heads on top of the encoder, each with its forward pass, loss and backward pass:
//!
//! - [`classifier`]: sentence (pair) classification (`run_classifier.py: create_model`);
//! - [`squad`]: SQuAD span start/end logits (`run_squad.py: create_model`);
//! - [`pretraining`]: masked LM and next sentence (`run_pretraining.py`).
//!
//! A head says which rows of the last encoder layer it reads ([`Head::queries`]): the
//! encoder's last layer then computes only those (the classifier reads position 0, the masked
//! LM its masked positions), and whether it reads the pooled output. The trainer
//! (`crate::train::Trainer`) runs any head through this trait.

pub mod classifier;
pub mod pretraining;
pub mod squad;

use crate::backend::{Backend, Dropout, Queries, Rows};
use crate::model::{BertModel, Visit};
use crate::Result;

pub use classifier::ClassifierHead;
pub use pretraining::PreTrainingHeads;
pub use squad::SquadHead;

/// A task head, as the trainer drives it.
pub trait Head<B: Backend>: Visit<B> {
    /// What the head learns from besides the encoder's inputs (labels, answer positions,
    /// masked ids), for one batch.
    type Targets: ?Sized;
    /// What a forward pass reports besides the loss (its logits, on the host).
    type Output;

    /// Whether the encoder may drop each sequence's positions after its last real token
    /// (the head reads none of them, and nothing it reads depends on them).
    fn trims(&self) -> bool;

    /// The last layer's rows the head reads (`None`: every row). A head that reads the
    /// pooled output lists each sequence's position 0 first.
    fn queries(&self, rows: &Rows, targets: &Self::Targets) -> Result<Option<Queries>>;

    /// Whether the head reads the pooled output (the pooler then trains with it; otherwise
    /// it gets no gradient and is left alone, as TensorFlow leaves a variable without one).
    fn uses_pooler(&self) -> bool;

    /// The head's own dropout rate (the trainer draws its mask after the encoder's).
    fn dropout_rate(&self) -> f32 {
        0.0
    }

    /// Forward pass from the last layer's query rows `last: [queries, hidden]` and the pooled
    /// output `[batch, hidden]`: the loss and the output. With `grad_scale` (training) it
    /// keeps what [`Head::backward`] needs for the gradient of `grad_scale · loss`.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        ex: &mut B::Exec,
        model: &BertModel<B>,
        last: &B::Buf,
        pooled: Option<&B::Buf>,
        targets: &Self::Targets,
        drop: Option<Dropout>,
        grad_scale: Option<f32>,
    ) -> Result<(f64, Self::Output)>;

    /// Backward pass of the last training forward pass (same `last`): adds the head's
    /// parameter gradients (and, for a head tied to the word embeddings, theirs) and the
    /// gradients of its inputs: into `dlast: [queries, hidden]` (zero-filled by the caller)
    /// and written to `dpooled: [batch, hidden]` (untouched when the head does not read it).
    fn backward(
        &mut self,
        ex: &mut B::Exec,
        model: &mut BertModel<B>,
        last: &B::Buf,
        dlast: &mut B::Buf,
        dpooled: &mut B::Buf,
    );
}

/// Copies `x[..n]` (the ops' identity activation).
pub(crate) fn copy<B: Backend>(ex: &mut B::Exec, x: &B::Buf, n: usize, out: &mut B::Buf) {
    B::activate(ex, x, n, crate::backend::Activation::Identity, out);
}

/// Checks that every label is below `limit`, naming the first that is not.
pub(crate) fn check_labels(what: &str, labels: &[u32], limit: usize) -> Result<()> {
    match labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= limit)
    {
        Some((i, l)) => Err(crate::Error::InvalidArgument(format!(
            "{what}[{i}] = {l} is not below {limit}"
        ))),
        None => Ok(()),
    }
}
