//! `bert_qa_*` (issue 16 item 5): the C entry points answer exactly as the Rust API's
//! `QuestionAnswerer` does for the same file, texts and options (single and batched, long
//! contexts read in windows), and every misuse is a status, never a crash.
//!
//! The model is Google's tiny fixture with the initial span head of
//! `squad_finetune_reference`, saved as a `.bert` file: its answers are not right ones, but
//! any difference in texts, offsets or options between the two paths changes them.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bert::squad::{FeatureOptions, SquadModel};
use bert::tokenizer::Tokenizer;
use bert::weights::Tensor;
use bert::{BertConfig, Context, QuestionAnswerer};
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

fn npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes[6], 1, "npy version 1");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert!(std::str::from_utf8(&bytes[10..10 + len])
        .unwrap()
        .contains("'<f4'"));
    bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The tiny SQuAD model as a `.bert` file, made once per test binary.
fn model_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bert-ffi-qa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
        let mut w = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
        let head = tiny().join("squad_finetune_reference/initial/cls/squad");
        let t = |f: &str, shape| Tensor::new(shape, npy_f32(&head.join(f))).unwrap();
        w.insert(
            "cls/squad/output_weights",
            t("output_weights.npy", vec![2, 128]),
        );
        w.insert("cls/squad/output_bias", t("output_bias.npy", vec![2]));
        let tokenizer = Tokenizer::from_vocab_file(tiny().join("vocab.txt"), true).unwrap();
        let path = dir.join("squad.bert");
        bert::squad::model::save(&path, &config, &w, &tokenizer).unwrap();
        path
    })
}

const QUESTION: &str = "Which NFL team won Super Bowl 50?";
const CONTEXT: &str = "Super Bowl 50 was an American football game to determine the champion \
of the National Football League (NFL) for the 2015 season. The American Football Conference \
(AFC) champion Denver Broncos defeated the National Football Conference (NFC) champion \
Carolina Panthers 24–10 to earn their third Super Bowl title.\nThe game was played on \
February 7, 2016, at Levi's Stadium in the San Francisco Bay Area at Santa Clara, California.";

/// A loaded answerer and a one-thread context made from its model; freed on drop.
struct Qa {
    qa: *mut bert_qa,
    ctx: *mut bert_context,
}

impl Qa {
    fn load(path: &Path, ctx_params: Option<&bert_context_params>) -> Qa {
        let mut qa = std::ptr::null_mut();
        let mut ctx = std::ptr::null_mut();
        let p = c_path(path);
        let mut cp = bert_context_default_params();
        cp.n_threads = 1;
        let cp = ctx_params.unwrap_or(&cp);
        // SAFETY: valid path, NULL params (defaults), out-pointers; the context is made from
        // the answerer's own model, which outlives it (freed in drop, context first).
        unsafe {
            assert_eq!(
                bert_qa_load_file(p.as_ptr(), std::ptr::null(), &mut qa),
                BERT_OK,
                "{}",
                last_error()
            );
            assert_eq!(bert_context_new(bert_qa_model(qa), cp, &mut ctx), BERT_OK);
        }
        Qa { qa, ctx }
    }

    /// `bert_qa_answer` with `params`, as (start, end, score) per answer.
    fn answer(&self, q: &str, c: &str, params: &bert_qa_params) -> Result<Vec<bert_qa_span>, i32> {
        let mut spans = vec![bert_qa_span::default(); params.n_best as usize];
        let mut n = 0;
        // SAFETY: handles from `load`; texts are (ptr, len); the buffer holds n_best spans.
        let s = unsafe {
            bert_qa_answer(
                self.ctx,
                self.qa,
                q.as_ptr().cast(),
                q.len(),
                c.as_ptr().cast(),
                c.len(),
                params,
                spans.as_mut_ptr(),
                spans.len(),
                &mut n,
            )
        };
        if s != BERT_OK {
            return Err(s);
        }
        spans.truncate(n);
        Ok(spans)
    }
}

