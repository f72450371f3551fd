//! SQuAD prediction speed (issue 16): a fine-tuned span model on the features of a SQuAD file,
//! against the peer `scripts/bench_squad_peer.py` (ONNX Runtime running the same weights,
//! exported by `bert convert --output model.safetensors`, on the same features).
//! `scripts/bench_squad.sh` runs both in one run and compares the logits.
//!
//! ```text
//! cargo bench --bench squad -- --model model.bert --predict-file dev.json [--seq 384]
//!     [--stride 128] [--batch 8] [--threads 1] [--repeats 3] [--out DIR]
//! ```
//! Prints one JSON line: features/s and questions/s of the encoder + span head (median of the
//! repeats after a warm-up), and separately the seconds of reading + feature conversion and
//! of `write_predictions`. With `--out`, writes the features' `input_ids`, `input_mask`,
//! `segment_ids` (u32) and start/end logits (f32), `[features, seq]` each, for the peer.

use std::io::Write;
use std::time::Instant;

use bert::squad::{self, FeatureOptions, PredictOptions, SquadModel};
use bert::Context;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut model, mut predict_file, mut out) = (String::new(), String::new(), String::new());
    let (mut seq, mut stride, mut batch, mut threads, mut repeats) = (384, 128, 8, 1, 3);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = val(),
            "--predict-file" => predict_file = val(),
            "--out" => out = val(),
            "--seq" => seq = val().parse().expect("--seq"),
            "--stride" => stride = val().parse().expect("--stride"),
            "--batch" => batch = val().parse().expect("--batch"),
            "--threads" => threads = val().parse().expect("--threads"),
            "--repeats" => repeats = val().parse().expect("--repeats"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if model.is_empty() || predict_file.is_empty() {
        eprintln!("usage: cargo bench --bench squad -- --model M.bert --predict-file F.json");
        return;
    }
    let m = SquadModel::load(&model).expect("load");
    let fo = FeatureOptions {
        max_seq_length: seq,
        doc_stride: stride,
        max_query_length: 64,
    };
    let t0 = Instant::now();
    let examples = squad::read_squad_examples(&predict_file, false, false)
        .expect("read")
        .examples;
    let features =
        squad::convert_examples_to_features(&examples, m.tokenizer(), &fo, false).expect("feat");
    let features_s = t0.elapsed().as_secs_f64();
    let mut ctx = Context::new(threads);
    let mut results = m
        .raw_results(&mut ctx, &features, batch, |_, _| {})
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        results = m
            .raw_results(&mut ctx, &features, batch, |_, _| {})
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let po = PredictOptions {
        do_lower_case: m.tokenizer().do_lower_case(),
        ..PredictOptions::default()
    };
    let t = Instant::now();
    squad::compute_predictions(&examples, &features, &results, &po).expect("predictions");
    let write_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"engine\": \"libbert\", \"seq\": {seq}, \"batch\": {batch}, \"threads\": {}, \
         \"features\": {}, \"questions\": {}, \"median_s\": {median:.4}, \
         \"features_per_s\": {:.2}, \"questions_per_s\": {:.2}, \"features_s\": {features_s:.3}, \
         \"write_predictions_s\": {write_s:.3}}}",
        ctx.threads(),
        features.len(),
        examples.len(),
        features.len() as f64 / median,
        examples.len() as f64 / median,
    );
    if !out.is_empty() {
        std::fs::create_dir_all(&out).expect("out dir");
        let dump = |name: &str, bytes: Vec<u8>| {
            let mut f = std::fs::File::create(format!("{out}/{name}")).expect("create");
            f.write_all(&bytes).expect("write");
        };
        let u32s = |get: &dyn Fn(&squad::InputFeatures) -> &Vec<u32>| {
            features
                .iter()
                .flat_map(|f| get(f).iter().flat_map(|x| x.to_le_bytes()))
                .collect::<Vec<u8>>()
        };
        dump("input_ids.u32", u32s(&|f| &f.input_ids));
        dump("input_mask.u32", u32s(&|f| &f.input_mask));
        dump("segment_ids.u32", u32s(&|f| &f.segment_ids));
        let f32s = |end: bool| {
            results
                .iter()
                .flat_map(|r| if end { &r.end_logits } else { &r.start_logits }.iter())
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        dump("start_logits.f32", f32s(false));
        dump("end_logits.f32", f32s(true));
    }
}
