//! What a handle knows about itself beyond its contents: who frees it (a caller, or the
//! object it was borrowed from) and which process made it (worker threads do not survive
//! `fork`).

use crate::log::{log, BERT_LOG_ERROR};
use crate::status::{Failure, FfiResult};

/// Who frees a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The caller, with the handle's `*_free`.
    Caller,
    /// The `bert_model` it lives in (`bert_model_tokenizer`).
    Model,
    /// The `bert_classifier` it lives in (`bert_classifier_model`).
    Classifier,
    /// The `bert_qa` it lives in (`bert_qa_model`).
    Qa,
}

impl Owner {
    /// Whether `*_free` may free the handle. When it may not, the misuse is reported (the
    /// calling thread's last error and the log) and the caller leaves the handle alone:
    /// freeing memory inside another object would be undefined behaviour.
    pub(crate) fn may_free(self, function: &str) -> bool {
        let (owner, getter) = match self {
            Owner::Caller => return true,
            Owner::Model => ("bert_model", "bert_model_tokenizer"),
            Owner::Classifier => ("bert_classifier", "bert_classifier_model"),
            Owner::Qa => ("bert_qa", "bert_qa_model"),
        };
        misuse(format!(
            "{function}: the handle is borrowed from its {owner} ({getter}) and is freed with \
             it; nothing was freed"
        ));
        false
    }
}

/// The process that made a handle whose worker threads were started with it (a context, a
/// trainer). `fork` copies only the calling thread, so in a child those workers do not exist:
/// a call waiting for them would hang, and freeing the handle would wait forever to join them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MadeIn(u32);

impl MadeIn {
    pub(crate) fn here() -> MadeIn {
        MadeIn(std::process::id())
    }

    /// Whether this is the process that made the handle.
    pub(crate) fn is_here(self) -> bool {
        self.0 == std::process::id()
    }

    /// An error for a handle made in another process (a parent before `fork`).
    pub(crate) fn check(self, what: &str) -> FfiResult<()> {
        if self.is_here() {
            return Ok(());
        }
        Err(Failure::invalid(format!(
            "{what} was made by process {} before fork(): its worker threads do not exist in \
             this process (make a new one here)",
            self.0
        )))
    }

    /// For `*_free`: whether the handle may be dropped here. A handle of another process is
    /// left alone (its memory is the child's copy, reclaimed when the child exits) and the
    /// misuse is reported.
    pub(crate) fn may_free(self, function: &str) -> bool {
        if self.is_here() {
            return true;
        }
        misuse(format!(
            "{function}: the handle was made by process {} before fork(); its worker threads \
             do not exist here, so it was not freed (the memory goes with this process)",
            self.0
        ));
        false
    }
}

/// Reports a misuse found by a function that returns no status (a `*_free`): the message
/// becomes the calling thread's last error and goes to the log.
fn misuse(message: String) {
    log(BERT_LOG_ERROR, || message.clone());
    crate::status::set_last_error(&message);
}
