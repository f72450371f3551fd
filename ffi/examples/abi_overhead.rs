//! What the C ABI costs on top of the Rust API: one 16-position input (batch 1, seq 16:
//! `[CLS]` + 14 tokens + `[SEP]`) embedded through `bert_embed` (pointer checks, UTF-8 check,
//! `catch_unwind`, copies into and out of the context) and through `Pipeline::embed`, same
//! model, same thread count, same process, alternating call by call so that machine load hits
//! both alike. Prints the median time of each, the median of the paired ratios (target:
//! ≤ 1.02) and the boundary's fixed cost alone.
//!
//!   cargo run --release -p bert-ffi --example abi_overhead -- MODEL_DIR [PAIRS]

use std::ffi::CString;
use std::time::Instant;

use bert::{Context, EmbedOptions, Pipeline, Pooling};
use bert_ffi::*;

const TEXT: &str = "The quick brown fox jumps over the lazy dog near the quiet river bank";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: abi_overhead MODEL_DIR [PAIRS]");
    let pairs: usize = args.get(2).map_or(400, |s| s.parse().expect("PAIRS"));
    let reps = 20; // warm-up calls of each

    // Rust API
    let pipeline = Pipeline::load(dir, None).expect("load (Rust)");
    let mut ctx = Context::new(1);
    let opts = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
        ..Default::default()
    };
    let tokens = pipeline.tokenizer().tokenize(TEXT).len();
    assert_eq!(
        tokens, 14,
        "the input must be 16 positions with [CLS] and [SEP]"
    );

    // C ABI (the same entry points libbert.so exports, called through their C signatures)
    let path = CString::new(dir.as_str()).expect("path");
    let mut model = std::ptr::null_mut();
    let mut c = std::ptr::null_mut();
    let mut params = bert_context_default_params();
    params.n_threads = 1;
    // SAFETY: valid NUL-terminated path and out-pointers; the handles are freed at the end.
    unsafe {
        assert_eq!(
            bert_model_load_file(path.as_ptr(), std::ptr::null(), &mut model),
            BERT_OK
        );
        assert_eq!(bert_context_new(model, &params, &mut c), BERT_OK);
    }
    let h = pipeline.model().config().hidden_size;
    let mut out = vec![0f32; h];
    let text_ptr = TEXT.as_ptr().cast::<std::ffi::c_char>();
    let len = TEXT.len();
    let mut c_embed = || {
        // SAFETY: one text of `len` bytes, an output of `h` floats.
        let s = unsafe {
            bert_embed(
                c,
                &text_ptr,
                &len,
                1,
                BERT_POOLING_MEAN,
                1,
                out.as_mut_ptr(),
                h,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(s, BERT_OK);
        out[0]
    };
    let mut rust_embed = || pipeline.embed(&mut ctx, &[TEXT], &opts).expect("embed")[0];

    // Same numbers both ways.
    let via_c = c_embed();
    let via_rust = rust_embed();
    assert_eq!(via_c.to_bits(), via_rust.to_bits(), "C ABI and Rust differ");
    for _ in 0..reps {
        c_embed();
        rust_embed();
    }
    // Pairs of single calls, the order alternating: machine load hits both sides of a pair
    // alike, and the medians ignore the calls a busy machine descheduled.
    let (mut rust, mut cabi, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut sink = 0f32;
    for pair in 0..pairs {
        let mut time = |which: usize| {
            let t = Instant::now();
            sink += if which == 0 { rust_embed() } else { c_embed() };
            t.elapsed().as_secs_f64()
        };
        let (r, a) = if pair % 2 == 0 {
            let r = time(0);
            (r, time(1))
        } else {
            let a = time(1);
            (time(0), a)
        };
        rust.push(r);
        cabi.push(a);
        ratio.push(a / r);
    }
    let (r, a, q) = (median(&mut rust), median(&mut cabi), median(&mut ratio));
    // The boundary's fixed cost alone: a size query returns before any model work, after the
    // pointer checks, the guard (catch_unwind) and the error message.
    let t = Instant::now();
    for _ in 0..10_000 {
        // SAFETY: a size query: no text is read, nothing is written but `needed`.
        let s = unsafe {
            let mut needed = 0usize;
            bert_embed(
                c,
                std::ptr::null(),
                std::ptr::null(),
                1,
                BERT_POOLING_MEAN,
                1,
                std::ptr::null_mut(),
                0,
                &mut needed,
            )
        };
        assert_eq!(s, BERT_ERROR_BUFFER_TOO_SMALL);
    }
    let boundary = t.elapsed().as_secs_f64() / 10_000.0;
    println!(
        "embed (1, 16), 1 thread, {pairs} pairs: Rust API median {:.1} us, C ABI median {:.1} \
         us, ratio of medians {:.4}, median of paired ratios {:.4} ({:+.2}%); boundary alone \
         (size query) {:.2} us = {:.4}% of a call{}",
        r * 1e6,
        a * 1e6,
        a / r,
        q,
        (q - 1.0) * 100.0,
        boundary * 1e6,
        boundary / r * 100.0,
        if sink.is_nan() { " nan" } else { "" }
    );
    // SAFETY: handles made above, freed once, context before model.
    unsafe {
        bert_context_free(c);
        bert_model_free(model);
    }
}
