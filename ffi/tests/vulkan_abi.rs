//! `BERT_BACKEND_VULKAN` through the C entry points (feature `vulkan`; lavapipe in CI): a
//! model loaded on the device embeds and gives every layer's hidden states as the CPU
//! model does (1e-4, the Vulkan back end's tolerance: see tests/vulkan_model.rs); a
//! classifier and a question answerer loaded on the device give the CPU's logits and
//! answers; what runs only on the CPU says so; and a machine without a device refuses
//! `BERT_BACKEND_VULKAN` with `BERT_ERROR_UNSUPPORTED` and the reason. Without a Vulkan
//! device the tests fail unless `LIBBERT_SKIP_VULKAN=1`.
#![cfg(feature = "vulkan")]

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bert::tokenizer::Tokenizer;
use bert::weights::Tensor;
use bert::BertConfig;
use bert_ffi::*;

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tf_bert_tiny")
}

fn c_path(p: &Path) -> CString {
    CString::new(p.to_str().expect("UTF-8 path")).expect("no NUL")
}

fn tiny() -> CString {
    c_path(&tiny_dir())
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

/// Whether the device tests run: a Vulkan device, or the test fails unless
/// `LIBBERT_SKIP_VULKAN=1` says to skip (then it says why).
fn have_device() -> bool {
    if bert_backend_available(BERT_BACKEND_VULKAN) {
        return true;
    }
    assert_eq!(
        std::env::var("LIBBERT_SKIP_VULKAN").as_deref(),
        Ok("1"),
        "no Vulkan device: install mesa-vulkan-drivers or set LIBBERT_SKIP_VULKAN=1"
    );
    eprintln!("skipped (LIBBERT_SKIP_VULKAN=1): no Vulkan device");
    false
}

/// Largest difference, NaN counting as infinite.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0f32,
            |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) },
        )
}

#[test]
fn a_vulkan_model_embeds_as_the_cpu_model_does() {
    if !have_device() {
        return;
    }
    let (cpu_embed, cpu_hidden) = run(BERT_BACKEND_CPU);
    let (vk_embed, vk_hidden) = run(BERT_BACKEND_VULKAN);
    for (what, a, b) in [
        ("embeddings", &cpu_embed, &vk_embed),
        ("hidden states", &cpu_hidden, &vk_hidden),
    ] {
        assert!(!a.is_empty(), "{what}");
        let d = max_abs_diff(a, b);
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

fn npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[6], 1, "npy version 1");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A `.bert` file of the tiny model with the heads of the fine-tuning references (a
/// classifier of 3 labels and the span head), made once per test binary; `squad` picks
/// which file.
fn head_file(squad: bool) -> CString {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    let (clf, qa) = FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bert-ffi-vulkan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = BertConfig::from_file(tiny_dir().join("bert_config.json")).unwrap();
        let w = bert::weights::tf_checkpoint::load(tiny_dir().join("bert_model.ckpt")).unwrap();
        let tok = Tokenizer::from_vocab_file(tiny_dir().join("vocab.txt"), true).unwrap();
        let t = |f: &str, shape| Tensor::new(shape, npy_f32(&tiny_dir().join(f))).unwrap();
        let mut c = w.clone();
        let head = "finetune_reference/initial";
        c.insert(
            "output_weights",
            t(&format!("{head}/output_weights.npy"), vec![3, 128]),
        );
        c.insert(
            "output_bias",
            t(&format!("{head}/output_bias.npy"), vec![3]),
        );
        let labels: Vec<String> = ["0", "1", "2"].iter().map(|s| s.to_string()).collect();
        let clf = dir.join("classifier.bert");
        bert::classifier::save(&clf, &config, &c, &tok, &labels).unwrap();
        let mut q = w;
        let head = "squad_finetune_reference/initial/cls/squad";
        q.insert(
            "cls/squad/output_weights",
            t(&format!("{head}/output_weights.npy"), vec![2, 128]),
        );
        q.insert(
            "cls/squad/output_bias",
            t(&format!("{head}/output_bias.npy"), vec![2]),
        );
        let qa = dir.join("squad.bert");
        bert::squad::model::save(&qa, &config, &q, &tok).unwrap();
        (clf, qa)
    });
    c_path(if squad { qa } else { clf })
}