impl Drop for Qa {
    fn drop(&mut self) {
        // SAFETY: handles from `load`, freed once, the context before its model.
        unsafe {
            bert_context_free(self.ctx);
            bert_qa_free(self.qa);
        }
    }
}

/// The Rust API's answers with the options the C params stand for.
fn reference(windows: FeatureOptions, max_answer_length: usize, batch: usize) -> QuestionAnswerer {
    let model = SquadModel::load(model_file()).unwrap();
    QuestionAnswerer::with_options(model, windows, max_answer_length, batch).unwrap()
}

fn assert_same(c: &str, ours: &[bert_qa_span], theirs: &[bert::Answer]) {
    assert!(!theirs.is_empty());
    assert_eq!(ours.len(), theirs.len(), "{ours:?}\n{theirs:?}");
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(
            (o.start_byte as usize, o.end_byte as usize),
            (t.start_byte, t.end_byte),
            "{t:?}"
        );
        assert_eq!(&c[o.start_byte as usize..o.end_byte as usize], t.text);
        // The same code on the same inputs: bit for bit.
        assert_eq!(o.score.to_bits(), t.score.to_bits(), "{o:?} {t:?}");
    }
}

#[test]
fn answers_equal_the_rust_apis_with_default_and_explicit_options() {
    let qa = Qa::load(model_file(), None);
    let defaults = bert_qa_default_params();
    let ours = qa.answer(QUESTION, CONTEXT, &defaults).unwrap();
    assert_eq!(ours.len(), 20);
    let rust = QuestionAnswerer::load(model_file()).unwrap();
    let theirs = rust
        .answer(&mut Context::new(1), QUESTION, CONTEXT, 20)
        .unwrap();
    assert_same(CONTEXT, &ours, &theirs);

    // Short windows: the context is read in several, each span scored where it has the
    // most context; and a shorter answer limit, fewer answers, another batch size.
    let mut p = bert_qa_default_params();
    p.max_seq_length = 40;
    p.max_answer_length = 4;
    p.n_best = 3;
    p.batch_size = 2;
    let ours = qa.answer(QUESTION, CONTEXT, &p).unwrap();
    let windows = bert::squad::answerer::default_windows(40);
    assert!(windows.doc_stride < 40 - windows.max_query_length - 3);
    let theirs = reference(windows, 4, 2)
        .answer(&mut Context::new(1), QUESTION, CONTEXT, 3)
        .unwrap();
    assert_same(CONTEXT, &ours, &theirs);
    assert!(ours.iter().all(|s| s.end_byte > s.start_byte));

    p.doc_stride = 5;
    p.max_query_length = 6;
    let ours = qa.answer(QUESTION, CONTEXT, &p).unwrap();
    let windows = FeatureOptions {
        max_seq_length: 40,
        doc_stride: 5,
        max_query_length: 6,
    };
    let theirs = reference(windows, 4, 1)
        .answer(&mut Context::new(1), QUESTION, CONTEXT, 3)
        .unwrap();
    assert_same(CONTEXT, &ours, &theirs);

    // A context without words has no answer: success with 0 spans.
    assert!(qa.answer("Who?", " \n\t", &defaults).unwrap().is_empty());
}

