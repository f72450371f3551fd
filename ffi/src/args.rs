//! Checks of the pointers and values callers pass in.

use std::ffi::{c_char, CStr};

use crate::status::BERT_ERROR_NULL_ARGUMENT;

use crate::status::{Failure, FfiResult, BERT_ERROR_INVALID_UTF8};

/// A handle that must not be NULL.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    p.as_ref().ok_or_else(|| Failure::null(what))
}

/// A mutable handle that must not be NULL.
pub(crate) unsafe fn handle_mut<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    p.as_mut().ok_or_else(|| Failure::null(what))
}

/// A NUL-terminated UTF-8 string (paths).
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        Failure::new(
            BERT_ERROR_INVALID_UTF8,
            format!("{what} is not UTF-8 ({e})"),
        )
    })
}

/// `(ptr, len)` bytes; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::null(&format!("{what} (with length {len})")));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// `(ptr, len)` UTF-8 text; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn text<'a>(p: *const c_char, len: usize, what: &str) -> FfiResult<&'a str> {
    let b = bytes(p.cast(), len, what)?;
    std::str::from_utf8(b).map_err(|e| {
        Failure::new(
            BERT_ERROR_INVALID_UTF8,
            format!("{what} is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// An optional `(ptr, len)` text: NULL with `len == 0` is none; NULL with another length is
/// an error, as for every text.
pub(crate) unsafe fn optional_text<'a>(
    p: *const c_char,
    len: usize,
    what: &str,
) -> FfiResult<Option<&'a str>> {
    if p.is_null() && len == 0 {
        return Ok(None);
    }
    text(p, len, what).map(Some)
}

/// A C boolean read as the byte it is: 0 or 1, anything else is an error (a Rust `bool`
/// holding another value would be undefined behaviour, and bindings write bytes).
pub(crate) fn flag(value: u8, what: &str) -> FfiResult<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Failure::invalid(format!("{what} is {v}: use 0 or 1"))),
    }
}

/// A thread count: 0 (all cores) up to `BERT_MAX_THREADS`. Each thread but the caller's is
/// started and kept, so a bad value must not reach the pool.
pub(crate) fn threads(n: u32, what: &str) -> FfiResult<usize> {
    let max = crate::context::BERT_MAX_THREADS;
    if n > max {
        return Err(Failure::invalid(format!(
            "{what} is {n}: use 0 (all cores) to {max} (BERT_MAX_THREADS)"
        )));
    }
    Ok(n as usize)
}

/// Reads a `*_params` struct whose first field is its `size`; NULL means the defaults.
pub(crate) unsafe fn params<T: Copy>(p: *const T, default: T, what: &str) -> FfiResult<T> {
    if p.is_null() {
        return Ok(default);
    }
    let size = *p.cast::<usize>();
    if size != std::mem::size_of::<T>() {
        return Err(Failure::invalid(format!(
            "{what}.size is {size}, this library's {what} has {} bytes: initialize it with \
             the matching *_default_params()",
            std::mem::size_of::<T>()
        )));
    }
    Ok(*p)
}

/// [`params`] that also accepts the `size` of an older layout of `T` (`older`): fields were
/// only ever appended, so the caller's bytes are a prefix of `T` and the appended fields keep
/// their defaults.
pub(crate) unsafe fn params_versioned<T: Copy>(
    p: *const T,
    default: T,
    what: &str,
    older: &[usize],
) -> FfiResult<T> {
    if p.is_null() {
        return Ok(default);
    }
    let size = *p.cast::<usize>();
    if size < std::mem::size_of::<T>() && older.contains(&size) {
        let mut out = default;
        // SAFETY: the caller's struct is an older layout of `T` with `size` bytes (its `size`
        // field says so), `size` is smaller than `T`, and both are plain C data.
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), size);
        return Ok(out);
    }
    params(p, default, what)
}

/// Writes through an out-parameter that must not be NULL.
pub(crate) unsafe fn out<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    p.as_mut().ok_or_else(|| Failure::null(what))
}

/// `n` texts: text `i` is `lens[i]` bytes at `texts[i]`, or NUL-terminated when `lens` is
/// NULL. `texts` may be NULL only when `n` is 0.
pub(crate) unsafe fn text_array<'a>(
    texts: *const *const c_char,
    lens: *const usize,
    n: usize,
    what: &str,
) -> FfiResult<Vec<&'a str>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if texts.is_null() {
        return Err(Failure::null(what));
    }
    let ptrs = std::slice::from_raw_parts(texts, n);
    let lens = (!lens.is_null()).then(|| std::slice::from_raw_parts(lens, n));
    let mut out = Vec::with_capacity(n);
    for (i, &p) in ptrs.iter().enumerate() {
        let name = format!("{what}[{i}]");
        out.push(match lens {
            Some(l) => text(p, l[i], &name)?,
            None => {
                if p.is_null() {
                    return Err(Failure::new(
                        BERT_ERROR_NULL_ARGUMENT,
                        format!("{name} is NULL"),
                    ));
                }
                text(p, CStr::from_ptr(p).to_bytes().len(), &name)?
            }
        });
    }
    Ok(out)
}
