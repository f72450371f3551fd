//! Status codes, the thread-local last error, and the guard every entry point runs under.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every fallible function: `BERT_OK` (0) or one of the `BERT_ERROR_*` codes.
/// Values are never renumbered; new ones are appended. Codes 1 to 8, 11 and 13 to 16 are the
/// Rust crate's `bert::Error::code()`; 9, 10 and 12 exist only at the C boundary.
pub type bert_status = i32;

/// Success.
pub const BERT_OK: bert_status = 0;
/// A file could not be opened or read (the message names it).
pub const BERT_ERROR_IO: bert_status = 1;
/// A text, path or text file is not valid UTF-8 (Google's tokenizer drops such bytes; we refuse).
pub const BERT_ERROR_INVALID_UTF8: bert_status = 2;
/// A vocabulary is missing, empty, has duplicates or lacks a required token.
pub const BERT_ERROR_VOCAB: bert_status = 3;
/// A model configuration is missing a field or is inconsistent.
pub const BERT_ERROR_CONFIG: bert_status = 4;
/// A file or buffer is not a model, or is truncated, corrupt or lies in its header.
pub const BERT_ERROR_FORMAT: bert_status = 5;
/// A tensor is missing or has the wrong shape for the configuration.
pub const BERT_ERROR_SHAPE: bert_status = 6;
/// An argument cannot be honoured (bad enum value, params size, sequence too long, ...).
pub const BERT_ERROR_INVALID_ARGUMENT: bert_status = 7;
/// The feature exists in the API but is not available in this build or on this machine.
pub const BERT_ERROR_UNSUPPORTED: bert_status = 8;
/// A required pointer (handle, out-parameter, or buffer with a non-zero length) is NULL.
pub const BERT_ERROR_NULL_ARGUMENT: bert_status = 9;
/// A caller buffer is too small; the size it needs was written to the size out-parameter.
pub const BERT_ERROR_BUFFER_TOO_SMALL: bert_status = 10;
/// The caller asked to stop: the context's abort callback (checked before each encoder
/// layer; the call's outputs are not written) or `bert_trainer_train`'s progress callback
/// (after a complete update, which is kept: training can go on with another call).
pub const BERT_ERROR_CANCELLED: bert_status = 11;
/// A bug in libbert (an internal panic was caught at the boundary). Please report it.
pub const BERT_ERROR_INTERNAL: bert_status = 12;
/// A label id is not below the number of labels, a label name is not in the label list, or
/// no label list was given.
pub const BERT_ERROR_LABEL: bert_status = 13;
/// Training diverged: the loss or the gradient norm is not finite (learning rate too high?).
/// The trainer is unusable afterwards (only `bert_trainer_free`).
pub const BERT_ERROR_DIVERGED: bert_status = 14;
/// The model is not fine-tuned for the task: a classifier without a label list or a
/// classification head, or a question answerer without the span head (`cls/squad/*`);
/// `bert_last_error()` names what is missing. (The name stays for compatibility.)
pub const BERT_ERROR_NOT_A_CLASSIFIER: bert_status = 15;
/// There is nothing to work on: no training examples to train on, or no evaluation examples
/// to evaluate.
pub const BERT_ERROR_EMPTY_DATA: bert_status = 16;

/// Static English text for a status (for unknown values: "unknown status"). Never NULL.
#[no_mangle]
pub extern "C" fn bert_status_string(status: bert_status) -> *const c_char {
    let s: &'static CStr = match status {
        BERT_OK => c"ok",
        BERT_ERROR_IO => c"I/O error",
        BERT_ERROR_INVALID_UTF8 => c"invalid UTF-8",
        BERT_ERROR_VOCAB => c"bad vocabulary",
        BERT_ERROR_CONFIG => c"bad model configuration",
        BERT_ERROR_FORMAT => c"not a model, or a malformed one",
        BERT_ERROR_SHAPE => c"tensor shape mismatch",
        BERT_ERROR_INVALID_ARGUMENT => c"invalid argument",
        BERT_ERROR_UNSUPPORTED => c"unsupported",
        BERT_ERROR_NULL_ARGUMENT => c"NULL argument",
        BERT_ERROR_BUFFER_TOO_SMALL => c"buffer too small",
        BERT_ERROR_CANCELLED => c"cancelled",
        BERT_ERROR_INTERNAL => c"internal error",
        BERT_ERROR_LABEL => c"bad label",
        BERT_ERROR_DIVERGED => c"training diverged",
        BERT_ERROR_NOT_A_CLASSIFIER => {
            c"not fine-tuned for the task (no classifier head and labels, or no SQuAD span head)"
        }
        BERT_ERROR_EMPTY_DATA => c"no data",
        _ => c"unknown status",
    };
    s.as_ptr()
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The calling thread's message for the last failed call ("" after a successful one). Owned by
/// the library, valid until this thread's next call into libbert. Never NULL.
#[no_mangle]
pub extern "C" fn bert_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: bert_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: bert_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
    pub fn null(what: &str) -> Failure {
        Failure::new(BERT_ERROR_NULL_ARGUMENT, format!("{what} is NULL"))
    }
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(BERT_ERROR_INVALID_ARGUMENT, message)
    }
}

