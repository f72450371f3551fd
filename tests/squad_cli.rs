//! `bert squad` end to end on `tf_bert_tiny`: a few questions of the shared SQuAD dev file,
//! `--do_train --do_predict` for a handful of steps; Google's output files with Google's
//! keys; predicting alone from the saved `model.bert`, or from a TF checkpoint holding the
//! head (with `global_step` and AdamW slots, as Google's training leaves it), writes the same
//! files; SQuAD 2.0 writes `null_odds.json` and the v2 metric; bad input is an error naming
//! what is wrong, never a panic.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-squad-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `n` questions of the shared dev file's first article (its first paragraphs);
/// `first_answer_only` keeps one answer per question, as Google's training requires.
fn subset(file: &str, n: usize, first_answer_only: bool) -> Value {
    let path = common::shared_dir().join("data/squad").join(file);
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let article = &data["data"][0];
    let mut left = n;
    let mut paragraphs = Vec::new();
    for p in article["paragraphs"].as_array().unwrap() {
        if left == 0 {
            break;
        }
        let mut qas: Vec<Value> = p["qas"].as_array().unwrap().clone();
        qas.truncate(left);
        left -= qas.len();
        if first_answer_only {
            for q in &mut qas {
                let answers = q["answers"].as_array().unwrap();
                let first: Vec<Value> = answers.iter().take(1).cloned().collect();
                q["answers"] = Value::Array(first);
            }
        }
        paragraphs.push(json!({"context": p["context"], "qas": qas}));
    }
    json!({"version": data["version"], "data": [{"title": article["title"], "paragraphs": paragraphs}]})
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
    p
}

fn bert(args: &[String]) -> (bool, String, String) {
    let o = common::bert_cli(std::iter::once("squad").chain(args.iter().map(String::as_str)));
    (o.ok, o.stdout, o.stderr)
}

fn google_model() -> Vec<String> {
    let mut flags = common::tiny_checkpoint_flags().to_vec();
    flags.push(format!(
        "--vocab_file={}",
        common::tiny_dir().join("vocab.txt").display()
    ));
    flags
}

