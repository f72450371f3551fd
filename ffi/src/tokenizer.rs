//! `bert_tokenizer`: Google's FullTokenizer over a vocabulary.

use std::ffi::c_char;

use bert::tokenizer::Tokenizer;

use crate::args;
use crate::handles::Owner;
use crate::status::{bert_status, guard, Failure, BERT_ERROR_BUFFER_TOO_SMALL};

/// A WordPiece tokenizer (Google's `FullTokenizer`). Immutable and thread-safe: any number of
/// threads may call `bert_tokenize` on one tokenizer at the same time.
pub struct bert_tokenizer {
    pub(crate) tokenizer: Tokenizer,
    /// The caller (`bert_tokenizer_new_from_file`) or the model it is borrowed from.
    pub(crate) owner: Owner,
}

/// Creates a tokenizer from a `vocab.txt` (one token per line; NUL-terminated UTF-8 path).
/// `do_lower_case`: 1 to lower-case and strip accents (uncased models), 0 not to (another
/// value is `BERT_ERROR_INVALID_ARGUMENT`). On failure `*out_tokenizer` is NULL
/// (`BERT_ERROR_IO`, `BERT_ERROR_VOCAB`, `BERT_ERROR_INVALID_UTF8`).
#[no_mangle]
pub unsafe extern "C" fn bert_tokenizer_new_from_file(
    vocab_path: *const c_char,
    do_lower_case: u8,
    out_tokenizer: *mut *mut bert_tokenizer,
) -> bert_status {
    guard(|| {
        let out = args::out(out_tokenizer, "out_tokenizer")?;
        *out = std::ptr::null_mut();
        let path = args::c_str(vocab_path, "vocab_path")?;
        let lower = args::flag(do_lower_case, "do_lower_case")?;
        let tokenizer = Tokenizer::from_vocab_file(path, lower)?;
        *out = Box::into_raw(Box::new(bert_tokenizer {
            tokenizer,
            owner: Owner::Caller,
        }));
        Ok(())
    })
}

/// Frees a tokenizer made by `bert_tokenizer_new_from_file`. NULL is a no-op. The tokenizer
/// borrowed from a model (`bert_model_tokenizer`) is freed with the model: passing it here
/// frees nothing and sets `bert_last_error()`.
#[no_mangle]
pub unsafe extern "C" fn bert_tokenizer_free(tokenizer: *mut bert_tokenizer) {
    let Some(t) = tokenizer.as_ref() else {
        return;
    };
    if !t.owner.may_free("bert_tokenizer_free") {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(Box::from_raw(tokenizer));
    }));
}

/// Splits `len` bytes of UTF-8 `text` into WordPiece tokens (no `[CLS]`/`[SEP]`, no
/// truncation). Writes up to `capacity` ids to `ids` and, unless `offsets` is NULL, the byte
/// span of each token in `text` as `offsets[2*i]` (start) and `offsets[2*i+1]` (end,
/// exclusive) — `offsets` holds `2 * capacity` values. `*n_tokens` receives the number of
/// tokens. If it exceeds `capacity` nothing is written and `BERT_ERROR_BUFFER_TOO_SMALL` is
/// returned: call again with a buffer of `*n_tokens` (`ids` NULL with `capacity` 0 is a pure
/// size query). Invalid UTF-8: `BERT_ERROR_INVALID_UTF8`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn bert_tokenize(
    tokenizer: *const bert_tokenizer,
    text: *const c_char,
    len: usize,
    ids: *mut u32,
    offsets: *mut u64,
    capacity: usize,
    n_tokens: *mut usize,
) -> bert_status {
    guard(|| {
        let n_out = args::out(n_tokens, "n_tokens")?;
        *n_out = 0;
        let t = args::handle(tokenizer, "tokenizer")?;
        let text = args::text(text, len, "text")?;
        if capacity > 0 && ids.is_null() {
            return Err(Failure::null("ids (with capacity > 0)"));
        }
        let tokens = t.tokenizer.tokenize(text);
        *n_out = tokens.len();
        if tokens.len() > capacity {
            return Err(Failure::new(
                BERT_ERROR_BUFFER_TOO_SMALL,
                format!(
                    "{} tokens do not fit a buffer of {capacity}: call again with *n_tokens",
                    tokens.len()
                ),
            ));
        }
        if tokens.is_empty() {
            return Ok(());
        }
        let ids = std::slice::from_raw_parts_mut(ids, tokens.len());
        for (slot, t) in ids.iter_mut().zip(&tokens) {
            *slot = t.id;
        }
        if !offsets.is_null() {
            let offsets = std::slice::from_raw_parts_mut(offsets, 2 * tokens.len());
            for (pair, t) in offsets.chunks_exact_mut(2).zip(&tokens) {
                pair[0] = t.start as u64;
                pair[1] = t.end as u64;
            }
        }
        Ok(())
    })
}
