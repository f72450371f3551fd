//! all-MiniLM-L6-v2 (Hugging Face safetensors, erf GELU) against an independent reference:
//! the NumPy BERT of `bench/bert_ref.py` in float64, each sentence run alone, stored in
//! `tests/data/minilm_reference.{json,bin}` by `scripts/make_minilm_reference.py`.
//!
//! Tolerance 1e-4 absolute (the brief's): our float32 against a float64 reference through six
//! layers; measured values are printed with `--nocapture`.

mod common;

use bert::{Activation, BertModel, Context, Inputs, Pooling};
use serde_json::Value;

const TOL: f32 = 1e-4;

struct Sentence {
    ids: Vec<u32>,
    segments: Vec<u32>,
    last_hidden: Vec<f32>,
    pooled: Vec<f32>,
    embedding: Vec<f32>,
}

fn reference() -> Vec<Sentence> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("minilm_reference.json")).unwrap())
            .unwrap();
    let raw = std::fs::read(dir.join("minilm_reference.bin")).unwrap();
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values.len() as u64, meta["values"].as_u64().unwrap());
    let h = meta["hidden_size"].as_u64().unwrap() as usize;
    let ints = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    meta["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids = ints(&s["input_ids"]);
            let at = |k: &str, n: usize| {
                let o = s[k].as_u64().unwrap() as usize;
                values[o..o + n].to_vec()
            };
            Sentence {
                segments: ints(&s["segment_ids"]),
                last_hidden: at("last_hidden_offset", ids.len() * h),
                pooled: at("pooled_offset", h),
                embedding: at("embedding_offset", h),
                ids,
            }
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn each_sentence_alone_matches_the_reference() {
    let model = BertModel::load(common::minilm_dir()).unwrap();
    assert_eq!(model.config().hidden_act, Activation::GeluErf);
    assert_eq!(model.config().num_hidden_layers, 6);
    let sentences = reference();
    assert!(sentences.len() >= 20);
    let mut ctx = Context::new(2);
    let (mut worst, mut worst_pooled, mut worst_emb) = (0f32, 0f32, 0f32);
    for (i, s) in sentences.iter().enumerate() {
        let inputs = Inputs {
            input_ids: &s.ids,
            segment_ids: &s.segments,
            input_mask: &[],
            batch: 1,
            seq: s.ids.len(),
        };
        let out = model.forward(&mut ctx, &inputs, false).unwrap();
        let d = max_abs_diff(out.sequence_output(), &s.last_hidden);
        assert!(d <= TOL, "sentence {i}: last hidden max abs diff {d:e}");
        worst = worst.max(d);
        let d = max_abs_diff(out.pooled_output().unwrap(), &s.pooled);
        assert!(d <= TOL, "sentence {i}: pooled max abs diff {d:e}");
        worst_pooled = worst_pooled.max(d);
        let e = model.embed(&mut ctx, &inputs, Pooling::Mean, true).unwrap();
        let d = max_abs_diff(e, &s.embedding);
        assert!(d <= TOL, "sentence {i}: embedding max abs diff {d:e}");
        worst_emb = worst_emb.max(d);
    }
    eprintln!(
        "MiniLM alone: last hidden {worst:e}, pooled {worst_pooled:e}, embedding {worst_emb:e}"
    );
}

#[test]
fn padded_batch_matches_the_reference() {
    // Load through the .safetensors file path this time (config.json read from beside it).
    let model = BertModel::load(common::minilm_dir().join("model.safetensors")).unwrap();
    let sentences = reference();
    let h = model.config().hidden_size;
    let seq = sentences.iter().map(|s| s.ids.len()).max().unwrap();
    let batch = sentences.len();
    let (mut ids, mut segs, mut mask) = (
        vec![0u32; batch * seq],
        vec![0; batch * seq],
        vec![0; batch * seq],
    );
    for (b, s) in sentences.iter().enumerate() {
        let n = s.ids.len();
        ids[b * seq..][..n].copy_from_slice(&s.ids);
        segs[b * seq..][..n].copy_from_slice(&s.segments);
        mask[b * seq..][..n].fill(1);
    }
    let inputs = Inputs {
        input_ids: &ids,
        segment_ids: &segs,
        input_mask: &mask,
        batch,
        seq,
    };
    let mut ctx = Context::new(2);
    let out = model.forward(&mut ctx, &inputs, true).unwrap();
    let last = out.sequence_output();
    assert_eq!(last, out.encoder_layer(5).unwrap());
    let mut worst = 0f32;
    for (b, s) in sentences.iter().enumerate() {
        let n = s.ids.len();
        let d = max_abs_diff(&last[b * seq * h..][..n * h], &s.last_hidden);
        assert!(d <= TOL, "sentence {b} in the padded batch: {d:e}");
        worst = worst.max(d);
        let d = max_abs_diff(&out.pooled_output().unwrap()[b * h..][..h], &s.pooled);
        assert!(d <= TOL, "sentence {b} pooled in the padded batch: {d:e}");
    }
    let emb = model.embed(&mut ctx, &inputs, Pooling::Mean, true).unwrap();
    for (b, s) in sentences.iter().enumerate() {
        let d = max_abs_diff(&emb[b * h..][..h], &s.embedding);
        assert!(
            d <= TOL,
            "sentence {b} embedding in the padded batch: {d:e}"
        );
    }
    eprintln!("MiniLM padded batch ({batch} x {seq}): last hidden {worst:e}");
}
