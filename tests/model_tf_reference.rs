//! Conformance with Google's `modeling.py`: the `tf_bert_tiny` checkpoint and the outputs the
//! original TF code computed from it (`fixtures/tf_bert_tiny/reference`, see its README §2).
//!
//! Tolerance: README §4 measured that two correct float32 implementations differ by up to
//! ~1e-5 on these tensors (9.4e-6 worst); we require 1e-5 as the brief asks, and the common
//! near-misses (erf GELU ≈1e-3, eps 1e-5 ≈5e-2, missing mask ≈5) fail it by orders of magnitude.

mod common;

use common::{max_abs_diff, TinyBatch};

use std::path::PathBuf;

use bert::{Backend, Cpu};
use bert::{BertModel, Context, Inputs, Pooling};

const TOL: f32 = 1e-5;

fn fixture() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

/// `reference/NAME`, an `.npy` of `<f4` values.
fn npy_f32(name: &str) -> Vec<f32> {
    common::npy_f32(&fixture().join("reference"), name)
}

/// The batch the reference outputs were computed on.
fn reference_inputs() -> TinyBatch {
    TinyBatch::from_npy(&fixture().join("reference"), "")
}

#[test]
fn every_layer_and_pooled_output_match_modeling_py() {
    let model = BertModel::load(fixture()).unwrap();
    assert!(model.has_pooler());
    let r = reference_inputs();
    let mut ctx = Context::new(2);
    let out = model.forward(&mut ctx, &r.inputs(), true).unwrap();
    // All positions, padding included (README §2: padding is computed like any position).
    let checks: [(&str, &[f32]); 5] = [
        ("embedding_output.npy", out.embedding_output().unwrap()),
        ("encoder_layer_0.npy", out.encoder_layer(0).unwrap()),
        ("encoder_layer_1.npy", out.encoder_layer(1).unwrap()),
        ("encoder_layer_1.npy", out.sequence_output()),
        ("pooled_output.npy", out.pooled_output().unwrap()),
    ];
    for (file, ours) in checks {
        let want = npy_f32(file);
        let d = max_abs_diff(ours, &want);
        eprintln!("{file}: max abs diff {d:e}");
        assert!(d <= TOL, "{file}: max abs diff {d:e} > {TOL:e}");
    }
}

#[test]
fn sequences_do_not_depend_on_their_batch() {
    // Each example alone, cut to its real length, must reproduce its rows of the batched
    // reference (masked keys contribute exactly 0 after softmax; only summation order moves).
    let model = BertModel::load(fixture().join("bert_model.ckpt")).unwrap();
    let r = reference_inputs();
    let want = npy_f32("encoder_layer_1.npy");
    let want_pooled = npy_f32("pooled_output.npy");
    let h = model.config().hidden_size;
    let mut ctx = Context::new(1);
    for b in [0, 3, 11, 19] {
        let row = &r.ids[b * r.seq..][..r.seq];
        let len = r.mask[b * r.seq..][..r.seq]
            .iter()
            .filter(|&&m| m == 1)
            .count();
        let out = model
            .forward(
                &mut ctx,
                &Inputs {
                    input_ids: &row[..len],
                    segment_ids: &r.segments[b * r.seq..][..len],
                    input_mask: &[],
                    batch: 1,
                    seq: len,
                },
                false,
            )
            .unwrap();
        let d = max_abs_diff(out.sequence_output(), &want[b * r.seq * h..][..len * h]);
        assert!(d <= TOL, "example {b}: {d:e}");
        let d = max_abs_diff(out.pooled_output().unwrap(), &want_pooled[b * h..][..h]);
        assert!(d <= TOL, "example {b} pooled: {d:e}");
    }
}