#[test]
fn a_batch_answers_each_pair_as_alone() {
    let qa = Qa::load(model_file(), None);
    let pairs = [
        (QUESTION, CONTEXT),
        ("Who?", ""),
        ("Where was the game played?", CONTEXT),
        (
            "Who lost?",
            "Carolina Panthers lost to Denver Broncos, 24–10.",
        ),
    ];
    let mut p = bert_qa_default_params();
    p.n_best = 4;
    p.max_seq_length = 48;
    p.batch_size = 3;
    let q: Vec<*const c_char> = pairs.iter().map(|p| p.0.as_ptr().cast()).collect();
    let ql: Vec<usize> = pairs.iter().map(|p| p.0.len()).collect();
    let c: Vec<*const c_char> = pairs.iter().map(|p| p.1.as_ptr().cast()).collect();
    let cl: Vec<usize> = pairs.iter().map(|p| p.1.len()).collect();
    let mut needed = 0;
    // SAFETY: handles from `load`; arrays of n_pairs entries; NULL spans with capacity 0 is
    // a size query.
    let s = unsafe {
        bert_qa_answer_batch(
            qa.ctx,
            qa.qa,
            q.as_ptr(),
            ql.as_ptr(),
            c.as_ptr(),
            cl.as_ptr(),
            pairs.len(),
            &p,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            &mut needed,
        )
    };
    assert_eq!((s, needed), (BERT_ERROR_BUFFER_TOO_SMALL, 16));
    let mut spans = vec![bert_qa_span::default(); needed];
    let mut counts = vec![usize::MAX; pairs.len()];
    // SAFETY: as above, with buffers of the sizes asked for.
    let s = unsafe {
        bert_qa_answer_batch(
            qa.ctx,
            qa.qa,
            q.as_ptr(),
            ql.as_ptr(),
            c.as_ptr(),
            cl.as_ptr(),
            pairs.len(),
            &p,
            spans.as_mut_ptr(),
            spans.len(),
            counts.as_mut_ptr(),
            &mut needed,
        )
    };
    assert_eq!(s, BERT_OK, "{}", last_error());
    assert_eq!(counts[1], 0);
    for (i, (question, context)) in pairs.iter().enumerate() {
        let alone = qa.answer(question, context, &p).unwrap();
        let batched = &spans[i * 4..i * 4 + counts[i]];
        assert_eq!(batched, &alone[..], "pair {i}");
    }
    assert_eq!(counts[0], 4);
}

