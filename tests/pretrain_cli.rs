//! `bert pretrain` end to end on `tf_bert_tiny` and the fixture TFRecords
//! (`pretraining_data/sample_text_s128`, 60 records): training with checkpoints, Google's
//! `eval_results.txt`, a stopped run resumed to the variables of an uninterrupted one
//! (dropout on: the generators' states travel in the checkpoint), and corrupt or mismatched
//! records refused before any step, naming file and record.

mod common;

use std::path::{Path, PathBuf};

use bert::classifier::checkpoint;

fn records() -> PathBuf {
    common::shared_dir().join("fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-pretrain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `bert pretrain` on the tiny checkpoint: batch 8, 4 steps, a checkpoint every 2.
fn pretrain(input: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    let [config, checkpoint] = common::tiny_checkpoint_flags();
    let fixed = [
        "pretrain",
        &format!("--input_file={}", input.display()),
        &format!("--output_dir={}", out.display()),
        &config,
        &checkpoint,
        "--train_batch_size=8",
        "--num_train_steps=4",
        "--num_warmup_steps=1",
        "--learning_rate=1e-4",
        "--save_checkpoints_steps=2",
        "--log_every_n_steps=1",
        "--threads=1",
    ];
    let o = common::bert_cli(fixed.iter().chain(extra));
    (o.ok, o.stderr)
}

/// The variables of a training state, by name.
fn variables(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let s = checkpoint::load(&dir.join(checkpoint::FILE_NAME)).unwrap();
    let mut v: Vec<(String, Vec<f32>)> =
        s.variables.into_iter().map(|v| (v.name, v.value)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn trains_evaluates_and_resumes_to_the_same_variables() {
    let straight = tmp("straight");
    let (ok, log) = pretrain(
        &records(),
        &straight,
        &[
            "--do_train",
            "--do_eval",
            "--max_eval_steps=3",
            "--save_tf_checkpoint",
        ],
    );
    assert!(ok, "{log}");
    assert!(
        log.contains("step 2: wrote") && log.contains("step 4: wrote"),
        "{log}"
    );
    let results = std::fs::read_to_string(straight.join("eval_results.txt")).unwrap();
    let keys: Vec<&str> = results
        .lines()
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "global_step",
            "loss",
            "masked_lm_accuracy",
            "masked_lm_loss",
            "next_sentence_accuracy",
            "next_sentence_loss"
        ],
        "{results}"
    );
    assert!(results.starts_with("global_step = 4\n"), "{results}");
    for line in results.lines().skip(1) {
        let v: f64 = line.split(" = ").nth(1).unwrap().parse().unwrap();
        assert!(v.is_finite() && v >= 0.0, "{line}");
    }
    // One line per step (log_every_n_steps 1) and one per evaluation.
    let jsonl = std::fs::read_to_string(straight.join("train_log.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{jsonl}");
    assert_eq!(lines[3]["step"], 4);
    assert!(lines[0]["masked_lm_accuracy"].is_number() && lines[4]["eval"].is_object());
    // The TF checkpoint holds the same variables as the training state, and global_step.
    let tf = bert::weights::tf_checkpoint::load(straight.join("model.ckpt-4")).unwrap();
    for (name, values) in variables(&straight) {
        assert_eq!(tf.tensor(&name).unwrap().data, &values[..], "{name}");
    }
    let state = std::fs::read_to_string(straight.join("checkpoint")).unwrap();
    assert!(
        state.starts_with("model_checkpoint_path: \"model.ckpt-4\"\n"),
        "{state}"
    );

    // Stopped after 2 steps, then run again: resumes at step 2 and ends where the
    // uninterrupted run ended, bit for bit.
    let resumed = tmp("resumed");
    let (ok, log) = pretrain(
        &records(),
        &resumed,
        &["--do_train", "--stop_after_steps=2"],
    );
    assert!(ok, "{log}");
    assert!(log.contains("at step 2"), "{log}");
    assert_eq!(
        checkpoint::load(&resumed.join(checkpoint::FILE_NAME))
            .unwrap()
            .global_step,
        2
    );
    let (ok, log) = pretrain(&records(), &resumed, &["--do_train"]);
    assert!(ok, "{log}");
    assert!(
        log.contains("resuming from") && log.contains("at step 2"),
        "{log}"
    );
    assert!(log.contains("trained 2 steps"), "{log}");
    let (a, b) = (variables(&straight), variables(&resumed));
    assert_eq!(a.len(), 46);
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resuming");
    }
    // Other settings are refused, naming what differs.
    let (ok, log) = pretrain(&records(), &resumed, &["--do_train", "--seed=7"]);
    assert!(
        !ok && log.contains("cannot resume") && log.contains("seed 12345 (now 7)"),
        "{log}"
    );
    for d in [straight, resumed] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Byte offset of record `index`'s data in a TFRecord file.
fn record_offset(bytes: &[u8], index: usize) -> usize {
    let mut at = 0;
    for _ in 0..index {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        at += 12 + len + 4;
    }
    at + 12
}

#[test]
fn corrupt_and_mismatched_records_are_clear_errors() {
    let dir = tmp("corrupt");
    let good = std::fs::read(records()).unwrap();
    let out = dir.join("out");

    let bad_crc = dir.join("bad_crc.tfrecord");
    let mut bytes = good.clone();
    bytes[record_offset(&good, 3) + 10] ^= 0x40;
    std::fs::write(&bad_crc, &bytes).unwrap();
    let (ok, log) = pretrain(&bad_crc, &out, &["--do_train"]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("bad_crc.tfrecord") && log.contains("record 3") && log.contains("CRC"),
        "{log}"
    );

    let truncated = dir.join("truncated.tfrecord");
    std::fs::write(&truncated, &good[..record_offset(&good, 5) + 20]).unwrap();
    let (ok, log) = pretrain(&truncated, &out, &["--do_train"]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("truncated.tfrecord") && log.contains("record 5") && log.contains("truncated"),
        "{log}"
    );

    // Records of seq 128 read with --max_seq_length 64.
    let (ok, log) = pretrain(&records(), &out, &["--do_train", "--max_seq_length=64"]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("record 0") && log.contains("input_ids has 128 values, expected 64"),
        "{log}"
    );
    // Nothing was trained or written.
    assert!(!out.join(checkpoint::FILE_NAME).exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Without a checkpoint every variable starts from `modeling.py`'s initialisers; `--do_eval`
/// alone then evaluates the output directory's last checkpoint, as `estimator.evaluate`
/// reads its `model_dir`.
#[test]
fn from_scratch_then_evaluation_of_the_saved_state() {
    let out = tmp("scratch");
    let config = common::tiny_dir().join("bert_config.json");
    let run_in = |dir: &Path, extra: &[&str]| {
        let fixed = [
            "pretrain",
            &format!("--input_file={}", records().display()),
            &format!("--output_dir={}", dir.display()),
            &format!("--bert_config_file={}", config.display()),
            "--train_batch_size=4",
            "--eval_batch_size=4",
            "--max_eval_steps=2",
            "--num_train_steps=2",
            "--num_warmup_steps=0",
            "--learning_rate=1e-3",
            "--threads=1",
        ];
        let o = common::bert_cli(fixed.iter().chain(extra));
        assert!(o.ok, "{}", o.stderr);
        o.stderr
    };
    let run = |extra: &[&str]| run_in(&out, extra);
    let log = run(&["--do_train"]);
    assert!(log.contains("46 variable(s) initialised"), "{log}");
    let state = checkpoint::load(&out.join(checkpoint::FILE_NAME)).unwrap();
    assert_eq!((state.global_step, state.variables.len()), (2, 46));
    let log = run(&["--do_eval"]);
    assert!(
        !log.contains("initialised") && log.contains("eval at step 2:"),
        "{log}"
    );
    let results = std::fs::read_to_string(out.join("eval_results.txt")).unwrap();
    assert!(results.starts_with("global_step = 2\nloss = "), "{results}");

    // A next phase (a curriculum, Google's seq-512 phase) starts from this state's
    // variables: evaluated before any step, it scores what the state scored.
    let next = tmp("next-phase");
    let state_file = out.join(checkpoint::FILE_NAME);
    let init = format!("--init_checkpoint={}", state_file.display());
    let log = run_in(&next, &[&init, "--do_eval"]);
    assert!(!log.contains("initialised"), "{log}");
    let again = std::fs::read_to_string(next.join("eval_results.txt")).unwrap();
    let tail = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(again.starts_with("global_step = 0\n"), "{again}");
    assert_eq!(tail(&again), tail(&results));
    std::fs::remove_dir_all(next).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}