/// `bert_classify` of a few texts and pairs by the classifier loaded on `backend`: logits
/// and probabilities.
fn classify_on(backend: bert_backend) -> (Vec<f32>, Vec<f32>) {
    let mut p = bert_model_default_params();
    p.backend = backend;
    let path = head_file(false);
    let a = [
        "A delightful film.",
        "The plot was dull and the acting was worse.",
        "ok",
        "Is it?",
    ];
    let b: [*const c_char; 4] = [
        std::ptr::null(),
        c"But the music was fine.".as_ptr(),
        std::ptr::null(),
        c"Yes, it is raining in Zürich today.".as_ptr(),
    ];
    let a_ptrs: Vec<*const c_char> = a.iter().map(|t| t.as_ptr().cast()).collect();
    let a_lens: Vec<usize> = a.iter().map(|t| t.len()).collect();
    let (mut clf, mut ctx) = (std::ptr::null_mut(), std::ptr::null_mut());
    let (mut logits, mut probs) = (vec![0f32; 12], vec![0f32; 12]);
    // SAFETY: valid path, params and out-pointers; texts a as (ptr, len), texts b
    // NUL-terminated or NULL; outputs of 12 floats; freed in reverse order.
    unsafe {
        let s = bert_classifier_load_file(path.as_ptr(), &p, &mut clf);
        assert_eq!(s, BERT_OK, "{}", last_error());
        let s = bert_context_new(bert_classifier_model(clf), std::ptr::null(), &mut ctx);
        assert_eq!(s, BERT_OK, "{}", last_error());
        let mut n = 0;
        let s = bert_classify(
            ctx,
            clf,
            a_ptrs.as_ptr(),
            a_lens.as_ptr(),
            b.as_ptr(),
            std::ptr::null(),
            4,
            logits.as_mut_ptr(),
            probs.as_mut_ptr(),
            12,
            &mut n,
        );
        assert_eq!((s, n), (BERT_OK, 12), "{}", last_error());
        bert_context_free(ctx);
        bert_classifier_free(clf);
    }
    (logits, probs)
}

/// `bert_qa_answer_batch` of two questions (one context longer than a window) by the
/// answerer loaded on `backend`: each question's spans.
fn answer_on(backend: bert_backend) -> Vec<Vec<bert_qa_span>> {
    let mut p = bert_model_default_params();
    p.backend = backend;
    let path = head_file(true);
    let context = "Super Bowl 50 was an American football game to determine the champion of \
        the National Football League (NFL) for the 2015 season. The Denver Broncos defeated \
        the Carolina Panthers 24–10. The game was played on February 7, 2016, at Levi's \
        Stadium in Santa Clara, California.";
    let long = [context; 3].join(" ");
    let questions = [
        "Which team won Super Bowl 50?",
        "Where was the game played?",
    ];
    let contexts = [context, long.as_str()];
    let q_ptrs: Vec<*const c_char> = questions.iter().map(|t| t.as_ptr().cast()).collect();
    let q_lens: Vec<usize> = questions.iter().map(|t| t.len()).collect();
    let c_ptrs: Vec<*const c_char> = contexts.iter().map(|t| t.as_ptr().cast()).collect();
    let c_lens: Vec<usize> = contexts.iter().map(|t| t.len()).collect();
    let mut qp = bert_qa_default_params();
    qp.n_best = 5;
    qp.max_seq_length = 64;
    let (mut qa, mut ctx) = (std::ptr::null_mut(), std::ptr::null_mut());
    let mut spans = vec![bert_qa_span::default(); 10];
    let mut counts = [0usize; 2];
    // SAFETY: valid path, params and out-pointers; texts as (ptr, len); 10 spans and 2
    // counts; freed in reverse order.
    unsafe {
        let s = bert_qa_load_file(path.as_ptr(), &p, &mut qa);
        assert_eq!(s, BERT_OK, "{}", last_error());
        let s = bert_context_new(bert_qa_model(qa), std::ptr::null(), &mut ctx);
        assert_eq!(s, BERT_OK, "{}", last_error());
        let s = bert_qa_answer_batch(
            ctx,
            qa,
            q_ptrs.as_ptr(),
            q_lens.as_ptr(),
            c_ptrs.as_ptr(),
            c_lens.as_ptr(),
            2,
            &qp,
            spans.as_mut_ptr(),
            spans.len(),
            counts.as_mut_ptr(),
            std::ptr::null_mut(),
        );
        assert_eq!(s, BERT_OK, "{}", last_error());
        bert_context_free(ctx);
        bert_qa_free(qa);
    }
    (0..2)
        .map(|i| spans[i * 5..i * 5 + counts[i]].to_vec())
        .collect()
}

