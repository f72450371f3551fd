//! `--backend` on the prediction paths of `bert classify` and `bert squad` (lavapipe in
//! CI): `--backend vulkan` writes what `--backend cpu` writes — the same predictions and
//! accuracy, probabilities and logits within 1e-4 (the Vulkan back end's tolerance, see
//! tests/vulkan_model.rs) — and a machine without a driver is an error saying why for
//! `vulkan`, the CPU for `auto`.
//!
//! Models: `tf_bert_tiny` with the fine-tuning references' initial heads (two of the
//! classifier's three labels for SST-2), saved as `.bert` files. Without a Vulkan device the
//! tests fail unless `LIBBERT_SKIP_VULKAN=1`.
#![cfg(feature = "vulkan")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bert::tokenizer::Tokenizer;
use bert::weights::{Tensor, Weights};
use bert::BertConfig;
use common::{max_abs_diff, npy_f32};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn tiny() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-vulkan-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The tiny checkpoint with `heads` (name, values, shape) added.
fn tiny_with(heads: Vec<(&str, Vec<f32>, Vec<usize>)>) -> (BertConfig, Weights, Tokenizer) {
    let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
    let mut w = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
    for (name, values, shape) in heads {
        w.insert(name, Tensor::new(shape, values).unwrap());
    }
    let tokenizer = Tokenizer::from_vocab_file(tiny().join("vocab.txt"), true).unwrap();
    (config, w, tokenizer)
}

