//! Google's references on the Vulkan device (lavapipe in CI), for what tests/vulkan_model.rs
//! leaves out: the pre-training heads (`run_pretraining.py`'s masked-LM transform and logits,
//! next-sentence logits on `tf_bert_tiny`) and `bert extract-features --backend vulkan`,
//! which must equal the CPU's output to 4 decimals and Google's `extract_features.py` output
//! within 1e-4.
#![cfg(feature = "vulkan")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bert::backend::vulkan::Vulkan;
use bert::backend::Backend;
use bert::heads::PreTrainingHeads;
use bert::{BertConfig, BertModel, Context};
use common::max_abs_diff;
use serde_json::Value;

const TOL: f32 = 1e-4;

fn tiny() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

fn reference() -> PathBuf {
    tiny().join("reference")
}

#[test]
fn pretraining_heads_on_the_device_match_run_pretraining_py() {
    let Some(vk) = common::vulkan::device() else {
        return;
    };
    let w = bert::weights::tf_checkpoint::load(tiny()).unwrap();
    let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
    let model = BertModel::build(vk.clone(), config.clone(), &w, false).unwrap();
    let mut heads = PreTrainingHeads::load(&vk, &w, &config, false).unwrap();
    let mlm = common::TinyBatch::from_npy(&reference(), "mlm_");
    let positions = common::npy_u32(&reference(), "masked_lm_positions.npy");
    let (batch, seq) = (mlm.batch, mlm.seq);
    let mut ctx = Context::on(&vk, 1);
    let out = model.forward(&mut ctx, &mlm.inputs(), false).unwrap();
    let h = config.hidden_size;
    let sequence = out.read_sequence_output();
    let pooled = out.read_pooled_output().unwrap();
    // The last layer at each masked position (flat index `example * seq + position`),
    // gathered on the host as the trainer's `Rows` would name them.
    let x = common::gather_positions(&sequence, &positions, batch, seq, h);
    let slots = positions.len();
    let mut ex = vk.exec(1);
    let x = vk.upload(&x);
    heads
        .masked_lm_logits(&mut ex, &model, &x, slots, false)
        .unwrap();
    let pooled_buf = vk.upload(&pooled);
    let mut nsp = vk.upload(&vec![0.0; batch * 2]);
    heads.next_sentence_logits(&mut ex, &pooled_buf, batch, &mut nsp);
    let read = |buf: &<Vulkan as Backend>::Buf, n: usize| Vulkan::read(&ex, buf, n).into_owned();
    let checks: [(&str, Vec<f32>); 5] = [
        ("mlm_sequence_output.npy", sequence.to_vec()),
        ("mlm_pooled_output.npy", pooled.to_vec()),
        (
            "mlm_transform_output.npy",
            read(heads.transform_output(), slots * h),
        ),
        (
            "mlm_logits.npy",
            read(heads.logits(), slots * config.vocab_size),
        ),
        ("nsp_logits.npy", read(&nsp, batch * 2)),
    ];
    for (file, ours) in checks {
        let want = common::npy_f32(&reference(), file);
        assert_eq!(ours.len(), want.len(), "{file}: length");
        let d = max_abs_diff(&ours, &want);
        eprintln!("{file}: max abs diff {d:e}");
        assert!(d <= TOL, "{file}: max abs diff {d:e} > {TOL:e}");
    }
}

/// `bert extract-features` on the fixture's input with Google's flags, on `backend`.
fn extract_features(backend: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_bert"))
        .arg("extract-features")
        .arg(format!(
            "--input_file={}",
            reference().join("extract_features_input.txt").display()
        ))
        .arg(format!("--output_file={}", out.display()))
        .arg(format!(
            "--vocab_file={}",
            tiny().join("vocab.txt").display()
        ))
        .arg(format!(
            "--bert_config_file={}",
            tiny().join("bert_config.json").display()
        ))
        .arg(format!(
            "--init_checkpoint={}",
            tiny().join("bert_model.ckpt").display()
        ))
        .args(["--layers=-1,-2", "--max_seq_length=128", "--batch_size=8"])
        .args(["--do_lower_case=True", &format!("--backend={backend}")])
        .status()
        .unwrap();
    assert!(status.success(), "extract-features --backend={backend}");
}

/// Every (token, layer index, value) of an `extract_features.jsonl`, in order.
fn values(path: &Path) -> Vec<(String, i64, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut all = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for f in v["features"].as_array().unwrap() {
            let token = f["token"].as_str().unwrap().to_string();
            for layer in f["layers"].as_array().unwrap() {
                let index = layer["index"].as_i64().unwrap();
                for x in layer["values"].as_array().unwrap() {
                    all.push((token.clone(), index, x.as_f64().unwrap()));
                }
            }
        }
    }
    all
}

/// The largest difference of two outputs that must agree in everything but the values.
fn worst(a: &[(String, i64, f64)], b: &[(String, i64, f64)]) -> f64 {
    assert_eq!(a.len(), b.len(), "number of values");
    a.iter().zip(b).fold(0.0, |w, (x, y)| {
        assert_eq!((&x.0, x.1), (&y.0, y.1), "token and layer");
        w.max((x.2 - y.2).abs())
    })
}

#[test]
fn extract_features_on_the_device_equals_the_cpu_to_4_decimals() {
    if common::vulkan::device().is_none() {
        return;
    }
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let (cpu, gpu) = (
        dir.join(format!("libbert-ef-cpu-{pid}.jsonl")),
        dir.join(format!("libbert-ef-vk-{pid}.jsonl")),
    );
    extract_features("cpu", &cpu);
    extract_features("vulkan", &gpu);
    let (c, g) = (values(&cpu), values(&gpu));
    let google = values(&reference().join("extract_features.jsonl"));
    std::fs::remove_file(&cpu).ok();
    std::fs::remove_file(&gpu).ok();
    assert!(c.len() > 1000, "{} values", c.len());
    // "To 4 decimals": within half a unit of the 4th decimal.
    let vs_cpu = worst(&g, &c);
    let vs_google = worst(&g, &google);
    eprintln!(
        "extract-features --backend vulkan: {vs_cpu:e} from the CPU, {vs_google:e} from Google"
    );
    assert!(vs_cpu <= 5e-5, "vulkan vs cpu: {vs_cpu:e}");
    assert!(vs_google <= TOL as f64, "vulkan vs Google: {vs_google:e}");
}