#[test]
fn a_vulkan_classifier_and_answerer_answer_as_the_cpu_ones() {
    if !have_device() {
        return;
    }
    let (cpu_logits, cpu_probs) = classify_on(BERT_BACKEND_CPU);
    let (vk_logits, vk_probs) = classify_on(BERT_BACKEND_VULKAN);
    let (dl, dp) = (
        max_abs_diff(&cpu_logits, &vk_logits),
        max_abs_diff(&cpu_probs, &vk_probs),
    );
    eprintln!("bert_classify: max abs diff {dl:e} (logits), {dp:e} (probabilities)");
    assert!(dl <= 1e-4 && dp <= 1e-4, "{dl:e} {dp:e}");

    let cpu = answer_on(BERT_BACKEND_CPU);
    let vk = answer_on(BERT_BACKEND_VULKAN);
    let mut worst = 0f32;
    for (i, (c, v)) in cpu.iter().zip(&vk).enumerate() {
        assert!(!c.is_empty(), "question {i}");
        let bytes = |s: &[bert_qa_span]| -> Vec<(u64, u64)> {
            s.iter().map(|a| (a.start_byte, a.end_byte)).collect()
        };
        assert_eq!(bytes(c), bytes(v), "question {i}");
        for (a, b) in c.iter().zip(v) {
            worst = worst.max((a.score - b.score).abs());
        }
    }
    eprintln!("bert_qa_answer_batch: the same spans, max |Δscore| {worst:e}");
    assert!(worst <= 1e-4, "{worst:e}");
}

/// Set in the child process [`without_a_device_vulkan_is_unsupported_with_the_reason`]
/// starts, whose Vulkan loader finds no driver.
const NO_DEVICE_CHILD: &str = "BERT_FFI_TEST_NO_VULKAN_DRIVER";

/// Loads a model, a classifier and an answerer on `BERT_BACKEND_VULKAN` in a process whose
/// loader is pointed at no driver: each is `BERT_ERROR_UNSUPPORTED` naming Vulkan, no
/// handle, no panic. (Runs only in that child; in the parent it starts it.)
#[test]
fn without_a_device_vulkan_is_unsupported_with_the_reason() {
    if std::env::var_os(NO_DEVICE_CHILD).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "without_a_device_vulkan_is_unsupported_with_the_reason",
                "--nocapture",
            ])
            .env(NO_DEVICE_CHILD, "1")
            // The loader's driver lists (old and new names): one that does not exist.
            .env("VK_ICD_FILENAMES", "/nonexistent/libbert_test_icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/libbert_test_icd.json")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        eprintln!("{log}");
        assert!(out.status.success(), "the child failed: {log}");
        assert!(log.contains("checked without a driver"), "{log}");
        return;
    }
    assert!(!bert_backend_available(BERT_BACKEND_VULKAN));
    let mut p = bert_model_default_params();
    p.backend = BERT_BACKEND_VULKAN;
    let (model, clf, qa) = (tiny(), head_file(false), head_file(true));
    // SAFETY: valid paths, params and out-pointers; nothing is loaded (checked).
    unsafe {
        let mut m = std::ptr::null_mut();
        assert_eq!(
            bert_model_load_file(model.as_ptr(), &p, &mut m),
            BERT_ERROR_UNSUPPORTED
        );
        assert!(m.is_null());
        let e = last_error();
        assert!(e.contains("vulkan"), "{e}");
        eprintln!("bert_model_load_file: {e}");
        let mut c = std::ptr::null_mut();
        assert_eq!(
            bert_classifier_load_file(clf.as_ptr(), &p, &mut c),
            BERT_ERROR_UNSUPPORTED
        );
        assert!(c.is_null());
        assert_eq!(last_error(), e);
        let mut q = std::ptr::null_mut();
        assert_eq!(
            bert_qa_load_file(qa.as_ptr(), &p, &mut q),
            BERT_ERROR_UNSUPPORTED
        );
        assert!(q.is_null());
        assert_eq!(last_error(), e);
    }
    eprintln!("checked without a driver");
}
