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

/// A C struct whose first field is `size_t size` and which only ever grows by appending
/// fields: the `*_params` the library reads and the result structs it writes.
///
/// A layout is known by its size alone, so each must be larger than the one before: a field
/// that would fit in the previous layout's trailing padding (a `u8` after a final `i32`)
/// must come with enough fields, or be wide enough, to grow the struct
/// (`every_layout_is_larger_than_the_last` checks each implementor).
///
/// # Safety
/// Implementors are `#[repr(C)]`, start with a `usize` size, hold only plain data for which
/// every bit pattern is valid (no `bool`, no references), and list in `LAYOUTS` the size of
/// every layout a caller may hold, each a prefix of the current one.
pub(crate) unsafe trait Versioned: Copy {
    /// The C name, for messages.
    const NAME: &'static str;
    /// `size` of each layout callers may hold: older headers' first, this header's last.
    const LAYOUTS: &'static [usize];
}

/// The accepted sizes of `T`, for messages: "24" or "16, 24".
fn layouts<T: Versioned>() -> String {
    let sizes: Vec<String> = T::LAYOUTS.iter().map(usize::to_string).collect();
    sizes.join(", ")
}

/// Reads a `*_params` struct; NULL means `default`. A struct of an older layout (a smaller
/// `size` in `T::LAYOUTS`) is accepted: its bytes are a prefix of `T`, and the fields
/// appended since keep their defaults.
pub(crate) unsafe fn params<T: Versioned>(p: *const T, default: T) -> FfiResult<T> {
    if p.is_null() {
        return Ok(default);
    }
    let size = p.cast::<usize>().read();
    if !T::LAYOUTS.contains(&size) {
        return Err(Failure::invalid(format!(
            "{}.size is {size}; this library reads sizes {}: initialize the struct with the \
             matching *_default_params()",
            T::NAME,
            layouts::<T>()
        )));
    }
    let mut out = default;
    // SAFETY: the caller's struct holds `size` bytes (its `size` field says so), `size` is a
    // layout of `T` and at most `size_of::<T>()` (trait contract), and every bit pattern of
    // `T`'s fields is valid.
    std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), size);
    Ok(out)
}

/// A result struct the caller passed in (`bert_encoding_view`, ...): the caller set its
/// `size`, and the library writes only that many bytes, so a program built against an older
/// header keeps working when fields are appended.
pub(crate) struct Output<T: Versioned> {
    p: *mut T,
    size: usize,
}

/// Checks a result struct and zeroes it (all but `size`): what a failed call leaves there.
/// With a NULL pointer or an unknown `size` nothing is written.
pub(crate) unsafe fn output<T: Versioned>(p: *mut T, what: &str) -> FfiResult<Output<T>> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    let size = p.cast::<usize>().read();
    if !T::LAYOUTS.contains(&size) {
        return Err(Failure::invalid(format!(
            "{what}->size is {size}; this library writes sizes {}: set it to \
             sizeof({}) before the call",
            layouts::<T>(),
            T::NAME
        )));
    }
    let head = std::mem::size_of::<usize>();
    // SAFETY: the caller's struct holds `size` bytes, `size >= head` (every layout starts
    // with the size field).
    std::ptr::write_bytes(p.cast::<u8>().add(head), 0, size - head);
    Ok(Output { p, size })
}

impl<T: Versioned> Output<T> {
    /// Writes `value`, all but its `size`, into the caller's `size` bytes.
    pub(crate) fn write(&self, value: &T) {
        let head = std::mem::size_of::<usize>();
        // SAFETY: `output` checked the pointer and that the caller's struct holds `size`
        // bytes, a prefix of `T`'s layout.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (value as *const T).cast::<u8>().add(head),
                self.p.cast::<u8>().add(head),
                self.size - head,
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{BERT_ERROR_INVALID_ARGUMENT, BERT_ERROR_NULL_ARGUMENT};

    /// A struct at its second layout: `b` was appended to `Old`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct New {
        size: usize,
        a: u32,
        b: u64,
    }

    #[repr(C)]
    struct Old {
        size: usize,
        a: u32,
    }

    // SAFETY: repr(C), starts with its size, plain data; Old is a prefix of New.
    unsafe impl Versioned for New {
        const NAME: &'static str = "test_struct";
        const LAYOUTS: &'static [usize] = &[std::mem::size_of::<Old>(), std::mem::size_of::<New>()];
    }

    const DEFAULT: New = New {
        size: std::mem::size_of::<New>(),
        a: 1,
        b: 2,
    };

