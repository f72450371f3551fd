//! The C ABI of libbert. Every `extern "C"` function of the project lives in this crate;
//! `include/bert.h` is generated from it by cbindgen (`ffi/build.rs`, `ffi/cbindgen.toml`).
//!
//! Conventions (see `include/bert.h`): `bert_` prefix, opaque handles, `bert_status` return
//! codes that are never renumbered, no panic ever crosses the boundary: every entry point
//! checks its pointers and runs its body under `status::guard` (`catch_unwind`).
#![allow(non_camel_case_types)]
// Pointer rules are documented once per function in the header (and at its top), not in a
// `# Safety` section of each Rust doc comment.
#![allow(clippy::missing_safety_doc)]

mod args;
mod classifier;
mod context;
#[cfg(feature = "jni")]
mod jni;
mod log;
mod model;
mod status;
mod tokenizer;
mod trainer;

pub use classifier::*;
pub use context::*;
pub use log::*;
pub use model::*;
pub use status::*;
pub use tokenizer::*;
pub use trainer::*;

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// Version of the library as `major * 10000 + minor * 100 + patch`.
///
/// Callers compare it with `BERT_VERSION_NUMBER` from the header they compiled against.
#[no_mangle]
pub extern "C" fn bert_version_number() -> u32 {
    bert::VERSION_NUMBER
}

/// Compute back ends. Values are never renumbered.
pub type bert_backend = i32;
/// The f32 CPU reference back end (always available).
pub const BERT_BACKEND_CPU: bert_backend = 0;
/// Reserved. int8 inference runs on `BERT_BACKEND_CPU`: set `bert_model_params.dtype` to
/// `BERT_DTYPE_INT8` (or load an int8 `.bert` file).
pub const BERT_BACKEND_CPU_INT8: bert_backend = 1;
/// Reserved: Vulkan compute back end (not available yet).
pub const BERT_BACKEND_VULKAN: bert_backend = 2;

/// Whether `backend` can be used by this build on this machine. Unknown values: false.
#[no_mangle]
pub extern "C" fn bert_backend_available(backend: bert_backend) -> bool {
    backend == BERT_BACKEND_CPU
}

/// One line describing the build and machine, e.g. "libbert 0.1.0; backends: cpu-f32;
/// cores: 8". Static, never NULL, safe to call from any thread.
#[no_mangle]
pub extern "C" fn bert_system_info() -> *const c_char {
    static INFO: OnceLock<CString> = OnceLock::new();
    std::panic::catch_unwind(|| {
        INFO.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            #[cfg_attr(
                not(any(target_arch = "x86_64", target_arch = "aarch64")),
                allow(unused_mut)
            )]
            let mut simd: Vec<&str> = Vec::new();
            #[cfg(target_arch = "aarch64")]
            for (name, on) in [
                ("neon", std::arch::is_aarch64_feature_detected!("neon")),
                (
                    "dotprod",
                    std::arch::is_aarch64_feature_detected!("dotprod"),
                ),
                ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
                ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
            ] {
                if on {
                    simd.push(name);
                }
            }
            #[cfg(target_arch = "x86_64")]
            {
                for (name, on) in [
                    ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
                    ("avx", std::arch::is_x86_feature_detected!("avx")),
                    ("avx2", std::arch::is_x86_feature_detected!("avx2")),
                    ("fma", std::arch::is_x86_feature_detected!("fma")),
                ] {
                    if on {
                        simd.push(name);
                    }
                }
            }
            CString::new(format!(
                "libbert {}; backends: cpu-f32; cores: {cores}; simd: {}",
                bert::VERSION,
                if simd.is_empty() {
                    "none".to_string()
                } else {
                    simd.join(" ")
                }
            ))
            .unwrap_or_default()
        })
        .as_ptr()
    })
    .unwrap_or(c"libbert".as_ptr())
}
