//! `bert pretrain --backend vulkan`: pre-training (masked LM + next sentence heads) on the
//! Vulkan device. The same run on the CPU back end ends at the same variables (within
//! 1e-4; dropout on: both back ends drop the same units), and a run stopped after one step
//! and resumed ends where the uninterrupted device run ends, bit for bit (the device's
//! reductions have a fixed order).
#![cfg(feature = "vulkan")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bert::train::checkpoint;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-vkpretrain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `bert pretrain` on the tiny checkpoint: batch 8, 2 steps.
fn pretrain(out: &Path, extra: &[&str]) {
    let [config, checkpoint] = common::tiny_checkpoint_flags();
    let records = common::shared_dir()
        .join("fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord");
    let o = Command::new(env!("CARGO_BIN_EXE_bert"))
        .args([
            "pretrain",
            &format!("--input_file={}", records.display()),
            &format!("--output_dir={}", out.display()),
            &config,
            &checkpoint,
            "--train_batch_size=8",
            "--num_train_steps=2",
            "--num_warmup_steps=1",
            "--learning_rate=1e-3",
            "--log_every_n_steps=1",
            "--threads=1",
            "--do_train",
        ])
        .args(extra)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    eprintln!("{log}");
    assert!(o.status.success(), "{log}");
}

fn variables(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let s = checkpoint::load(&dir.join(checkpoint::FILE_NAME)).unwrap();
    let mut v: Vec<(String, Vec<f32>)> =
        s.variables.into_iter().map(|v| (v.name, v.value)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn pretraining_on_the_device_matches_the_cpu_and_resumes_exactly() {
    if common::vulkan::device().is_none() {
        return;
    }
    let (gpu, cpu, resumed) = (tmp("vulkan"), tmp("cpu"), tmp("resumed"));
    pretrain(&gpu, &["--backend=vulkan"]);
    pretrain(&cpu, &["--backend=cpu"]);
    pretrain(&resumed, &["--backend=vulkan", "--stop_after_steps=1"]);
    pretrain(&resumed, &["--backend=vulkan"]);
    let (g, c, r) = (variables(&gpu), variables(&cpu), variables(&resumed));
    assert_eq!(g.len(), c.len());
    let mut worst = 0.0f32;
    for (((name, gv), (_, cv)), (_, rv)) in g.iter().zip(&c).zip(&r) {
        let d = common::max_abs_diff(gv, cv);
        worst = worst.max(d);
        assert!(d <= 1e-4, "{name}: device vs CPU max |Δ| {d}");
        assert_eq!(gv, rv, "{name}: the resumed device run differs");
    }
    eprintln!(
        "{} variables, device vs CPU worst max |Δ| {worst:.3e}",
        g.len()
    );
    for d in [gpu, cpu, resumed] {
        let _ = std::fs::remove_dir_all(d);
    }
}
