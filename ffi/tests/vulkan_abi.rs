//! `BERT_BACKEND_VULKAN` through the C entry points (feature `vulkan`; lavapipe in CI): a
//! model loaded on the device embeds and gives every layer's hidden states as the CPU
//! model does (1e-4, the Vulkan back end's tolerance: see tests/vulkan_model.rs), and what
//! runs only on the CPU says so. Without a Vulkan device the test fails unless
//! `LIBBERT_SKIP_VULKAN=1`.
#![cfg(feature = "vulkan")]

use std::ffi::{c_char, CStr, CString};
use std::path::Path;

use bert_ffi::*;

fn tiny() -> CString {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tf_bert_tiny");
    CString::new(p.to_str().expect("UTF-8 path")).expect("no NUL")
}

fn last_error() -> String {
    // SAFETY: never NULL, valid until this thread's next call.
    unsafe { CStr::from_ptr(bert_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Loads the tiny model on `backend`, embeds two texts and reads one text's hidden states.
fn run(backend: bert_backend) -> (Vec<f32>, Vec<f32>) {
    let mut p = bert_model_default_params();
    p.backend = backend;
    let path = tiny();
    let texts = ["hello world", "the quick brown fox jumps"];
    let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr().cast()).collect();
    let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
    let (mut m, mut c) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: valid path, params, texts (ptr, len) and out-pointers; the view is read before
    // the context's next call; everything is freed in reverse order.
    unsafe {
        assert_eq!(
            bert_model_load_file(path.as_ptr(), &p, &mut m),
            BERT_OK,
            "{}",
            last_error()
        );
        assert_eq!(bert_context_new(m, std::ptr::null(), &mut c), BERT_OK);
        let mut out = vec![0f32; 2 * 4096];
        let mut n = 0;
        let s = bert_embed(
            c,
            ptrs.as_ptr(),
            lens.as_ptr(),
            2,
            BERT_POOLING_MEAN,
            1,
            out.as_mut_ptr(),
            out.len(),
            &mut n,
        );
        assert_eq!(s, BERT_OK, "{}", last_error());
        out.truncate(n);
        let mut view = bert_hidden_states_view {
            size: std::mem::size_of::<bert_hidden_states_view>(),
            n_layers: 0,
            n_tokens: 0,
            hidden_size: 0,
            data: std::ptr::null(),
        };
        let s = bert_hidden_states(c, ptrs[1], lens[1], &mut view);
        assert_eq!(s, BERT_OK, "{}", last_error());
        let hidden =
            std::slice::from_raw_parts(view.data, view.n_layers * view.n_tokens * view.hidden_size)
                .to_vec();
        bert_context_free(c);
        bert_model_free(m);
        (out, hidden)
    }
}

#[test]
fn a_vulkan_model_embeds_as_the_cpu_model_does() {
    if !bert_backend_available(BERT_BACKEND_VULKAN) {
        assert_eq!(
            std::env::var("LIBBERT_SKIP_VULKAN").as_deref(),
            Ok("1"),
            "no Vulkan device: install mesa-vulkan-drivers or set LIBBERT_SKIP_VULKAN=1"
        );
        return;
    }
    let (cpu_embed, cpu_hidden) = run(BERT_BACKEND_CPU);
    let (vk_embed, vk_hidden) = run(BERT_BACKEND_VULKAN);
    for (what, a, b) in [
        ("embeddings", &cpu_embed, &vk_embed),
        ("hidden states", &cpu_hidden, &vk_hidden),
    ] {
        assert_eq!(a.len(), b.len(), "{what}");
        assert!(!a.is_empty(), "{what}");
        let d = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(
                0f32,
                |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) },
            );
        eprintln!("{what}: max abs diff {d:e}");
        assert!(d <= 1e-4, "{what}: max abs diff {d:e}");
    }
    // SAFETY: a NUL-terminated string of static storage.
    let info = unsafe { CStr::from_ptr(bert_system_info()) }.to_string_lossy();
    assert!(info.contains("backends: cpu vulkan"), "{info}");
}

#[test]
fn calls_that_run_only_on_the_cpu_refuse_vulkan() {
    let mut p = bert_model_default_params();
    p.backend = BERT_BACKEND_VULKAN;
    let bytes = b"not a model";
    let mut m = std::ptr::null_mut();
    // SAFETY: valid buffer, params and out-pointer.
    let s = unsafe { bert_model_load_buffer(bytes.as_ptr().cast(), bytes.len(), &p, &mut m) };
    assert_eq!(s, BERT_ERROR_UNSUPPORTED);
    assert!(m.is_null());
    assert!(
        last_error().contains("BERT_BACKEND_CPU only"),
        "{}",
        last_error()
    );
}