impl From<bert::Error> for Failure {
    fn from(e: bert::Error) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

pub(crate) type FfiResult<T> = Result<T, Failure>;

/// Runs an entry point's body: clears the thread's last error, catches panics, and turns the
/// outcome into a status (setting the message on failure).
pub(crate) fn guard(body: impl FnOnce() -> FfiResult<()>) -> bert_status {
    set_last_error("");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        tests::fault_point();
        body()
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let message = match what.as_str() {
            "" => "internal error (caught panic)".to_string(),
            _ => format!("internal error (caught panic): {what}"),
        };
        Err(Failure::new(BERT_ERROR_INTERNAL, message))
    });
    match outcome {
        Ok(()) => BERT_OK,
        Err(f) => {
            crate::log::log(crate::log::BERT_LOG_ERROR, || f.message.clone());
            set_last_error(&f.message);
            f.status
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! `BERT_ERROR_INTERNAL` cannot be provoked through a correct libbert (it means a bug), so
    //! these tests inject a panic into real entry points, inside the guard, where a bug would
    //! panic.
    use super::*;
    use std::cell::Cell;
    use std::ffi::CStr;

    thread_local! {
        static PANIC_NEXT: Cell<bool> = const { Cell::new(false) };
    }

    /// Panics once when armed by [`panic_in_next_call`]; run first inside every guard.
    pub(crate) fn fault_point() {
        if PANIC_NEXT.with(|p| p.replace(false)) {
            panic!("injected fault");
        }
    }

    fn panic_in_next_call() {
        PANIC_NEXT.with(|p| p.set(true));
    }

    fn last_error() -> String {
        // SAFETY: bert_last_error never returns NULL and the text lives until the next call.
        unsafe { CStr::from_ptr(bert_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_inside_an_entry_point_is_internal_error_not_an_unwind() {
        let vocab = c"/nonexistent/vocab.txt";
        let mut tok = std::ptr::null_mut();
        panic_in_next_call();
        // SAFETY: valid NUL-terminated path and out-pointer.
        let s =
            unsafe { crate::tokenizer::bert_tokenizer_new_from_file(vocab.as_ptr(), 1, &mut tok) };
        assert_eq!(s, BERT_ERROR_INTERNAL);
        assert!(tok.is_null());
        assert_eq!(
            last_error(),
            "internal error (caught panic): injected fault"
        );
        // SAFETY: static string.
        let text = unsafe { CStr::from_ptr(bert_status_string(s)) };
        assert_eq!(text.to_str().unwrap(), "internal error");

        // The next call is unaffected: it fails for its own reason and replaces the message.
        // SAFETY: as above.
        let s =
            unsafe { crate::tokenizer::bert_tokenizer_new_from_file(vocab.as_ptr(), 1, &mut tok) };
        assert_eq!(s, BERT_ERROR_IO);
        assert!(
            last_error().contains("/nonexistent/vocab.txt"),
            "{}",
            last_error()
        );
    }

    #[test]
    fn panics_with_any_payload_become_internal_error() {
        assert_eq!(
            guard(|| panic!("{}", String::from("owned"))),
            BERT_ERROR_INTERNAL
        );
        assert!(last_error().ends_with("owned"));
        assert_eq!(guard(|| std::panic::panic_any(7u32)), BERT_ERROR_INTERNAL);
        assert_eq!(last_error(), "internal error (caught panic)");
        assert_eq!(guard(|| Ok(())), BERT_OK);
        assert_eq!(last_error(), "");
    }
}
