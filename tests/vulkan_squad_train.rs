//! SQuAD fine-tuning on the Vulkan device against Google's `run_squad.py` +
//! `optimization.py`: the three steps of `fixtures/tf_bert_tiny/squad_finetune_reference`
//! (dropout off, lr 5e-5, 2 warm-up steps of 10; `tests/squad_train_reference.rs` runs them
//! on the CPU) with the trainer, model and span head on the Vulkan back end.
//!
//! Tolerances as on the CPU: loss 1e-5 absolute, gradient norm 1e-5 relative, every
//! variable after step 3 1e-6 absolute (an update moves a variable by about 5e-5, so a
//! looser bound would pass a run that skipped one).
#![cfg(feature = "vulkan")]

mod common;

use common::{max_abs_diff, npy_f32, npy_u32, stored_rows};

use std::path::PathBuf;

use bert::heads::SquadHead;
use bert::train::{AdamWConfig, Schedule, Trainer};
use bert::weights::Tensor;
use bert::{BertConfig, BertModel, Inputs};

fn dir() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny/squad_finetune_reference")
}

#[test]
fn three_squad_steps_on_the_device_match_tensorflow() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("index.json")).unwrap()).unwrap();
    let config = BertConfig::from_file(dir().join("bert_config.json")).unwrap();
    let mut w = bert::weights::tf_checkpoint::load(dir().join("../bert_model.ckpt")).unwrap();
    for (name, shape) in [("output_weights", vec![2, 128]), ("output_bias", vec![2])] {
        let values = npy_f32(&dir(), &format!("initial/cls/squad/{name}.npy"));
        w.insert(
            format!("cls/squad/{name}"),
            Tensor::new(shape, values).unwrap(),
        );
    }
    let (ids, segments, mask) = (
        npy_u32(&dir(), "input_ids.npy"),
        npy_u32(&dir(), "segment_ids.npy"),
        npy_u32(&dir(), "input_mask.npy"),
    );
    let inputs = Inputs {
        input_ids: &ids,
        segment_ids: &segments,
        input_mask: &mask,
        batch: 8,
        seq: 128,
    };
    let (starts, ends) = (
        npy_u32(&dir(), "start_positions.npy"),
        npy_u32(&dir(), "end_positions.npy"),
    );
    let spans: Vec<[u32; 2]> = starts.iter().zip(&ends).map(|(&s, &e)| [s, e]).collect();

    let o = &json["optimizer"];
    let schedule = Schedule {
        init_lr: o["init_lr"].as_f64().unwrap() as f32,
        num_train_steps: o["num_train_steps"].as_u64().unwrap(),
        num_warmup_steps: o["num_warmup_steps"].as_u64().unwrap(),
    };
    let model = BertModel::build(vk.clone(), config, &w, true).unwrap();
    let head = SquadHead::load(&vk, &w, 128, true).unwrap();
    let mut t = Trainer::new(model, head, schedule, AdamWConfig::default(), 0, 1).unwrap();
    t.set_dropout(false);
    for (s, step) in json["steps"].as_array().unwrap().iter().enumerate() {
        let r = t.step(&inputs, &spans).unwrap();
        let want_loss = step["loss"].as_f64().unwrap() as f32;
        let want_norm = step["global_grad_norm_before_clipping"].as_f64().unwrap();
        let (dl, dn) = ((r.loss - want_loss).abs(), (r.grad_norm - want_norm).abs());
        eprintln!("step {}: |Δloss| {dl:.3e}, |Δnorm| {dn:.3e}", s + 1);
        assert!(dl <= 1e-5 && dn <= 1e-5 * want_norm);
        assert_eq!(r.global_step, s as u64 + 1);
    }

    // Every variable, the pooler included (no gradient: it must not move).
    let after = t.weights().unwrap();
    let row_ids = npy_u32(&dir(), "word_embeddings_row_ids.npy");
    let mut worst = 0.0f32;
    for v in json["trainable_variables"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let want = npy_f32(&dir(), v["after_step3"].as_str().unwrap());
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap() as usize)
            .collect();
        let got = stored_rows(name, after.get(name, &shape).unwrap(), &row_ids, 128);
        let diff = max_abs_diff(&got, &want);
        worst = worst.max(diff);
        assert!(diff <= 1e-6, "{name}: max |Δ| {diff}");
    }
    eprintln!("after step 3 on the device: worst max |Δ| over all variables {worst:.3e}");
}
