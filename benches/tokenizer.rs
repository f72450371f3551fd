//! Tokenizer throughput (not a test): `cargo bench --bench tokenizer -- CORPUS [VOCAB]`.
//!
//! Mirrors `shared/bench/bench_tokenizers.py`: the corpus is read as UTF-8 (invalid bytes
//! replaced), split into its non-blank lines, each line is one input, no special tokens;
//! MB/s counts the lines' UTF-8 bytes (10^6). Reports the median of 5 runs after a warm-up
//! for one thread and for 2 threads (the batch split in two with `std::thread::scope`), and
//! the rate on one 1 MB and one 10 MB line (linear time means equal rates).

use std::time::Instant;

use bert::tokenizer::{Token, Tokenizer, Workspace};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `f` over 5 runs after one warm-up; `f` returns a token count.
fn time(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let n = f();
    let runs = (0..5)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(f(), n);
            t.elapsed().as_secs_f64()
        })
        .collect();
    (median(runs), n)
}

fn tokenize_all(tok: &Tokenizer, lines: &[&str]) -> usize {
    let mut ws = Workspace::default();
    let mut out: Vec<Token<'_>> = Vec::new();
    let mut n = 0;
    for line in lines {
        out.clear();
        tok.tokenize_with(line, &mut ws, &mut out);
        n += out.len();
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let corpus = args.first().expect("usage: tokenizer CORPUS [VOCAB]");
    let vocab = args.get(1).cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/tokenizer/vocab-uncased.txt"
        )
        .into()
    });
    let tok = Tokenizer::from_vocab_file(&vocab, true).expect("vocab");
    let raw = std::fs::read(corpus).expect("corpus");
    let text = String::from_utf8_lossy(&raw);
    let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let report = |what: &str, threads: usize, secs: f64, tokens: usize, nbytes: usize| {
        println!(
            "{{\"impl\": \"libbert\", \"what\": \"{what}\", \"threads\": {threads}, \
             \"bytes\": {nbytes}, \"tokens\": {tokens}, \"median_s\": {secs:.4}, \
             \"MB_per_s\": {:.2}, \"Mtokens_per_s\": {:.3}}}",
            nbytes as f64 / secs / 1e6,
            tokens as f64 / secs / 1e6
        );
    };

    let (s, n) = time(|| tokenize_all(&tok, &lines));
    report("lines", 1, s, n, bytes);

    let (s, n) = time(|| {
        let (a, b) = lines.split_at(lines.len() / 2);
        std::thread::scope(|scope| {
            let h = scope.spawn(|| tokenize_all(&tok, b));
            tokenize_all(&tok, a) + h.join().expect("thread")
        })
    });
    report("lines", 2, s, n, bytes);

    // One long line: a 1 MB slice of the joined corpus, and the same slice 10 times, so
    // both have the same content mix and linear time shows as equal rates.
    let joined = lines.join(" ");
    let mut cut = joined.len().min(1_000_000);
    while !joined.is_char_boundary(cut) {
        cut -= 1;
    }
    let one = format!("{} ", &joined[..cut]);
    for copies in [1usize, 10] {
        let line = one.repeat(copies);
        let (s, n) = time(|| tokenize_all(&tok, &[line.as_str()]));
        report(&format!("one line, {copies} MB"), 1, s, n, line.len());
    }
}
