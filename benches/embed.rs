//! Texts to vectors end to end (issue 20): `Pipeline::embed` on a file of real texts of mixed
//! length, tokenization included, against the peer `scripts/bench_embed_peer.py` (ONNX
//! Runtime + HF tokenizers as sentence-transformers batches). `scripts/bench_embed.sh` runs
//! both in one run and compares the vectors.
//!
//! ```text
//! cargo bench --bench embed -- --model DIR --texts FILE [--threads 1] [--max-seq 256]
//!     [--repeats 3] [--batch-size N] [--max-batch-tokens N] [--out vectors.f32]
//! ```
//! Prints one JSON line: median wall seconds of the repeats (after one warm-up), texts/s,
//! tokens/s (real tokens, `[CLS]`/`[SEP]` included).

use std::time::Instant;

use bert::{Context, EmbedOptions, Pipeline, Pooling};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut model, mut texts_path, mut out) = (String::new(), String::new(), String::new());
    let (mut threads, mut max_seq, mut repeats) = (1usize, 256usize, 3usize);
    let mut opts = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
        ..EmbedOptions::default()
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = val(),
            "--texts" => texts_path = val(),
            "--out" => out = val(),
            "--threads" => threads = val().parse().expect("--threads"),
            "--max-seq" => max_seq = val().parse().expect("--max-seq"),
            "--repeats" => repeats = val().parse().expect("--repeats"),
            "--batch-size" => opts.batch_size = val().parse().expect("--batch-size"),
            "--max-batch-tokens" => {
                opts.max_batch_tokens = val().parse().expect("--max-batch-tokens")
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if model.is_empty() || texts_path.is_empty() {
        eprintln!("usage: cargo bench --bench embed -- --model DIR --texts FILE [--threads N]");
        return;
    }
    opts.max_seq_length = Some(max_seq);
    let pipeline = Pipeline::load(&model, None).expect("load");
    let text = std::fs::read_to_string(&texts_path).expect("texts");
    let texts: Vec<&str> = text.lines().collect();
    let mut ctx = Context::new(threads);
    let run = |ctx: &mut Context| pipeline.embed(ctx, &texts, &opts).expect("embed");
    run(&mut ctx); // warm-up
    let mut times = Vec::new();
    let mut vectors = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        vectors = run(&mut ctx);
        times.push(t.elapsed().as_secs_f64());
    }
    let tokens: usize = texts
        .iter()
        .map(|t| pipeline.tokenizer().tokenize(t).len().min(max_seq - 2) + 2)
        .sum();
    if !out.is_empty() {
        let bytes: Vec<u8> = vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&out, bytes).expect("write vectors");
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"peer\":\"libbert\",\"threads\":{threads},\"texts\":{},\"tokens\":{tokens},\"median_s\":{median:.4},\"min_s\":{:.4},\"texts_per_s\":{:.1},\"tokens_per_s\":{:.0}}}",
        texts.len(),
        times[0],
        texts.len() as f64 / median,
        tokens as f64 / median
    );
}
