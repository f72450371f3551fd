//! End to end: `bert classify` fine-tunes all-MiniLM-L6-v2 on a few hundred SST-2 training
//! sentences; the loss falls, dev accuracy on 200 held-out sentences is clearly above chance,
//! and the saved `model.bert` reloads as a [`Classifier`] that predicts the same
//! probabilities as the run's `test_results.tsv`.

mod common;

use std::path::{Path, PathBuf};

use bert::classifier::Classifier;
use bert::Context;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "libbert-classify-e2e-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bert(args: &[&str]) -> (bool, String) {
    let o = common::bert_cli(std::iter::once(&"classify").chain(args));
    (o.ok, o.stderr)
}

/// SST-2's first `train` training rows of at least six words (the dev set holds whole
/// sentences; the many 1–3 word phrases of the training file teach little about them) and
/// its first `dev` dev rows.
fn sst2_subset(dir: &Path, train: usize, dev: usize) {
    let src = common::shared_dir().join("data/glue/SST-2");
    let text = std::fs::read_to_string(src.join("train.tsv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for l in lines
        .filter(|l| l.split('\t').next().unwrap().split_whitespace().count() >= 6)
        .take(train)
    {
        out.push_str(l);
        out.push('\n');
    }
    std::fs::write(dir.join("train.tsv"), out).unwrap();
    let text = std::fs::read_to_string(src.join("dev.tsv")).unwrap();
    let dev_rows: Vec<&str> = text.lines().take(dev + 1).collect();
    std::fs::write(dir.join("dev.tsv"), dev_rows.join("\n") + "\n").unwrap();
}

fn losses(log: &str) -> Vec<f32> {
    log.lines()
        .filter(|l| l.starts_with("step "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w.iter().position(|&x| x == "loss").unwrap();
            w[at + 1].parse().unwrap()
        })
        .collect()
}

#[test]
fn fine_tune_minilm_on_sst2() {
    let data = tmp_dir("data");
    let out = tmp_dir("out");
    sst2_subset(&data, 480, 200);
    let model = common::minilm_dir();
    let (ok, log) = bert(&[
        "--task_name=sst-2",
        "--do_train",
        "--do_eval",
        "--do_predict",
        &format!("--data_dir={}", data.display()),
        &format!("--output_dir={}", out.display()),
        &format!("--model={}", model.display()),
        "--max_seq_length=64",
        "--train_batch_size=16",
        "--num_train_epochs=1",
        "--learning_rate=1e-4",
        "--log_every_n_steps=5",
        "--threads=2",
    ]);
    eprintln!("{log}");
    assert!(ok, "{log}");
    // 480 / 16 = 30 steps, logged every 5: the mean loss of the last window is well below
    // the first (≈ ln 2 with a fresh head).
    let l = losses(&log);
    assert_eq!(l.len(), 6, "{log}");
    assert!(l[5] < l[0] - 0.1, "loss did not fall: {l:?}");

    let results = std::fs::read_to_string(out.join("eval_results.txt")).unwrap();
    let keys: Vec<&str> = results
        .lines()
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    assert_eq!(keys, ["eval_accuracy", "eval_loss", "global_step", "loss"]);
    let value = |k: &str| -> f64 {
        results
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("global_step"), 30.0);
    // Chance is ~50% (the 200 rows are 51% positive); a working fine-tune gets well above.
    assert!(value("eval_accuracy") >= 0.65, "{results}");

    // No test.tsv: the predictions are for dev.tsv, one line of 2 probabilities per row.
    let predicted: Vec<Vec<f32>> = std::fs::read_to_string(out.join("test_results.tsv"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(predicted.len(), 200);

    // save -> load -> the same predictions (same weights and code: equal up to the decimal
    // round trip of the printed values, which is exact for f32's shortest representation).
    let c = Classifier::load(out.join("model.bert")).unwrap();
    assert_eq!(c.labels(), ["0", "1"]);
    let dev = std::fs::read_to_string(data.join("dev.tsv")).unwrap();
    let texts: Vec<(&str, Option<&str>)> = dev
        .lines()
        .skip(1)
        .map(|l| (l.split('\t').next().unwrap(), None))
        .collect();
    let mut ctx = Context::new(2);
    let probs = c.classify(&mut ctx, &texts, 64, 8).unwrap();
    let reloaded: Vec<f32> = predicted.concat();
    assert_eq!(probs.len(), reloaded.len());
    let diff = common::max_abs_diff(&probs, &reloaded);
    assert!(diff <= 1e-6, "reloaded model differs by {diff}");

    // Only finished files in the output directory.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "eval_results.txt",
            "model.bert",
            "test_results.tsv",
            "training_state.safetensors"
        ]
    );
    // The training state alone is 3x the model (weights, adam_m, adam_v): do not leave it.
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn bad_input_fails_before_writing_anything() {
    let data = tmp_dir("bad");
    std::fs::write(data.join("train.tsv"), "sentence\tlabel\ngood\t1\n").unwrap();
    std::fs::write(data.join("dev.tsv"), "sentence\tlabel\nfine\t1\nbroken\n").unwrap();
    let out = tmp_dir("bad-out").join("run");
    let model = common::minilm_dir();
    let (ok, log) = bert(&[
        "--task_name=sst-2",
        "--do_train",
        "--do_eval",
        &format!("--data_dir={}", data.display()),
        &format!("--output_dir={}", out.display()),
        &format!("--model={}", model.display()),
    ]);
    assert!(!ok);
    assert!(log.contains("dev.tsv") && log.contains("line 3"), "{log}");
    assert!(!out.exists(), "the output directory was created");
    let (ok, log) = bert(&["--task_name=qnli", "--do_train"]);
    assert!(
        !ok && log.contains("missing required flag --data_dir"),
        "{log}"
    );
}
