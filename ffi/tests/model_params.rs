//! `bert_model_params` where a model or a classifier is loaded: the weights' dtype and the
//! checksums of a `.bert` file's f16 and int8 blocks (issue 21), through the C entry points,
//! on a classifier fine-tuned from Google's tiny fixture for one update.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};

use bert::weights::{native, quantize, DType};
use bert_ffi::*;

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tf_bert_tiny")
}

fn c_path(p: &Path) -> CString {
    CString::new(p.to_str().expect("UTF-8 path")).expect("no NUL")
}

fn last_error() -> String {
    // SAFETY: never NULL, valid until this thread's next call.
    unsafe { CStr::from_ptr(bert_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A scratch directory of this test binary (removed and made again).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bert-ffi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A 2-label classifier of the tiny model after one update, saved to `path`.
fn fine_tune(path: &Path) {
    let labels = [c"neg".as_ptr(), c"pos".as_ptr()];
    let mut p = bert_trainer_default_params();
    p.labels = labels.as_ptr();
    p.n_labels = 2;
    p.train_batch_size = 2;
    p.num_train_epochs = 1.0;
    p.max_seq_length = 16;
    p.n_threads = 1;
    let model = c_path(&tiny());
    let out = c_path(path);
    let mut t = std::ptr::null_mut();
    // SAFETY: valid paths, params and out-pointers; texts are (ptr, len) of static strings;
    // the trainer is freed at the end.
    unsafe {
        assert_eq!(bert_trainer_new(model.as_ptr(), &p, &mut t), BERT_OK);
        for (i, text) in ["a fine film", "a dull film"].iter().enumerate() {
            let s = bert_trainer_add_example(
                t,
                BERT_SPLIT_TRAIN,
                text.as_ptr().cast::<c_char>(),
                text.len(),
                std::ptr::null(),
                0,
                1 - i as i32,
            );
            assert_eq!(s, BERT_OK, "{}", last_error());
        }
        assert_eq!(
            bert_trainer_train(t, 0, None, std::ptr::null_mut()),
            BERT_OK
        );
        assert_eq!(bert_trainer_save(t, out.as_ptr()), BERT_OK);
        bert_trainer_free(t);
    }
}

/// `path` rewritten with f16 weights (encoder kernels and word embeddings), labels kept.
fn to_f16(path: &Path, out: &Path) {
    let m = native::NativeModel::open(path).expect("open");
    let w = quantize::convert(m.weights().expect("weights"), m.config(), DType::F16).expect("f16");
    native::save_with_labels(
        out,
        m.config(),
        &w,
        m.vocab(),
        m.do_lower_case(),
        m.labels(),
    )
    .expect("save");
}

/// Loads a classifier with `params` (NULL: defaults): the status and the handle (freed by the
/// caller).
fn load_classifier(
    path: &Path,
    params: Option<&bert_model_params>,
) -> (bert_status, *mut bert_classifier) {
    let p = c_path(path);
    let mut c = std::ptr::null_mut();
    let params = params.map_or(std::ptr::null(), |p| p as *const bert_model_params);
    // SAFETY: valid path, params (or NULL) and out-pointer.
    let s = unsafe { bert_classifier_load_file(p.as_ptr(), params, &mut c) };
    (s, c)
}

/// P(label | text) for one text.
fn classify(c: *const bert_classifier, text: &str) -> Vec<f32> {
    let mut cp = bert_context_default_params();
    cp.n_threads = 1;
    let mut ctx = std::ptr::null_mut();
    let mut probs = vec![0f32; 2];
    let ptr = text.as_ptr().cast::<c_char>();
    let len = text.len();
    // SAFETY: a live classifier; one text of `len` bytes; an output of 2 floats.
    unsafe {
        assert_eq!(
            bert_context_new(bert_classifier_model(c), &cp, &mut ctx),
            BERT_OK
        );
        let s = bert_classify(
            ctx,
            c,
            &ptr,
            &len,
            std::ptr::null(),
            std::ptr::null(),
            1,
            std::ptr::null_mut(),
            probs.as_mut_ptr(),
            2,
            std::ptr::null_mut(),
        );
        assert_eq!(s, BERT_OK, "{}", last_error());
        bert_context_free(ctx);
    }
    probs
}

#[test]
fn a_classifier_loads_with_model_params_dtype_and_checksums() {
    let dir = scratch("classifier-params");
    let f32_path = dir.join("clf.bert");
    fine_tune(&f32_path);
    let (s, reference) = load_classifier(&f32_path, None);
    assert_eq!(s, BERT_OK, "{}", last_error());
    let expected = classify(reference, "a fine film");

    // Quantized on load: the encoder changes, the head stays f32 (tolerance: int8 rounding
    // of a 2-layer encoder moves these probabilities by about 1e-3).
    let mut p = bert_model_default_params();
    p.dtype = BERT_DTYPE_INT8;
    let (s, q) = load_classifier(&f32_path, Some(&p));
    assert_eq!(s, BERT_OK, "{}", last_error());
    let got = classify(q, "a fine film");
    assert!(
        (got[1] - expected[1]).abs() < 0.02,
        "{got:?} vs {expected:?}"
    );
    assert_ne!(
        got, expected,
        "int8 weights give (slightly) other numbers than f32"
    );
    // SAFETY: handles from bert_classifier_load_file.
    unsafe { bert_classifier_free(q) };

    // Options the classifier file decides itself are refused, not ignored.
    for (what, p) in [
        ("vocab_path", {
            let mut p = bert_model_default_params();
            p.vocab_path = c"/nonexistent/vocab.txt".as_ptr();
            p
        }),
        ("do_lower_case", {
            let mut p = bert_model_default_params();
            p.do_lower_case = 0;
            p
        }),
        ("verify_checksums", {
            let mut p = bert_model_default_params();
            p.verify_checksums = 2;
            p
        }),
    ] {
        let (s, c) = load_classifier(&f32_path, Some(&p));
        assert_eq!((s, c), (BERT_ERROR_INVALID_ARGUMENT, std::ptr::null_mut()));
        assert!(last_error().contains(what), "{}", last_error());
    }
    // A build without the Vulkan back end refuses it, saying so (a build with it loads the
    // classifier there: ffi/tests/vulkan_abi.rs).
    if !cfg!(feature = "vulkan") {
        let mut p = bert_model_default_params();
        p.backend = BERT_BACKEND_VULKAN;
        assert_eq!(
            load_classifier(&f32_path, Some(&p)).0,
            BERT_ERROR_UNSUPPORTED
        );
        assert!(
            last_error().contains("feature `vulkan`"),
            "{}",
            last_error()
        );
    }
    // SAFETY: as above.
    unsafe { bert_classifier_free(reference) };
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_checksums_finds_a_flipped_bit_in_an_f16_block_that_loading_alone_does_not_read() {
    let dir = scratch("checksums");
    let f32_path = dir.join("clf.bert");
    let f16_path = dir.join("clf_f16.bert");
    fine_tune(&f32_path);
    to_f16(&f32_path, &f16_path);
    let mut bytes = std::fs::read(&f16_path).expect("read");
    // The word embeddings (30522 x 128 f16, most of the file) sit in its middle.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&f16_path, &bytes).expect("write");

    let (s, c) = load_classifier(&f16_path, None);
    assert_eq!(
        s,
        BERT_OK,
        "f16 blocks stay in the map until used: {}",
        last_error()
    );
    // SAFETY: a handle from bert_classifier_load_file.
    unsafe { bert_classifier_free(c) };
    let mut p = bert_model_default_params();
    p.verify_checksums = 1;
    let (s, c) = load_classifier(&f16_path, Some(&p));
    assert_eq!((s, c), (BERT_ERROR_FORMAT, std::ptr::null_mut()));
    assert!(last_error().contains("clf_f16.bert"), "{}", last_error());

    // The same option of bert_model_load_file and bert_model_load_buffer.
    let path = c_path(&f16_path);
    let mut m = std::ptr::null_mut();
    // SAFETY: valid path, params, bytes and out-pointers; models are freed.
    unsafe {
        assert_eq!(
            bert_model_load_file(path.as_ptr(), std::ptr::null(), &mut m),
            BERT_OK
        );
        bert_model_free(m);
        assert_eq!(
            bert_model_load_file(path.as_ptr(), &p, &mut m),
            BERT_ERROR_FORMAT
        );
        let s = bert_model_load_buffer(bytes.as_ptr().cast(), bytes.len(), &p, &mut m);
        assert_eq!((s, m), (BERT_ERROR_FORMAT, std::ptr::null_mut()));
        let s =
            bert_model_load_buffer(bytes.as_ptr().cast(), bytes.len(), std::ptr::null(), &mut m);
        assert_eq!(s, BERT_OK, "{}", last_error());
        bert_model_free(m);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
