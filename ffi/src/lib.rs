//! The C ABI of libbert. Every `extern "C"` function of the project lives in this crate;
//! `include/bert.h` is generated from it by cbindgen.
//!
//! Conventions (see `include/bert.h`): `bert_` prefix, opaque handles, `bert_status` return
//! codes that are never renumbered, no panic ever crosses the boundary.

/// Version of the library as `major * 10000 + minor * 100 + patch`.
///
/// Callers compare it with `BERT_VERSION_NUMBER` from the header they compiled against.
#[no_mangle]
pub extern "C" fn bert_version_number() -> u32 {
    bert::VERSION_NUMBER
}