#[test]
fn embed_poolings() {
    let model = BertModel::load(fixture()).unwrap();
    let r = reference_inputs();
    let last = npy_f32("encoder_layer_1.npy");
    let pooled = npy_f32("pooled_output.npy");
    let (h, s) = (model.config().hidden_size, r.seq);
    let inputs = r.examples(0..4);
    let mut ctx = Context::new(1);
    for pooling in [Pooling::Cls, Pooling::Mean, Pooling::Max, Pooling::Pooler] {
        for normalize in [false, true] {
            let got = model
                .embed(&mut ctx, &inputs, pooling, normalize)
                .unwrap()
                .to_vec();
            for b in 0..4 {
                let mut want = vec![0.0f32; h];
                let real: Vec<usize> = (0..s).filter(|&t| r.mask[b * s + t] == 1).collect();
                for (j, w) in want.iter_mut().enumerate() {
                    let col = real.iter().map(|&t| last[(b * s + t) * h + j]);
                    *w = match pooling {
                        Pooling::Cls => last[b * s * h + j],
                        Pooling::Mean => col.sum::<f32>() / real.len() as f32,
                        Pooling::Max => col.fold(f32::NEG_INFINITY, f32::max),
                        Pooling::Pooler => pooled[b * h + j],
                    };
                }
                if normalize {
                    let n = want.iter().map(|v| v * v).sum::<f32>().sqrt();
                    want.iter_mut().for_each(|v| *v /= n);
                }
                let d = max_abs_diff(&got[b * h..][..h], &want);
                assert!(
                    d <= TOL,
                    "{pooling:?} normalize={normalize} example {b}: {d:e}"
                );
            }
        }
    }
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let model = BertModel::load(fixture()).unwrap();
    let mut ctx = Context::new(1);
    let ids = [101u32, 7592, 102];
    let cases: [(Inputs, &str); 6] = [
        (
            Inputs {
                input_ids: &ids,
                segment_ids: &[],
                input_mask: &[],
                batch: 1,
                seq: 4,
            },
            "needs 4",
        ),
        (
            Inputs {
                input_ids: &[101, 30522],
                segment_ids: &[],
                input_mask: &[],
                batch: 1,
                seq: 2,
            },
            "vocab_size",
        ),
        (
            Inputs {
                input_ids: &ids,
                segment_ids: &[0, 0, 2],
                input_mask: &[],
                batch: 1,
                seq: 3,
            },
            "type_vocab_size",
        ),
        (
            Inputs {
                input_ids: &ids,
                segment_ids: &[],
                input_mask: &[1, 2, 1],
                batch: 1,
                seq: 3,
            },
            "0 or 1",
        ),
        (
            Inputs {
                input_ids: &[],
                segment_ids: &[],
                input_mask: &[],
                batch: 0,
                seq: 3,
            },
            "empty",
        ),
        (
            Inputs {
                input_ids: &[0; 513],
                segment_ids: &[],
                input_mask: &[],
                batch: 1,
                seq: 513,
            },
            "max_position_embeddings",
        ),
    ];
    for (inputs, want) in cases {
        let err = model.forward(&mut ctx, &inputs, false).unwrap_err();
        assert_eq!(err.code(), 7, "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn pretraining_heads_match_run_pretraining_py() {
    let w = bert::weights::tf_checkpoint::load(fixture()).unwrap();
    let config = bert::BertConfig::from_file(fixture().join("bert_config.json")).unwrap();
    let model = BertModel::from_weights(config.clone(), &w).unwrap();
    let mut heads = bert::heads::PreTrainingHeads::load(&Cpu, &w, &config, false).unwrap();
    let mlm = TinyBatch::from_npy(&fixture().join("reference"), "mlm_");
    let positions = common::npy_u32(&fixture().join("reference"), "masked_lm_positions.npy");
    let (batch, seq) = (mlm.batch, mlm.seq);
    let mut ctx = Context::new(1);
    let out = model.forward(&mut ctx, &mlm.inputs(), false).unwrap();
    let h = config.hidden_size;
    let (sequence, pooled) = (
        out.sequence_output().to_vec(),
        out.pooled_output().unwrap().to_vec(),
    );
    // The sequence output at each masked position.
    let x = common::gather_positions(&sequence, &positions, batch, seq, h);
    let n = positions.len();
    let mut ex = Cpu.exec(1);
    heads
        .masked_lm_logits(&mut ex, &model, &x, n, false)
        .unwrap();
    let mut nsp = Vec::new();
    heads.next_sentence_logits(&mut ex, &pooled, batch, &mut nsp);
    let checks: [(&str, &[f32]); 5] = [
        ("mlm_sequence_output.npy", &sequence),
        ("mlm_pooled_output.npy", &pooled),
        (
            "mlm_transform_output.npy",
            &heads.transform_output()[..n * h],
        ),
        ("mlm_logits.npy", &heads.logits()[..n * config.vocab_size]),
        ("nsp_logits.npy", &nsp[..batch * 2]),
    ];
    for (file, ours) in checks {
        let want = npy_f32(file);
        let d = max_abs_diff(ours, &want);
        eprintln!("{file}: max abs diff {d:e}");
        assert!(d <= TOL, "{file}: max abs diff {d:e} > {TOL:e}");
    }
}