fn bert(cmd: &str, args: &[String], env: &[(&str, &str)]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_bert"))
        .arg(cmd)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    // An error is an exit status of 1 with a message, never a panic (101).
    assert!(matches!(o.status.code(), Some(0 | 1)), "{o:?}");
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The numbers of `eval_results.txt` (`key = value` lines).
fn eval_results(dir: &Path) -> Vec<(String, f32)> {
    std::fs::read_to_string(dir.join("eval_results.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// The probabilities of `test_results.tsv`, rows end to end.
fn test_results(dir: &Path) -> Vec<f32> {
    std::fs::read_to_string(dir.join("test_results.tsv"))
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn classify_eval_and_predict_on_vulkan_write_what_the_cpu_writes() {
    let Some(_) = common::vulkan::device() else {
        return;
    };
    let work = tmp("classify");
    // SST-2 (labels 0, 1): the first 120 dev sentences; without test.tsv the prediction
    // runs on them too.
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let dev =
        std::fs::read_to_string(common::shared_dir().join("data/glue/SST-2/dev.tsv")).unwrap();
    let rows: Vec<&str> = dev.lines().take(121).collect();
    std::fs::write(data.join("dev.tsv"), rows.join("\n") + "\n").unwrap();
    let head = tiny().join("finetune_reference/initial");
    let (config, w, tok) = tiny_with(vec![
        (
            "output_weights",
            npy_f32(&head, "output_weights.npy")[..2 * 128].to_vec(),
            vec![2, 128],
        ),
        (
            "output_bias",
            npy_f32(&head, "output_bias.npy")[..2].to_vec(),
            vec![2],
        ),
    ]);
    let model = work.join("model.bert");
    let labels = ["0".to_string(), "1".to_string()];
    bert::classifier::save(&model, &config, &w, &tok, &labels).unwrap();
    let run = |backend: &str, env: &[(&str, &str)]| -> (PathBuf, Output) {
        let out = work.join(backend);
        let args = [
            "--task_name=sst-2".to_string(),
            format!("--data_dir={}", data.display()),
            format!("--output_dir={}", out.display()),
            format!("--model={}", model.display()),
            "--do_eval".into(),
            "--do_predict".into(),
            "--max_seq_length=64".into(),
            "--eval_batch_size=16".into(),
            "--predict_batch_size=7".into(),
            "--threads=1".into(),
            format!("--backend={backend}"),
        ];
        (out, bert("classify", &args, env))
    };
    let (cpu, o) = run("cpu", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("predicting on cpu ("), "{}", stderr(&o));
    let (vk, o) = run("vulkan", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("predicting on vulkan ("),
        "{}",
        stderr(&o)
    );

    let (want, got) = (eval_results(&cpu), eval_results(&vk));
    eprintln!("cpu: {want:?}\nvulkan: {got:?}");
    assert_eq!(want.len(), got.len());
    for ((k, a), (l, b)) in want.iter().zip(&got) {
        assert_eq!(k, l);
        match k.as_str() {
            "eval_accuracy" | "global_step" => assert_eq!(a, b, "{k}"),
            _ => assert!((a - b).abs() <= TOL, "{k}: {a} vs {b}"),
        }
    }
    let (want, got) = (test_results(&cpu), test_results(&vk));
    assert_eq!(want.len(), 240);
    let d = max_abs_diff(&got, &want);
    eprintln!("test_results.tsv: max |Δp| {d:.3e}");
    assert!(d <= TOL, "{d:e}");

    // No driver: `vulkan` says why and writes nothing; `auto` runs on the CPU.
    let no_driver = [
        ("VK_ICD_FILENAMES", "/nonexistent/libbert_test_icd.json"),
        ("VK_DRIVER_FILES", "/nonexistent/libbert_test_icd.json"),
    ];
    std::fs::remove_dir_all(&vk).unwrap();
    let (vk, o) = run("vulkan", &no_driver);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--backend vulkan: "), "{}", stderr(&o));
    assert!(!vk.join("test_results.tsv").exists());
    let (auto, o) = run("auto", &no_driver);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("using the CPU"), "{}", stderr(&o));
    assert_eq!(test_results(&auto), want);
    let (_, o) = run("tpu", &[]);
    assert!(
        stderr(&o).contains("expected cpu, vulkan or auto"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&work).ok();
}

/// `bert classify --do_train --backend vulkan` trains on the device: with the same seed
/// (same head initialisation, same dropout masks: both back ends hash the same keys) the
/// run ends where the CPU's ends, so the saved models agree and so do their predictions.
#[test]
fn classify_trains_on_vulkan_as_on_the_cpu() {
    let Some(_) = common::vulkan::device() else {
        return;
    };
    let work = tmp("classify-train");
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let glue = common::shared_dir().join("data/glue/SST-2");
    for (file, n) in [("train.tsv", 49), ("dev.tsv", 41)] {
        let text = std::fs::read_to_string(glue.join(file)).unwrap();
        let rows: Vec<&str> = text.lines().take(n).collect();
        std::fs::write(data.join(file), rows.join("\n") + "\n").unwrap();
    }
    let start = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
    let run = |backend: &str| -> PathBuf {
        let out = work.join(backend);
        let args = [
            "--task_name=sst-2".to_string(),
            format!("--data_dir={}", data.display()),
            format!("--output_dir={}", out.display()),
            format!("--vocab_file={}", tiny().join("vocab.txt").display()),
            format!(
                "--bert_config_file={}",
                tiny().join("bert_config.json").display()
            ),
            format!(
                "--init_checkpoint={}",
                tiny().join("bert_model.ckpt").display()
            ),
            "--do_train".into(),
            "--do_eval".into(),
            "--max_seq_length=32".into(),
            "--train_batch_size=8".into(),
            "--num_train_epochs=1".into(),
            "--learning_rate=1e-3".into(),
            "--threads=1".into(),
            format!("--backend={backend}"),
        ];
        let o = bert("classify", &args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("training on {backend} (")),
            "{}",
            stderr(&o)
        );
        out
    };
    let (cpu, vk) = (run("cpu"), run("vulkan"));
    let load = |dir: &Path| {
        bert::weights::native::NativeModel::open(dir.join("model.bert"))
            .unwrap()
            .weights()
            .unwrap()
    };
    let (want, got) = (load(&cpu), load(&vk));
    let mut worst = 0.0f32;
    let mut moved = 0.0f32;
    for (name, t) in want.iter() {
        let g = got.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        worst = worst.max(max_abs_diff(&g.data, &t.data));
        if let Some(s) = start.tensor(name) {
            moved = moved.max(max_abs_diff(&t.data, &s.data));
        }
    }
    eprintln!("6 updates at lr 1e-3: variables moved up to {moved:.3e}; vulkan vs cpu {worst:.3e}");
    assert!(moved > 1e-3, "the run did not train: {moved:e}");
    assert!(worst <= 1e-5, "vulkan vs cpu: {worst:e}");
    let (a, b) = (eval_results(&cpu), eval_results(&vk));
    for ((k, x), (l, y)) in a.iter().zip(&b) {
        assert_eq!(k, l);
        assert!((x - y).abs() <= TOL, "{k}: {x} vs {y}");
    }
    std::fs::remove_dir_all(&work).ok();
}

/// `tf_bert_tiny` with the SQuAD fine-tuning reference's initial span head, saved as
/// `work/model.bert`.
fn squad_model(work: &Path) -> PathBuf {
    let head = tiny().join("squad_finetune_reference/initial/cls/squad");
    let (config, w, tok) = tiny_with(vec![
        (
            "cls/squad/output_weights",
            npy_f32(&head, "output_weights.npy"),
            vec![2, 128],
        ),
        (
            "cls/squad/output_bias",
            npy_f32(&head, "output_bias.npy"),
            vec![2],
        ),
    ]);
    let model = work.join("model.bert");
    bert::squad::model::save(&model, &config, &w, &tok).unwrap();
    model
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn squad_predict_on_vulkan_writes_what_the_cpu_writes() {
    let Some(_) = common::vulkan::device() else {
        return;
    };
    let work = tmp("squad");
    let model = squad_model(&work);
    let input = common::shared_dir().join("fixtures/squad_reference/v1.1/input_subset.json");
    let run = |backend: &str| -> PathBuf {
        let out = work.join(backend);
        let args = [
            "--do_predict".to_string(),
            format!("--predict_file={}", input.display()),
            format!("--output_dir={}", out.display()),
            format!("--model={}", model.display()),
            "--max_seq_length=128".into(),
            "--doc_stride=32".into(),
            "--max_query_length=32".into(),
            "--predict_batch_size=5".into(),
            "--threads=1".into(),
            format!("--backend={backend}"),
        ];
        let o = bert("squad", &args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let on = format!("predicting on {backend} (");
        assert!(stderr(&o).contains(&on), "{}", stderr(&o));
        out
    };
    let (cpu, vk) = (run("cpu"), run("vulkan"));
    // The same answer texts, hence the same metric.
    let preds = json(&cpu.join("predictions.json"));
    assert!(preds.as_object().unwrap().len() >= 10);
    assert_eq!(json(&vk.join("predictions.json")), preds);
    assert_eq!(
        json(&vk.join("eval_results.json")),
        json(&cpu.join("eval_results.json"))
    );
    // Every n-best list: the same texts in the same order, numbers within TOL.
    let (want, got) = (
        json(&cpu.join("nbest_predictions.json")),
        json(&vk.join("nbest_predictions.json")),
    );
    let mut worst = 0f64;
    for (id, list) in want.as_object().unwrap() {
        let other = got[id].as_array().unwrap();
        assert_eq!(list.as_array().unwrap().len(), other.len(), "{id}");
        for (a, b) in list.as_array().unwrap().iter().zip(other) {
            assert_eq!(a["text"], b["text"], "{id}");
            for k in ["probability", "start_logit", "end_logit"] {
                let d = (a[k].as_f64().unwrap() - b[k].as_f64().unwrap()).abs();
                worst = worst.max(d);
            }
        }
    }
    eprintln!("nbest_predictions.json: the same texts, max |Δ| {worst:.3e}");
    assert!(worst <= f64::from(TOL), "{worst:e}");
    std::fs::remove_dir_all(&work).ok();
}

/// `bert squad --do_train --backend vulkan` trains on the device: with the same seed (same
/// feature order, same dropout masks) the run ends where the CPU's ends.
#[test]
fn squad_trains_on_vulkan_as_on_the_cpu() {
    let Some(_) = common::vulkan::device() else {
        return;
    };
    let work = tmp("squad-train");
    let model = squad_model(&work);
    let input = common::shared_dir().join("fixtures/squad_reference/v1.1");
    let input = input.join("input_subset_first_answer.json");
    let run = |backend: &str| -> PathBuf {
        let out = work.join(backend);
        let args = [
            "--do_train".to_string(),
            format!("--train_file={}", input.display()),
            format!("--output_dir={}", out.display()),
            format!("--model={}", model.display()),
            "--max_seq_length=128".into(),
            "--doc_stride=32".into(),
            "--max_query_length=32".into(),
            // int(24 / 8 * 1) = 3 updates.
            "--max_train_examples=24".into(),
            "--train_batch_size=8".into(),
            "--num_train_epochs=1".into(),
            "--learning_rate=1e-3".into(),
            "--threads=1".into(),
            format!("--backend={backend}"),
        ];
        let o = bert("squad", &args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let log = stderr(&o);
        assert!(log.contains(&format!("training on {backend} (")), "{log}");
        assert!(log.contains("step 3/3"), "{log}");
        out
    };
    let (cpu, vk) = (run("cpu"), run("vulkan"));
    let load = |path: &Path| {
        bert::weights::native::NativeModel::open(path)
            .unwrap()
            .weights()
            .unwrap()
    };
    let start = load(&model);
    let (want, got) = (load(&cpu.join("model.bert")), load(&vk.join("model.bert")));
    let (mut worst, mut moved) = (0.0f32, 0.0f32);
    for (name, t) in want.iter() {
        let g = got.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        worst = worst.max(max_abs_diff(&g.data, &t.data));
        if let Some(s) = start.tensor(name) {
            moved = moved.max(max_abs_diff(&t.data, &s.data));
        }
    }
    eprintln!(
        "3 SQuAD updates at lr 1e-3: variables moved up to {moved:.3e}; vulkan vs cpu {worst:.3e}"
    );
    assert!(moved > 1e-3, "the run did not train: {moved:e}");
    assert!(worst <= 1e-5, "vulkan vs cpu: {worst:e}");
    std::fs::remove_dir_all(&work).ok();
}