#[test]
fn misuse_is_a_status_with_a_message() {
    let qa = Qa::load(model_file(), None);
    let defaults = bert_qa_default_params();
    let mut spans = vec![bert_qa_span::default(); 2000];
    let mut n = 7;
    let q = QUESTION.as_ptr().cast::<c_char>();
    let c = CONTEXT.as_ptr().cast::<c_char>();
    // SAFETY: every pointer is valid or NULL, as each case says; NULLs are checked.
    unsafe {
        let call = |ctx, h, qp, cp, params, sp: *mut bert_qa_span, cap, out: *mut usize| {
            bert_qa_answer(
                ctx,
                h,
                qp,
                QUESTION.len(),
                cp,
                CONTEXT.len(),
                params,
                sp,
                cap,
                out,
            )
        };
        let sp = spans.as_mut_ptr();
        let nul = std::ptr::null_mut();
        assert_eq!(
            call(nul, qa.qa, q, c, &defaults, sp, 20, &mut n),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(n, 0, "out_n is cleared on failure");
        assert_eq!(
            call(qa.ctx, std::ptr::null(), q, c, &defaults, sp, 20, &mut n),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(last_error(), "qa is NULL");
        assert_eq!(
            call(
                qa.ctx,
                qa.qa,
                std::ptr::null(),
                c,
                &defaults,
                sp,
                20,
                &mut n
            ),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(
            call(qa.ctx, qa.qa, q, c, &defaults, sp, 20, std::ptr::null_mut()),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(
            call(qa.ctx, qa.qa, q, c, &defaults, nul.cast(), 20, &mut n),
            BERT_ERROR_NULL_ARGUMENT
        );
        // Size query: capacity below n_best runs nothing and says how many.
        assert_eq!(
            call(qa.ctx, qa.qa, q, c, &defaults, nul.cast(), 0, &mut n),
            BERT_ERROR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 20);
        assert_eq!(
            call(qa.ctx, qa.qa, q, c, &defaults, sp, 19, &mut n),
            BERT_ERROR_BUFFER_TOO_SMALL
        );
        let bad_utf8 = b"caf\xe9";
        assert_eq!(
            bert_qa_answer(
                qa.ctx,
                qa.qa,
                q,
                QUESTION.len(),
                bad_utf8.as_ptr().cast(),
                4,
                &defaults,
                sp,
                20,
                &mut n
            ),
            BERT_ERROR_INVALID_UTF8
        );
        for (field, value, message) in [
            (0, 0, "n_best is 0"),
            (0, BERT_QA_MAX_N_BEST + 1, "n_best is 1025"),
            (1, 0, "max_answer_length is 0"),
            (
                2,
                100_000,
                "max_seq_length 100000 exceeds the model's 512 positions",
            ),
            (5, 400, "max_seq_length (384) must be greater"),
            (3, 1000, "doc_stride (1000) must be at least 1 and smaller"),
            (4, 0, ""),
        ] {
            let mut p = bert_qa_default_params();
            match field {
                0 => p.n_best = value,
                1 => p.max_answer_length = value,
                2 => p.max_seq_length = value,
                3 => p.doc_stride = value,
                4 => p.batch_size = value,
                _ => p.max_query_length = value,
            }
            assert_eq!(
                call(qa.ctx, qa.qa, q, c, &p, sp, 2000, &mut n),
                BERT_ERROR_INVALID_ARGUMENT,
                "{message}"
            );
            assert!(last_error().contains(message), "{}", last_error());
        }
        let mut p = defaults;
        p.size = 8;
        assert_eq!(
            call(qa.ctx, qa.qa, q, c, &p, sp, 20, &mut n),
            BERT_ERROR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("bert_qa_params.size is 8"));

        // A context of another model.
        let other = Qa::load(model_file(), None);
        assert_eq!(
            call(other.ctx, qa.qa, q, c, &defaults, sp, 20, &mut n),
            BERT_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(last_error(), "context was not made from bert_qa_model(qa)");

        // The borrowed model is not the caller's to free.
        bert_model_free(bert_qa_model(qa.qa).cast_mut());
        assert!(last_error().contains("bert_qa_model"), "{}", last_error());
        assert!(bert_qa_model(std::ptr::null()).is_null());
        bert_qa_free(std::ptr::null_mut());

        // Batch: NULL counts with pairs, NULL texts.
        let qs = [q];
        let cs = [c];
        let (ql, cl) = ([QUESTION.len()], [CONTEXT.len()]);
        let batch = |qs: *const *const c_char, counts: *mut usize| {
            bert_qa_answer_batch(
                qa.ctx,
                qa.qa,
                qs,
                ql.as_ptr(),
                cs.as_ptr(),
                cl.as_ptr(),
                1,
                &defaults,
                sp,
                20,
                counts,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(
            batch(qs.as_ptr(), std::ptr::null_mut()),
            BERT_ERROR_NULL_ARGUMENT
        );
        assert_eq!(batch(std::ptr::null(), &mut n), BERT_ERROR_NULL_ARGUMENT);
        assert_eq!(batch(qs.as_ptr(), &mut n), BERT_OK);
        assert_eq!(n, 20);
        let mut len = 1;
        assert_eq!(
            bert_qa_answer_batch(
                qa.ctx,
                qa.qa,
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                0,
                std::ptr::null(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut len
            ),
            BERT_OK
        );
        assert_eq!(len, 0);
    }
}

#[test]
fn loading_checks_the_file_and_the_head() {
    let mut qa = 1usize as *mut bert_qa;
    // SAFETY: valid (or NULL, checked) paths and out-pointers.
    unsafe {
        let missing = c"/nonexistent/squad.bert";
        assert_eq!(
            bert_qa_load_file(missing.as_ptr(), std::ptr::null(), &mut qa),
            BERT_ERROR_IO
        );
        assert!(qa.is_null());
        // The tiny checkpoint has no span head: the missing tensor is named.
        let ckpt = c_path(&tiny().join("bert_model.ckpt"));
        assert_eq!(
            bert_qa_load_file(ckpt.as_ptr(), std::ptr::null(), &mut qa),
            BERT_ERROR_NOT_A_CLASSIFIER
        );
        // The message names what is missing and where, and does not call a QA model a
        // classifier; nor does the status text alone.
        let e = last_error();
        assert!(
            e.contains("cls/squad/output_weights")
                && e.contains("bert_model.ckpt")
                && !e.contains("classifier"),
            "{e}"
        );
        let text = CStr::from_ptr(bert_status_string(BERT_ERROR_NOT_A_CLASSIFIER));
        assert!(text.to_string_lossy().contains("span head"), "{text:?}");
        assert_eq!(
            bert_qa_load_file(std::ptr::null(), std::ptr::null(), &mut qa),
            BERT_ERROR_NULL_ARGUMENT
        );
        let path = c_path(model_file());
        assert_eq!(
            bert_qa_load_file(path.as_ptr(), std::ptr::null(), std::ptr::null_mut()),
            BERT_ERROR_NULL_ARGUMENT
        );
        let mut mp = bert_model_default_params();
        mp.backend = 99;
        assert_eq!(
            bert_qa_load_file(path.as_ptr(), &mp, &mut qa),
            BERT_ERROR_UNSUPPORTED
        );
        // An int8 encoder answers (the head stays f32); its answers are its own.
        let mut mp = bert_model_default_params();
        mp.dtype = BERT_DTYPE_INT8;
        mp.verify_checksums = 1;
        assert_eq!(
            bert_qa_load_file(path.as_ptr(), &mp, &mut qa),
            BERT_OK,
            "{}",
            last_error()
        );
        bert_qa_free(qa);
    }
}

extern "C" fn stop(calls: *mut c_void) -> i32 {
    // SAFETY: the test passes a pointer to its counter, alive for the context.
    let calls = unsafe { &mut *calls.cast::<u32>() };
    *calls += 1;
    1
}

#[test]
fn the_contexts_abort_callback_cancels_an_answer() {
    let mut calls = 0u32;
    let mut cp = bert_context_default_params();
    cp.n_threads = 1;
    cp.abort_callback = Some(stop);
    cp.abort_user_data = (&mut calls as *mut u32).cast();
    let qa = Qa::load(model_file(), Some(&cp));
    let e = qa.answer(QUESTION, CONTEXT, &bert_qa_default_params());
    assert_eq!(e, Err(BERT_ERROR_CANCELLED));
    assert_eq!(calls, 1);
}

#[test]
fn threads_share_one_answerer_each_with_its_own_context() {
    let qa = Qa::load(model_file(), None);
    let p = bert_qa_default_params();
    let alone = qa.answer(QUESTION, CONTEXT, &p).unwrap();
    // The header's rule: a bert_qa is immutable and shared; a context is per thread.
    struct Shared(*mut bert_qa);
    // SAFETY: bert_qa is documented immutable and thread-safe; only contexts are per thread.
    unsafe impl Sync for Shared {}
    let shared = Shared(qa.qa);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (shared, alone) = (&shared, &alone);
            s.spawn(move || {
                let mut ctx = std::ptr::null_mut();
                let mut cp = bert_context_default_params();
                cp.n_threads = 1;
                let mut spans = vec![bert_qa_span::default(); 20];
                let mut n = 0;
                // SAFETY: the shared answerer outlives the scope; this thread's own context
                // is made from its model and freed before the thread ends.
                unsafe {
                    assert_eq!(
                        bert_context_new(bert_qa_model(shared.0), &cp, &mut ctx),
                        BERT_OK
                    );
                    for _ in 0..3 {
                        let s = bert_qa_answer(
                            ctx,
                            shared.0,
                            QUESTION.as_ptr().cast(),
                            QUESTION.len(),
                            CONTEXT.as_ptr().cast(),
                            CONTEXT.len(),
                            std::ptr::null(),
                            spans.as_mut_ptr(),
                            spans.len(),
                            &mut n,
                        );
                        assert_eq!(s, BERT_OK);
                        assert_eq!(&spans[..n], &alone[..]);
                    }
                    bert_context_free(ctx);
                }
            });
        }
    });
}
