//! all-MiniLM-L6-v2 (Hugging Face safetensors, erf GELU) against an independent reference:
//! the NumPy BERT of `bench/bert_ref.py` in float64, each sentence run alone, stored in
//! `tests/data/minilm_reference.{json,bin}` by `scripts/make_minilm_reference.py`.
//!
//! Tolerance 1e-4 absolute (the brief's): our float32 against a float64 reference through six
//! layers; measured values are printed with `--nocapture`.

mod common;

use common::max_abs_diff;

use bert::{Activation, BertModel, Context, Inputs, Pooling};

const TOL: f32 = 1e-4;

fn reference() -> Vec<common::MinilmSentence> {
    common::minilm_reference()
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
        let d = max_abs_diff(&e, &s.embedding);
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
