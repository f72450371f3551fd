//! Pre-training through the C ABI (issue 17 item 4): `bert_pretraining_data_create` writes
//! the records the Rust API writes for the same text and flags; a `bert_pretrainer` on
//! Google's tiny checkpoint trains on them as `Pretrainer` does (same losses, same variables,
//! same evaluation), and a run cancelled by its progress callback, freed, and made again on
//! the same output directory resumes to the uninterrupted run's variables, bit for bit.

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};

use bert::classifier::checkpoint;
use bert::config::BertConfig;
use bert::tokenizer::Tokenizer;
use bert::train::pretrain::{self, PretrainParams, Pretrainer};
use bert::train::pretraining_data::{self, FeatureShapes};
use bert_ffi::*;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn tiny() -> PathBuf {
    shared().join("fixtures/tf_bert_tiny")
}

fn c(p: &Path) -> CString {
    CString::new(p.to_str().expect("UTF-8 path")).expect("no NUL")
}

fn last_error() -> String {
    // SAFETY: never NULL, valid until this thread's next call.
    unsafe { CStr::from_ptr(bert_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bert-ffi-pretrain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `create_pretraining_data.py` on Google's sample text (dupe factor 2, one thread).
fn data_params(input: &CString, output: &CString, vocab: &CString) -> bert_pretraining_data_params {
    let mut p = bert_pretraining_data_default_params();
    p.input_file = input.as_ptr();
    p.output_file = output.as_ptr();
    p.vocab_file = vocab.as_ptr();
    p.dupe_factor = 2;
    p.n_threads = 1;
    p
}

extern "C" fn stop_at_once(_: bert_data_stage, _: u64, _: u64, calls: *mut c_void) -> i32 {
    // SAFETY: the test passes its counter, alive during the call.
    unsafe { *calls.cast::<u32>() += 1 };
    1
}

#[test]
fn data_equals_the_rust_apis_and_a_cancelled_run_writes_nothing() {
    let dir = scratch("data");
    let text = shared().join("data/pretrain/sample_text.txt");
    let (input, vocab) = (c(&text), c(&tiny().join("vocab.txt")));
    let ours = dir.join("ours.tfrecord");
    let output = c(&ours);
    let p = data_params(&input, &output, &vocab);
    let mut summary = bert_pretraining_data_summary {
        size: std::mem::size_of::<bert_pretraining_data_summary>(),
        n_input_files: 0,
        input_bytes: 0,
        n_documents: 0,
        n_tokens: 0,
        n_instances: 0,
    };
    // SAFETY: valid params (paths alive), NULL callback, a result struct with its size set.
    let s = unsafe { bert_pretraining_data_create(&p, None, std::ptr::null_mut(), &mut summary) };
    assert_eq!(s, BERT_OK, "{}", last_error());

    let tokenizer = Tokenizer::from_vocab_file(tiny().join("vocab.txt"), true).unwrap();
    let theirs = dir.join("theirs.tfrecord");
    let options = pretraining_data::Options {
        dupe_factor: 2,
        ..Default::default()
    };
    let rust = pretraining_data::create_pretraining_data(
        &tokenizer,
        &[text],
        std::slice::from_ref(&theirs),
        &options,
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    assert_eq!(
        (
            summary.n_input_files,
            summary.input_bytes,
            summary.n_instances
        ),
        (1, rust.input_bytes, rust.instances)
    );
    assert_eq!(
        (summary.n_documents, summary.n_tokens),
        (rust.documents as u64, rust.tokens as u64)
    );
    assert!(summary.n_instances > 20, "{summary:?}");

    // Cancelled at the first progress call: an error, and no output file.
    let never = dir.join("never.tfrecord");
    let output = c(&never);
    let p = data_params(&input, &output, &vocab);
    let mut calls = 0u32;
    // SAFETY: as above; the callback gets a pointer to `calls`, alive during the call.
    let s = unsafe {
        bert_pretraining_data_create(
            &p,
            Some(stop_at_once),
            (&mut calls as *mut u32).cast(),
            &mut summary,
        )
    };
    assert_eq!((s, calls), (BERT_ERROR_CANCELLED, 1));
    assert_eq!(summary.n_instances, 0, "zeroed on failure");
    assert!(!never.exists());

    // Misuse: statuses with messages.
    // SAFETY: NULL params and NULL paths are checked.
    unsafe {
        let s = bert_pretraining_data_create(
            std::ptr::null(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        assert_eq!(s, BERT_ERROR_NULL_ARGUMENT);
        let mut p = data_params(&input, &output, &vocab);
        p.vocab_file = std::ptr::null();
        let s = bert_pretraining_data_create(&p, None, std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(s, BERT_ERROR_NULL_ARGUMENT);
        assert_eq!(last_error(), "params.vocab_file is NULL");
        let mut p = data_params(&input, &output, &vocab);
        p.max_seq_length = 4;
        let s = bert_pretraining_data_create(&p, None, std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(s, BERT_ERROR_INVALID_ARGUMENT);
        assert!(last_error().contains("at least 5"), "{}", last_error());
        let mut p = data_params(&input, &output, &vocab);
        p.do_whole_word_mask = 2;
        let s = bert_pretraining_data_create(&p, None, std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(s, BERT_ERROR_INVALID_ARGUMENT);
        let missing = c(&dir.join("no-such-*.txt"));
        let p = data_params(&missing, &output, &vocab);
        let s = bert_pretraining_data_create(&p, None, std::ptr::null_mut(), std::ptr::null_mut());
        assert_ne!(s, BERT_OK);
        assert!(!last_error().is_empty());
    }
}

/// The fixture's 60 records of the sample text (Google's script's output).
fn records() -> PathBuf {
    shared().join("fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord")
}

const STEPS: u64 = 4;

fn params(input: &CString, out_dir: &CString) -> bert_pretrainer_params {
    let mut p = bert_pretrainer_default_params();
    p.input_file = input.as_ptr();
    p.output_dir = out_dir.as_ptr();
    p.train_batch_size = 8;
    p.num_train_steps = STEPS;
    p.num_warmup_steps = 1;
    p.learning_rate = 1e-4;
    p.n_threads = 1;
    p.save_checkpoints_steps = 0;
    p.eval_batch_size = 8;
    p.max_eval_steps = 3;
    p
}

/// A pre-trainer on the tiny checkpoint; panics with the message on failure.
fn new(input: &CString, out_dir: &Path) -> *mut bert_pretrainer {
    let (config, ckpt) = (
        c(&tiny().join("bert_config.json")),
        c(&tiny().join("bert_model.ckpt")),
    );
    let dir = c(out_dir);
    let p = params(input, &dir);
    let mut t = std::ptr::null_mut();
    // SAFETY: valid paths and params; the strings outlive the call (copied by it).
    let s = unsafe { bert_pretrainer_new(config.as_ptr(), ckpt.as_ptr(), &p, &mut t) };
    assert_eq!(s, BERT_OK, "{}", last_error());
    t
}

/// Collects each progress; stops (returns 1) at step `stop_at`.
struct Watch {
    seen: Vec<bert_pretrain_progress>,
    stop_at: u64,
}

extern "C" fn watch(p: *const bert_pretrain_progress, user: *mut c_void) -> i32 {
    // SAFETY: the library passes a valid progress; the test passes its `Watch`.
    let (p, w) = unsafe { (*p, &mut *user.cast::<Watch>()) };
    w.seen.push(p);
    i32::from(p.step == w.stop_at)
}

fn train(t: *mut bert_pretrainer, max_steps: u64, w: &mut Watch) -> i32 {
    // SAFETY: a live pre-trainer; the callback's data is `w`, alive during the call.
    unsafe { bert_pretrainer_train(t, max_steps, Some(watch), (w as *mut Watch).cast()) }
}

fn evaluate(t: *mut bert_pretrainer) -> bert_pretrain_eval_result {
    let mut r = bert_pretrain_eval_result {
        size: std::mem::size_of::<bert_pretrain_eval_result>(),
        n_examples: 0,
        global_step: 0,
        loss: 0.0,
        masked_lm_loss: 0.0,
        masked_lm_accuracy: 0.0,
        next_sentence_loss: 0.0,
        next_sentence_accuracy: 0.0,
    };
    // SAFETY: a live pre-trainer and a result struct with its size set.
    let s = unsafe { bert_pretrainer_evaluate(t, &mut r) };
    assert_eq!(s, BERT_OK, "{}", last_error());
    r
}

fn variables(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let s = checkpoint::load(&dir.join(checkpoint::FILE_NAME)).unwrap();
    assert_eq!(s.global_step, STEPS);
    let mut v: Vec<(String, Vec<f32>)> =
        s.variables.into_iter().map(|v| (v.name, v.value)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_run_equals_the_rust_apis_and_resumes_after_a_cancel() {
    let input = c(&records());
    // The straight run: every step's progress, then the evaluation.
    let straight = scratch("straight");
    let t = new(&input, &straight);
    // SAFETY: a live pre-trainer.
    assert_eq!(unsafe { bert_pretrainer_num_examples(t) }, 60);
    let mut all = Watch {
        seen: Vec::new(),
        stop_at: 0,
    };
    assert_eq!(train(t, 1, &mut all), BERT_OK, "max_steps 1: paused");
    // SAFETY: a live pre-trainer.
    assert_eq!(unsafe { bert_pretrainer_global_step(t) }, 1);
    assert_eq!(train(t, 0, &mut all), BERT_OK, "{}", last_error());
    let steps: Vec<u64> = all.seen.iter().map(|p| p.step).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
    assert!(all
        .seen
        .iter()
        .all(|p| p.total_steps == STEPS && p.loss.is_finite()));
    let eval = evaluate(t);
    assert_eq!((eval.global_step, eval.n_examples), (STEPS, 24));
    // Nothing left to do: OK, no step.
    assert_eq!(train(t, 0, &mut all), BERT_OK);
    assert_eq!(all.seen.len(), 4);
    // SAFETY: freed once.
    unsafe { bert_pretrainer_free(t) };
    let results = std::fs::read_to_string(straight.join("eval_results.txt")).unwrap();
    assert!(results.starts_with("global_step = 4\n"), "{results}");

    // Without training data, a pre-trainer on that directory evaluates the saved state, as
    // `bert pretrain --do_eval` alone does.
    {
        let (config, ckpt) = (
            c(&tiny().join("bert_config.json")),
            c(&tiny().join("bert_model.ckpt")),
        );
        let dir = c(&straight);
        let mut p = params(&input, &dir);
        p.eval_input_file = p.input_file;
        p.input_file = std::ptr::null();
        let mut e = std::ptr::null_mut();
        // SAFETY: valid paths and params; the pre-trainer is freed below.
        unsafe {
            let s = bert_pretrainer_new(config.as_ptr(), ckpt.as_ptr(), &p, &mut e);
            assert_eq!(s, BERT_OK, "{}", last_error());
            assert_eq!(bert_pretrainer_global_step(e), STEPS);
        }
        let r = evaluate(e);
        assert_eq!(
            (r.global_step, r.loss.to_bits()),
            (STEPS, eval.loss.to_bits())
        );
        // SAFETY: freed once.
        unsafe { bert_pretrainer_free(e) };
    }

    // The Rust API, driven as `bert pretrain` drives it: the same losses and evaluation.
    let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
    let mut w = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
    let hp = PretrainParams {
        train_batch_size: 8,
        num_train_steps: STEPS,
        num_warmup_steps: 1,
        learning_rate: 1e-4,
        threads: 1,
        ..Default::default()
    };
    pretrain::init_missing(&mut w, &config, hp.seed).unwrap();
    let shapes = FeatureShapes {
        max_seq_length: 128,
        max_predictions_per_seq: 20,
    };
    let examples = pretrain::read_examples(&[records()], shapes, &config).unwrap();
    let mut rust = Pretrainer::new(config, &w, hp, examples.clone()).unwrap();
    for p in &all.seen {
        let s = rust.step().unwrap();
        assert_eq!(s.report.loss.to_bits(), p.loss.to_bits(), "step {}", p.step);
        assert_eq!(
            s.masked_lm_accuracy.to_bits(),
            p.masked_lm_accuracy.to_bits()
        );
        assert_eq!(s.report.grad_norm.to_bits(), p.grad_norm.to_bits());
    }
    let r = rust.evaluate(&examples, 8, 3).unwrap();
    assert_eq!(r.to_eval_results_txt(STEPS), results);
    assert_eq!(r.loss().to_bits(), eval.loss.to_bits());

    // Cancelled after step 2, freed; a new pre-trainer on the same directory resumes there.
    let resumed = scratch("resumed");
    let t = new(&input, &resumed);
    let mut first = Watch {
        seen: Vec::new(),
        stop_at: 2,
    };
    assert_eq!(train(t, 0, &mut first), BERT_ERROR_CANCELLED);
    assert!(last_error().contains("after step 2"), "{}", last_error());
    // SAFETY: a live pre-trainer, then freed once.
    unsafe {
        assert_eq!(bert_pretrainer_global_step(t), 2);
        bert_pretrainer_free(t);
    }
    let t = new(&input, &resumed);
    // SAFETY: a live pre-trainer.
    assert_eq!(unsafe { bert_pretrainer_global_step(t) }, 2);
    let mut rest = Watch {
        seen: Vec::new(),
        stop_at: 0,
    };
    assert_eq!(train(t, 0, &mut rest), BERT_OK, "{}", last_error());
    let steps: Vec<u64> = rest.seen.iter().map(|p| p.step).collect();
    assert_eq!(steps, [3, 4]);
    for (a, b) in first.seen.iter().chain(&rest.seen).zip(&all.seen) {
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {}", a.step);
    }
    let again = evaluate(t);
    assert_eq!(again.loss.to_bits(), eval.loss.to_bits());
    assert_eq!(
        again.masked_lm_accuracy.to_bits(),
        eval.masked_lm_accuracy.to_bits()
    );
    // SAFETY: freed once.
    unsafe { bert_pretrainer_free(t) };
    assert!(
        variables(&resumed) == variables(&straight),
        "variables differ"
    );
}

#[test]
fn misuse_is_a_status_with_a_message() {
    let input = c(&records());
    let dir = scratch("misuse");
    let out_dir = c(&dir);
    let config = c(&tiny().join("bert_config.json"));
    let mut t = 1usize as *mut bert_pretrainer;
    // SAFETY: every pointer is valid or NULL (checked), as each case says.
    unsafe {
        let p = params(&input, &out_dir);
        let s = bert_pretrainer_new(std::ptr::null(), std::ptr::null(), &p, &mut t);
        assert_eq!(s, BERT_ERROR_NULL_ARGUMENT);
        assert!(t.is_null());
        let s = bert_pretrainer_new(config.as_ptr(), std::ptr::null(), std::ptr::null(), &mut t);
        assert_eq!(s, BERT_ERROR_NULL_ARGUMENT);
        let mut bad = p;
        bad.output_dir = std::ptr::null();
        assert_eq!(
            bert_pretrainer_new(config.as_ptr(), std::ptr::null(), &bad, &mut t),
            BERT_ERROR_NULL_ARGUMENT
        );
        let mut bad = p;
        bad.train_batch_size = 3;
        bad.gradient_accumulation_steps = 2;
        assert_eq!(
            bert_pretrainer_new(config.as_ptr(), std::ptr::null(), &bad, &mut t),
            BERT_ERROR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("multiple"), "{}", last_error());
        let mut bad = p;
        bad.max_predictions_per_seq = 19;
        assert_ne!(
            bert_pretrainer_new(config.as_ptr(), std::ptr::null(), &bad, &mut t),
            BERT_OK
        );
        assert!(t.is_null() && !last_error().is_empty());

        // From scratch, without training data: evaluation and training say so.
        let mut p = params(&input, &out_dir);
        p.input_file = std::ptr::null();
        assert_eq!(
            bert_pretrainer_new(config.as_ptr(), std::ptr::null(), &p, &mut t),
            BERT_OK,
            "{}",
            last_error()
        );
        assert_eq!(bert_pretrainer_num_examples(t), 0);
        assert_eq!(
            bert_pretrainer_train(t, 0, None, std::ptr::null_mut()),
            BERT_ERROR_EMPTY_DATA
        );
        let mut r = std::mem::zeroed::<bert_pretrain_eval_result>();
        r.size = std::mem::size_of_val(&r);
        assert_eq!(bert_pretrainer_evaluate(t, &mut r), BERT_ERROR_EMPTY_DATA);
        r.size = 3;
        assert_eq!(
            bert_pretrainer_evaluate(t, &mut r),
            BERT_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            bert_pretrainer_train(std::ptr::null_mut(), 0, None, std::ptr::null_mut()),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(
            bert_pretrainer_resume(t, c"/nonexistent/state".as_ptr()),
            BERT_ERROR_IO
        );
        bert_pretrainer_free(t);
        bert_pretrainer_free(std::ptr::null_mut());
        assert_eq!(bert_pretrainer_global_step(std::ptr::null()), 0);
    }
}