fn small() -> Vec<String> {
    [
        "--max_seq_length=96",
        "--doc_stride=32",
        "--max_query_length=24",
        "--predict_batch_size=5",
        "--threads=2",
    ]
    .map(String::from)
    .to_vec()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn trains_predicts_and_reloads() {
    let data = tmp("data");
    let train = write(&data, "train.json", &subset("dev-v1.1.json", 12, true));
    let dev = write(&data, "dev.json", &subset("dev-v1.1.json", 12, false));
    let out = tmp("out");
    let mut args = google_model();
    args.extend(small());
    args.extend([
        "--do_train".into(),
        "--do_predict".into(),
        "--do_lower_case=true".into(),
        format!("--train_file={}", train.display()),
        format!("--predict_file={}", dev.display()),
        format!("--output_dir={}", out.display()),
        "--train_batch_size=4".into(),
        "--num_train_epochs=1".into(),
        "--learning_rate=1e-4".into(),
        "--save_checkpoints_steps=2".into(),
    ]);
    let (ok, stdout, log) = bert(&args);
    assert!(ok, "{log}");
    // int(12 / 4 * 1) = 3 updates.
    assert!(log.contains("step 3/3"), "{log}");
    let metric: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(metric, read_json(&out.join("eval_results.json")));
    for k in ["exact_match", "f1"] {
        let v = metric[k].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&v), "{metric}");
    }
    let preds = read_json(&out.join("predictions.json"));
    let nbest = read_json(&out.join("nbest_predictions.json"));
    assert!(!out.join("null_odds.json").exists());
    let ids: Vec<String> = subset("dev-v1.1.json", 12, false)["data"][0]["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["qas"].as_array().unwrap().clone())
        .map(|q| q["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 12);
    let keys: Vec<&String> = preds.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12);
    for id in &ids {
        assert!(preds[id].is_string(), "{id}");
        let list = nbest[id].as_array().unwrap();
        assert!(!list.is_empty() && list.len() <= 20);
        assert_eq!(list[0]["text"], preds[id]);
        for e in list {
            let mut k: Vec<&String> = e.as_object().unwrap().keys().collect();
            k.sort();
            assert_eq!(k, ["end_logit", "probability", "start_logit", "text"]);
        }
    }

    // Predicting alone from the saved model writes the same files.
    let again = tmp("again");
    let mut args = small();
    args.extend([
        format!("--model={}", out.join("model.bert").display()),
        "--do_predict".into(),
        format!("--predict_file={}", dev.display()),
        format!("--output_dir={}", again.display()),
    ]);
    let (ok, stdout2, log) = bert(&args);
    assert!(ok, "{log}");
    assert_eq!(stdout2, stdout);
    for f in ["predictions.json", "nbest_predictions.json"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }

    // A TF checkpoint with the head, a global step and AdamW slots (Google's run_squad.py
    // output) predicts the same.
    let (_, mut w) = bert::weights::load_model_files(&out.join("model.bert")).unwrap();
    for name in ["cls/squad/output_weights", "cls/squad/output_bias"] {
        let t = w.tensor(name).unwrap().clone();
        w.insert(format!("{name}/adam_m"), t.clone());
        w.insert(format!("{name}/adam_v"), t);
    }
    let ckpt = tmp("ckpt");
    bert::weights::tf_checkpoint::save(ckpt.join("model.ckpt-3"), &w, Some(3)).unwrap();
    let tf = tmp("tf");
    let mut args = small();
    args.extend([
        format!(
            "--bert_config_file={}",
            common::tiny_dir().join("bert_config.json").display()
        ),
        format!("--init_checkpoint={}", ckpt.join("model.ckpt-3").display()),
        format!(
            "--vocab_file={}",
            common::tiny_dir().join("vocab.txt").display()
        ),
        "--do_predict".into(),
        format!("--predict_file={}", dev.display()),
        format!("--output_dir={}", tf.display()),
    ]);
    let (ok, _, log) = bert(&args);
    assert!(ok, "{log}");
    assert_eq!(
        std::fs::read(out.join("predictions.json")).unwrap(),
        std::fs::read(tf.join("predictions.json")).unwrap()
    );

    // SQuAD 2.0: null_odds.json and the v2 metric with its best thresholds.
    let v2 = write(&data, "dev2.json", &subset("dev-v2.0.json", 12, false));
    let out2 = tmp("v2");
    let mut args = small();
    args.extend([
        format!("--model={}", out.join("model.bert").display()),
        "--do_predict".into(),
        "--version_2_with_negative".into(),
        format!("--predict_file={}", v2.display()),
        format!("--output_dir={}", out2.display()),
    ]);
    let (ok, stdout, log) = bert(&args);
    assert!(ok, "{log}");
    let odds = read_json(&out2.join("null_odds.json"));
    assert_eq!(odds.as_object().unwrap().len(), 12);
    let metric: Value = serde_json::from_str(&stdout).unwrap();
    for k in ["exact", "f1", "total", "best_exact", "best_f1_thresh"] {
        assert!(metric.get(k).is_some(), "{k}: {metric}");
    }
    assert!(metric.get("HasAns_exact").is_some() || metric.get("NoAns_exact").is_some());
    for d in [data, out, again, ckpt, tf, out2] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let data = tmp("bad");
    let out = tmp("bad-out");
    let base = |extra: &[String]| {
        let mut a = google_model();
        a.extend(small());
        a.push(format!("--output_dir={}", out.display()));
        a.extend(extra.iter().cloned());
        a
    };
    // Several answers to a training question (Google: "exactly 1 answer").
    let dev = write(&data, "dev.json", &subset("dev-v1.1.json", 3, false));
    let (ok, _, log) = bert(&base(&[
        "--do_train".into(),
        format!("--train_file={}", dev.display()),
    ]));
    let id = subset("dev-v1.1.json", 1, false)["data"][0]["paragraphs"][0]["qas"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !ok && log.contains(&id) && log.contains("dev.json"),
        "{log}"
    );
    // A window too small for the stride.
    let (ok, _, log) = bert(&base(&[
        "--do_predict".into(),
        format!("--predict_file={}", dev.display()),
        "--doc_stride=70".into(),
    ]));
    assert!(!ok && log.contains("doc_stride"), "{log}");
    // Not JSON; a missing file; no predict file; a model without the span head.
    std::fs::write(data.join("broken.json"), "{\"data\": [").unwrap();
    for (file, want) in [
        ("broken.json", "broken.json"),
        ("missing.json", "missing.json"),
    ] {
        let (ok, _, log) = bert(&base(&[
            "--do_predict".into(),
            format!("--predict_file={}", data.join(file).display()),
        ]));
        assert!(!ok && log.contains(want), "{log}");
    }
    let (ok, _, log) = bert(&base(&["--do_predict".into()]));
    assert!(!ok && log.contains("predict_file"), "{log}");
    let (ok, _, log) = bert(&base(&[
        "--do_predict".into(),
        format!("--predict_file={}", dev.display()),
    ]));
    assert!(!ok && log.contains("cls/squad/output_weights"), "{log}");
    std::fs::remove_dir_all(data).ok();
    std::fs::remove_dir_all(out).ok();
}

/// A run stopped after two of its three updates and started again resumes from its training
/// state and ends with the model the uninterrupted run wrote, byte for byte; other settings
/// are refused by name.
#[test]
fn killed_run_resumes_bit_for_bit() {
    let data = tmp("resume-data");
    let train = write(&data, "train.json", &subset("dev-v1.1.json", 12, true));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = google_model();
        args.extend(small());
        args.extend([
            "--do_train".into(),
            format!("--train_file={}", train.display()),
            format!("--output_dir={}", out.display()),
            "--train_batch_size=4".into(),
            "--num_train_epochs=1".into(),
            "--learning_rate=1e-4".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let (ok, _, log) = bert(&args);
        (ok, log)
    };
    let straight = tmp("straight");
    let (ok, log) = run(&straight, &[]);
    assert!(ok, "{log}");
    let resumed = tmp("resumed");
    let (ok, log) = run(&resumed, &["--stop_after_steps=2"]);
    assert!(ok && log.contains("stopped at step 2"), "{log}");
    let (ok, log) = run(&resumed, &[]);
    assert!(ok, "{log}");
    assert!(
        log.contains("resuming from") && log.contains("at step 2"),
        "{log}"
    );
    assert!(log.contains("trained 1 steps"), "{log}");
    let model = |d: &Path| std::fs::read(d.join("model.bert")).unwrap();
    assert!(
        model(&straight) == model(&resumed),
        "the resumed run ended elsewhere"
    );
    // The same state with another warm-up is refused, naming the setting.
    let (ok, log) = run(&resumed, &["--warmup_proportion=0.5"]);
    assert!(
        !ok && log.contains("cannot resume") && log.contains("warmup_proportion"),
        "{log}"
    );
}
