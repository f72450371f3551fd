//! `bert_log_set`: where the library's log lines go (nowhere by default).
//!
//! The one piece of process-wide state of the C ABI, as in llama.h: a log sink is a property
//! of the application, not of a model or context. The Rust crate itself does not log; this
//! layer reports what it decided (model loaded, back end and kernels chosen, training
//! started) and every failed call's message.

use std::ffi::{c_char, c_void, CString};
use std::sync::Mutex;

/// Severity of a log line. Values never renumbered.
pub type bert_log_level = i32;
/// Details useful when debugging libbert itself.
pub const BERT_LOG_DEBUG: bert_log_level = 0;
/// What the library decided: model loaded, back end chosen, training started.
pub const BERT_LOG_INFO: bert_log_level = 1;
/// Something the caller may want to change.
pub const BERT_LOG_WARN: bert_log_level = 2;
/// A call failed (the same message `bert_last_error()` returns).
pub const BERT_LOG_ERROR: bert_log_level = 3;

/// Receives one log line: `message` is NUL-terminated UTF-8 without a trailing newline,
/// valid only during the call. Called on the thread of the libbert call that logs, possibly
/// from several threads at once; it must not call back into libbert.
pub type bert_log_callback = Option<
    unsafe extern "C" fn(level: bert_log_level, message: *const c_char, user_data: *mut c_void),
>;

struct Sink {
    callback: bert_log_callback,
    user_data: usize,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    callback: None,
    user_data: 0,
});

/// Sends the library's log lines to `callback` with `user_data` (NULL: silence, the
/// default). Process-wide; may be called at any time from any thread. `user_data` must stay
/// valid until the callback is replaced.
#[no_mangle]
pub unsafe extern "C" fn bert_log_set(callback: bert_log_callback, user_data: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let mut s = SINK.lock().unwrap_or_else(|p| p.into_inner());
        s.callback = callback;
        s.user_data = user_data as usize;
    });
}

/// Logs `message()` at `level` if a sink is set (the message is only built then).
pub(crate) fn log(level: bert_log_level, message: impl FnOnce() -> String) {
    let (callback, user) = {
        let s = SINK.lock().unwrap_or_else(|p| p.into_inner());
        (s.callback, s.user_data)
    };
    if let Some(cb) = callback {
        let text = CString::new(message().replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: the application registered this callback for exactly this call shape; the
        // message outlives the call.
        unsafe { cb(level, text.as_ptr(), user as *mut c_void) };
    }
}
