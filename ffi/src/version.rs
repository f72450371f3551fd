//! The version of the library and what this build can use on this machine.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// Version of the library as `major * 10000 + minor * 100 + patch`.
///
/// Callers compare it with `BERT_VERSION_NUMBER` from the header they compiled against.
#[no_mangle]
pub extern "C" fn bert_version_number() -> u32 {
    bert::VERSION_NUMBER
}

/// Compute back ends. Values are never renumbered (1 is retired: int8 runs on the CPU back
/// end, see `bert_model_params.dtype`).
pub type bert_backend = i32;
/// The CPU back end (always available): f32, f16 and int8 weights.
pub const BERT_BACKEND_CPU: bert_backend = 0;
/// The Vulkan compute back end (a build with the cargo feature `vulkan`): the encoder's
/// forward pass on a Vulkan device (`bert_model_load_file`, `bert_embed`,
/// `bert_hidden_states`); classifiers and training stay on the CPU.
pub const BERT_BACKEND_VULKAN: bert_backend = 2;

/// Whether `backend` can be used by this build on this machine (for `BERT_BACKEND_VULKAN`:
/// a Vulkan device opens; asked once, then remembered). Unknown values: false.
#[no_mangle]
pub extern "C" fn bert_backend_available(backend: bert_backend) -> bool {
    match backend {
        BERT_BACKEND_CPU => true,
        BERT_BACKEND_VULKAN => vulkan_available(),
        _ => false,
    }
}

/// Whether a Vulkan device opens here (opening one costs milliseconds: asked once).
fn vulkan_available() -> bool {
    #[cfg(feature = "vulkan")]
    {
        static OPENS: OnceLock<bool> = OnceLock::new();
        *OPENS.get_or_init(|| {
            std::panic::catch_unwind(|| {
                bert::backend::vulkan::Vulkan::open(bert::backend::vulkan::DeviceChoice::Any)
                    .is_ok()
            })
            .unwrap_or(false)
        })
    }
    #[cfg(not(feature = "vulkan"))]
    false
}

/// One line describing the build and machine: version, back ends, cores, the CPU's vector
/// extensions libbert can use and the kernels it chose, e.g. "libbert 0.1.0; backends: cpu;
/// cores: 8; simd: sse4.2 avx avx2 fma avx512f avx512vnni avxvnni; f32 kernels:
/// avx512; int8 kernels: vnni512". Static, never NULL, safe to call from any thread.
#[no_mangle]
pub extern "C" fn bert_system_info() -> *const c_char {
    static INFO: OnceLock<CString> = OnceLock::new();
    std::panic::catch_unwind(|| {
        INFO.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let simd = simd_features();
            CString::new(format!(
                "libbert {}; backends: {}; cores: {cores}; simd: {}; f32 kernels: {}; int8 \
                 kernels: {}",
                bert::VERSION,
                if vulkan_available() {
                    "cpu vulkan"
                } else {
                    "cpu"
                },
                if simd.is_empty() {
                    "none".to_string()
                } else {
                    simd.join(" ")
                },
                format!("{:?}", bert::backend::cpu::Isa::detect()).to_lowercase(),
                format!("{:?}", bert::backend::int8::Int8Path::detect()).to_lowercase(),
            ))
            .unwrap_or_default()
        })
        .as_ptr()
    })
    .unwrap_or(c"libbert".as_ptr())
}

/// The vector extensions of this CPU that libbert's kernels use: AVX2+FMA and AVX-512F
/// (f32 GEMM), AVX-512 VNNI and AVX-VNNI (int8 GEMM; listed when this build has their
/// kernels, which needs Rust 1.89), in `/proc/cpuinfo`'s names without underscores.
fn simd_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut simd = Vec::new();
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
        use bert::backend::int8::Int8Path;
        for (name, on) in [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512vnni", Int8Path::Vnni512.available()),
            ("avxvnni", Int8Path::AvxVnni.available()),
        ] {
            if on {
                simd.push(name);
            }
        }
    }
    simd
}
