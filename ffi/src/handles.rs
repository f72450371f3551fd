//! What a handle knows about itself beyond its contents: who frees it (a caller, or the
//! object it was borrowed from).

use crate::log::{log, BERT_LOG_ERROR};

/// Who frees a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The caller, with the handle's `*_free`.
    Caller,
    /// The `bert_model` it lives in (`bert_model_tokenizer`).
    Model,
    /// The `bert_classifier` it lives in (`bert_classifier_model`).
    Classifier,
}

impl Owner {
    /// Whether `*_free` may free the handle. When it may not, the misuse is reported (the
    /// calling thread's last error and the log) and the caller leaves the handle alone:
    /// freeing memory inside another object would be undefined behaviour.
    pub(crate) fn may_free(self, function: &str, getter: &str) -> bool {
        if self == Owner::Caller {
            return true;
        }
        let owner = match self {
            Owner::Model => "bert_model",
            _ => "bert_classifier",
        };
        misuse(format!(
            "{function}: the handle is borrowed from its {owner} ({getter}) and is freed with \
             it; nothing was freed"
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
