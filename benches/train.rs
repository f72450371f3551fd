//! Training throughput and peak memory against an inference forward pass of the same batch.
//!
//! ```text
//! cargo bench --bench train -- --model ~/.cache/libbert/all-MiniLM-L6-v2 --label minilm-l6 \
//!     [--batch 32] [--seq 128] [--threads 2] [--steps 3] [--warmup 1] \
//!     [--configs infer,train,train-ckpt]
//! ```
//!
//! Each configuration runs in a fresh child process (this binary re-executed with `--child`),
//! so its peak resident memory (`VmHWM` of `/proc/self/status`) is its own:
//! - `infer`: `BertModel::forward` (sequence + pooled output, the all-layers copy off) on the
//!   batch, what a training step is compared with;
//! - `train`: one `Trainer::step` (forward with dropout, backward, clipping, AdamW) on the
//!   same batch with a 2-label head;
//! - `train-ckpt`: the same with gradient checkpointing.
//!
//! Inputs: the encoder bench's LCG token ids (`[CLS] … [SEP]`, every position real, segment
//! 0), alternating labels. Each child does `--warmup` untimed runs, then `--steps` timed ones,
//! and prints one JSON line (median wall ms, examples/s, peak RSS, load average); the parent
//! prints a table with each configuration's ratio to `infer` from the same run.

use bert::heads::ClassifierHead;
use bert::train::{AdamWConfig, Schedule, Trainer};
use bert::weights::Tensor;
use bert::{BertModel, Context, Cpu, Inputs};
use std::process::Command;
use std::time::Instant;

#[path = "common/ids.rs"]
mod ids;
use ids::make_ids;

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Peak resident set of this process in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time of the whole process (all threads, user + system) in ms, from `/proc/self/stat`
/// (10 ms resolution; a step takes seconds). Under load from other processes this is the
/// steadier figure: it counts only the time this process ran.
fn process_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() == 2 {
        (f[0] + f[1]) * 10.0
    } else {
        f64::NAN
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Opts {
    model: String,
    label: String,
    batch: usize,
    seq: usize,
    threads: usize,
    steps: usize,
    warmup: usize,
    configs: String,
}

/// Runs one configuration in this process and prints its JSON line.
fn child(o: &Opts, config: &str) {
    let (batch, seq) = (o.batch, o.seq);
    let ids = make_ids(batch, seq);
    let segs = vec![0u32; batch * seq];
    let mask = vec![1u32; batch * seq];
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 2).collect();
    let load_before = load1();
    let (mut times, mut cpu) = (Vec::new(), Vec::new());
    let mut timed = |f: &mut dyn FnMut()| {
        for _ in 0..o.warmup {
            f();
        }
        for _ in 0..o.steps {
            let (t, c) = (Instant::now(), process_cpu_ms());
            f();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push(process_cpu_ms() - c);
        }
    };
    match config {
        "infer" => {
            let model = BertModel::load(&o.model).expect("load model");
            let mut ctx = Context::new(o.threads);
            let inputs = Inputs {
                input_ids: &ids,
                segment_ids: &segs,
                input_mask: &mask,
                batch,
                seq,
            };
            timed(&mut || {
                let out = model.forward(&mut ctx, &inputs, false).expect("forward");
                std::hint::black_box(out.pooled_output());
            });
        }
        "train" | "train-ckpt" => {
            let (cfg, mut weights) =
                bert::weights::load_model_files(o.model.as_ref()).expect("load weights");
            // A fresh 2-label head (create_model's initial scale).
            let h = cfg.hidden_size;
            let head: Vec<f32> = (0..2 * h)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 4e-4)
                .collect();
            weights.insert(
                "output_weights",
                Tensor::new(vec![2, h], head).expect("head"),
            );
            weights.insert(
                "output_bias",
                Tensor::new(vec![2], vec![0.0; 2]).expect("head"),
            );
            let model = BertModel::build(Cpu, cfg, &weights, true).expect("model");
            let head = ClassifierHead::load(&Cpu, &weights, h, 2, true).expect("head");
            drop(weights);
            let schedule = Schedule {
                init_lr: 2e-5,
                num_train_steps: 1000,
                num_warmup_steps: 100,
            };
            let adamw = AdamWConfig::default();
            let mut trainer =
                Trainer::new(model, head, schedule, adamw, 1, o.threads).expect("trainer");
            trainer.set_checkpointing(config == "train-ckpt");
            let inputs = Inputs {
                input_ids: &ids,
                segment_ids: &segs,
                input_mask: &mask,
                batch,
                seq,
            };
            timed(&mut || {
                let r = trainer.step(&inputs, &labels).expect("step");
                assert!(r.loss.is_finite());
            });
        }
        other => panic!("unknown configuration {other}"),
    }
    let ms = median(&times);
    println!(
        "{{\"label\":\"{}\",\"config\":\"{config}\",\"batch\":{batch},\"seq\":{seq},\"threads\":{},\
         \"ms\":{ms:.1},\"cpu_ms\":{:.0},\"examples_per_s\":{:.2},\"peak_rss_mib\":{:.0},\"runs_ms\":{:?},\
         \"load1_before\":{load_before},\"load1_after\":{}}}",
        o.label,
        o.threads,
        median(&cpu),
        batch as f64 / ms * 1e3,
        peak_rss_mib(),
        times.iter().map(|t| (t * 10.0).round() / 10.0).collect::<Vec<_>>(),
        load1()
    );
}