    #[test]
    fn params_of_an_older_layout_keep_the_appended_fields_defaults() {
        let old = Old {
            size: std::mem::size_of::<Old>(),
            a: 7,
        };
        // SAFETY: a valid struct of the old layout, read as the new one by its size.
        let p = unsafe { params((&old as *const Old).cast::<New>(), DEFAULT) }.unwrap();
        assert_eq!((p.a, p.b), (7, 2));
        let new = New {
            a: 8,
            b: 9,
            ..DEFAULT
        };
        // SAFETY: a valid struct of the current layout.
        assert_eq!(unsafe { params(&new, DEFAULT) }.unwrap(), new);
        // SAFETY: NULL means the defaults.
        assert_eq!(
            unsafe { params(std::ptr::null(), DEFAULT) }.unwrap(),
            DEFAULT
        );
    }

    #[test]
    fn params_of_an_unknown_size_are_refused_with_the_sizes_read() {
        for size in [0, 8, 12, std::mem::size_of::<New>() + 8] {
            let bad = New { size, ..DEFAULT };
            // SAFETY: a valid struct (its size lies, which is what is checked).
            let e = unsafe { params(&bad, DEFAULT) }.unwrap_err();
            assert_eq!(e.status, BERT_ERROR_INVALID_ARGUMENT);
            assert!(
                e.message.contains(&format!("test_struct.size is {size}"))
                    && e.message.contains("sizes 16, 24"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn an_output_is_zeroed_then_written_only_up_to_the_callers_size() {
        // An old caller's struct followed by bytes that are not its own.
        #[repr(C)]
        struct Guarded {
            old: Old,
            beyond: [u8; 16],
        }
        let mut g = Guarded {
            old: Old {
                size: std::mem::size_of::<Old>(),
                a: 5,
            },
            beyond: [0xAB; 16],
        };
        let p = (&mut g.old as *mut Old).cast::<New>();
        // SAFETY: `p` points to a struct of the old layout with its size set.
        let out = unsafe { output(p, "out") }.unwrap();
        assert_eq!(g.old.a, 0, "zeroed on entry: what a failed call leaves");
        out.write(&New {
            size: 99,
            a: 3,
            b: 4,
        });
        assert_eq!((g.old.size, g.old.a), (std::mem::size_of::<Old>(), 3));
        assert!(
            g.beyond.iter().all(|&b| b == 0xAB),
            "wrote past the caller's size"
        );

        let mut wrong = New {
            size: 3,
            a: 6,
            b: 6,
        };
        // SAFETY: a valid struct whose size is unknown: nothing may be written.
        let e = unsafe { output(&mut wrong, "out") }.err().unwrap();
        assert_eq!(e.status, BERT_ERROR_INVALID_ARGUMENT);
        assert!(e.message.contains("out->size is 3"), "{}", e.message);
        assert_eq!((wrong.a, wrong.b), (6, 6));
        // SAFETY: NULL is checked.
        let e = unsafe { output::<New>(std::ptr::null_mut(), "out") }
            .err()
            .unwrap();
        assert_eq!(e.status, BERT_ERROR_NULL_ARGUMENT);
    }

    fn layouts_grow<T: Versioned>() {
        let l = T::LAYOUTS;
        assert!(l[0] > std::mem::size_of::<usize>(), "{}", T::NAME);
        assert!(l.windows(2).all(|w| w[0] < w[1]), "{}: {l:?}", T::NAME);
        assert_eq!(l.last(), Some(&std::mem::size_of::<T>()), "{}", T::NAME);
    }

    #[test]
    fn every_layout_is_larger_than_the_last() {
        layouts_grow::<New>();
        layouts_grow::<crate::bert_model_params>();
        layouts_grow::<crate::bert_context_params>();
        layouts_grow::<crate::bert_encode_params>();
        layouts_grow::<crate::bert_qa_params>();
        layouts_grow::<crate::bert_pretraining_data_params>();
        layouts_grow::<crate::bert_pretraining_data_summary>();
        layouts_grow::<crate::bert_pretrainer_params>();
        layouts_grow::<crate::bert_pretrain_eval_result>();
        layouts_grow::<crate::bert_trainer_params>();
        layouts_grow::<crate::bert_tsv_params>();
        layouts_grow::<crate::bert_encoding_view>();
        layouts_grow::<crate::bert_hidden_states_view>();
        layouts_grow::<crate::bert_eval_result>();
    }

    #[test]
    fn flags_are_0_or_1() {
        assert!(!flag(0, "f").unwrap() && flag(1, "f").unwrap());
        for v in [2, 0x80, 0xff] {
            let e = flag(v, "normalize").unwrap_err();
            assert_eq!(e.message, format!("normalize is {v}: use 0 or 1"));
        }
    }
}