fn main() {
    let mut o = Opts {
        model: String::new(),
        label: "model".into(),
        batch: 32,
        seq: 128,
        threads: 2,
        steps: 3,
        warmup: 1,
        configs: "infer,train,train-ckpt".into(),
    };
    let mut child_config = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => o.model = val(),
            "--label" => o.label = val(),
            "--batch" => o.batch = val().parse().expect("--batch"),
            "--seq" => o.seq = val().parse().expect("--seq"),
            "--threads" => o.threads = val().parse().expect("--threads"),
            "--steps" => o.steps = val().parse().expect("--steps"),
            "--warmup" => o.warmup = val().parse().expect("--warmup"),
            "--configs" => o.configs = val(),
            "--child" => child_config = Some(val()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    if o.model.is_empty() {
        eprintln!("usage: cargo bench --bench train -- --model DIR [--label L] [--batch 32] [--seq 128] [--threads 2] [--steps 3] [--configs infer,train,train-ckpt]");
        return;
    }
    if let Some(c) = child_config {
        child(&o, &c);
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut rows = Vec::new();
    for config in o.configs.split(',') {
        let out = Command::new(&exe)
            .args(["--model", &o.model, "--label", &o.label, "--child", config])
            .args(["--batch", &o.batch.to_string(), "--seq", &o.seq.to_string()])
            .args(["--threads", &o.threads.to_string()])
            .args(["--steps", &o.steps.to_string()])
            .args(["--warmup", &o.warmup.to_string()])
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || text.is_empty() {
            eprintln!("{config} failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        println!("{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("child JSON");
        rows.push((config.to_string(), v));
    }
    let infer = rows.iter().find(|(c, _)| c == "infer").map(|(_, v)| v);
    let ratio = |v: &serde_json::Value, key: &str| {
        infer
            .and_then(|i| Some(v[key].as_f64()? / i[key].as_f64()?))
            .map_or(String::from("-"), |r| format!("{r:.2}"))
    };
    println!(
        "\n| model | config | batch x seq | threads | wall ms / step | examples/s | CPU ms / step | peak RSS MiB | x infer (wall) | x infer (CPU) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (c, v) in &rows {
        let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {c} | {}x{} | {} | {:.0} | {:.2} | {:.0} | {:.0} | {} | {} |",
            o.label,
            o.batch,
            o.seq,
            o.threads,
            num("ms"),
            num("examples_per_s"),
            num("cpu_ms"),
            num("peak_rss_mib"),
            ratio(v, "ms"),
            ratio(v, "cpu_ms"),
        );
    }
}
