//! The Vulkan back end's kernels and a whole model, next to the CPU back end, in one run:
//! a smoke figure on lavapipe (Mesa's CPU Vulkan driver), the real figures on a GPU.
//!
//! ```text
//! cargo bench --features vulkan --bench vulkan -- [--model DIR] [--batch 8] [--seq 128]
//!     [--runs 5] [--threads 2]
//! ```
//!
//! Stages are one layer of the model's widths (all-MiniLM-L6-v2 by default: hidden 384, 12
//! heads, FFN 1536) on `batch × seq` rows of random values: fused QKV dense, attention,
//! output dense, FFN up with GELU, FFN down, residual LayerNorm; then `BertModel::embed`
//! (mean pooling) of the whole batch. Each figure is the median of `--runs` runs, after one
//! warm-up, in wall time; a Vulkan run ends when its commands have finished on the device
//! (`Backend::status` submits and waits).

use std::time::Instant;

use bert::backend::vulkan::{DeviceChoice, Vulkan};
use bert::backend::{
    Activation, Backend, Cpu, Heads, Layout, MatrixSource, Norm, Rows, Span, View, Weight,
};
use bert::{BertModel, Context, Inputs, ModelOptions, Pooling};

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            ((s >> 8) as f32 / (1u32 << 23) as f32 - 1.0) * 0.1
        })
        .collect()
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

struct Args {
    model: Option<String>,
    batch: usize,
    seq: usize,
    runs: usize,
    threads: usize,
}

fn args() -> Args {
    let mut a = Args {
        model: None,
        batch: 8,
        seq: 128,
        runs: 5,
        threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("a value after the flag");
        match k.as_str() {
            "--model" => a.model = Some(v()),
            "--batch" => a.batch = v().parse().expect("--batch N"),
            "--seq" => a.seq = v().parse().expect("--seq N"),
            "--runs" => a.runs = v().parse().expect("--runs N"),
            "--threads" => a.threads = v().parse().expect("--threads N"),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// One layer's stages on back end `b`: (name, ms, GFLOP per run).
fn stages<B: Backend>(b: &B, a: &Args, ex: &mut B::Exec) -> Vec<(&'static str, f64, f64)> {
    let (h, heads, ffn) = (384, Heads { n: 12, size: 32 }, 1536);
    let n = a.batch * a.seq;
    let mut rows = Rows::default();
    for s in 0..a.batch {
        rows.seqs.push(Span {
            start: s * a.seq,
            len: a.seq,
        });
        for t in 0..a.seq {
            rows.ids.push(0);
            rows.segments.push(0);
            rows.positions.push(t as u32);
            rows.mask_bias.push(0.0);
        }
    }
    let m = |i, o, seed| {
        b.matrix(MatrixSource::F32(&values(i * o, seed), Layout::InOut), i, o)
            .expect("a kernel")
    };
    let (qkv, wo, up, down) = (m(h, 3 * h, 1), m(h, h, 2), m(h, ffn, 3), m(ffn, h, 4));
    let x = b.upload(&values(n * h, 5));
    let (bias3, bias_h, bias_f) = (
        b.upload(&values(3 * h, 6)),
        b.upload(&values(h, 7)),
        b.upload(&values(ffn, 8)),
    );
    let (gamma, beta) = (b.upload(&vec![1.0; h]), b.upload(&vec![0.0; h]));
    let (mut q, mut ctx, mut o, mut f) = (
        B::Buf::default(),
        B::Buf::default(),
        B::Buf::default(),
        B::Buf::default(),
    );
    let flops = |i: usize, o: usize| 2.0 * (n * i * o) as f64 / 1e9;
    let mut out = Vec::new();
    let mut time = |name, gflop, f: &mut dyn FnMut(&mut B::Exec)| {
        let ms = median_ms(a.runs, || {
            f(ex);
            B::status(ex).expect("the ops ran");
        });
        out.push((name, ms, gflop));
    };
    let id = Activation::Identity;
    time("qkv dense", flops(h, 3 * h), &mut |ex| {
        B::dense(
            ex,
            Weight::Prepared(&qkv),
            h,
            3 * h,
            Some(&bias3),
            View::rows(&x, h),
            n,
            &mut q,
            id,
        )
    });
    let attn_flops = 4.0 * (a.batch * a.seq * a.seq * h) as f64 / 1e9;
    time("attention", attn_flops, &mut |ex| {
        let (qv, kv, vv) = (
            View::cols(&q, 0, 3 * h),
            View::cols(&q, h, 3 * h),
            View::cols(&q, 2 * h, 3 * h),
        );
        B::attention(ex, qv, kv, vv, &rows, None, heads, &mut ctx, None, None)
    });
    time("output dense", flops(h, h), &mut |ex| {
        B::dense(
            ex,
            Weight::Prepared(&wo),
            h,
            h,
            Some(&bias_h),
            View::rows(&ctx, h),
            n,
            &mut o,
            id,
        )
    });
    time("layer norm", 0.0, &mut |ex| {
        let norm = Norm {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
        };
        B::layer_norm(ex, &mut o, n, h, Some(&x), None, norm, None)
    });
    time("ffn up + gelu", flops(h, ffn), &mut |ex| {
        let act = Activation::GeluErf;
        B::dense(
            ex,
            Weight::Prepared(&up),
            h,
            ffn,
            Some(&bias_f),
            View::rows(&o, h),
            n,
            &mut f,
            act,
        )
    });
    time("ffn down", flops(ffn, h), &mut |ex| {
        B::dense(
            ex,
            Weight::Prepared(&down),
            ffn,
            h,
            Some(&bias_h),
            View::rows(&f, ffn),
            n,
            &mut o,
            id,
        )
    });
    out
}

fn model_ms<B: Backend>(b: B, dir: &str, a: &Args) -> f64 {
    let model = BertModel::load_on(b.clone(), dir, &ModelOptions::default()).expect("the model");
    let vocab = model.config().vocab_size as u32;
    let ids: Vec<u32> = (0..a.batch * a.seq)
        .map(|i| 1000 + (i as u32 * 7919) % (vocab - 1000))
        .collect();
    let zeros = vec![0; ids.len()];
    let mask = vec![1; ids.len()];
    let inputs = Inputs {
        input_ids: &ids,
        segment_ids: &zeros,
        input_mask: &mask,
        batch: a.batch,
        seq: a.seq,
    };
    let mut ctx = Context::on(&b, a.threads);
    median_ms(a.runs, || {
        model
            .embed(&mut ctx, &inputs, Pooling::Mean, true)
            .expect("embed");
    })
}

fn main() {
    let a = args();
    let vk = match Vulkan::open(DeviceChoice::Any) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("vulkan bench: no device ({e})");
            return;
        }
    };
    println!(
        "vulkan: {}; cpu: {} with {} threads; batch {} x seq {}; median of {} runs",
        vk.device_name(),
        Cpu.describe(),
        a.threads,
        a.batch,
        a.seq,
        a.runs
    );
    let mut gx = vk.exec(1);
    let mut cx = Cpu.exec(a.threads);
    let gpu = stages(&vk, &a, &mut gx);
    let cpu = stages(&Cpu, &a, &mut cx);
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10}",
        "stage", "vk ms", "vk GF/s", "cpu ms", "cpu GF/s"
    );
    for ((name, g, fl), (_, c, _)) in gpu.iter().zip(&cpu) {
        let rate = |ms: f64| {
            if *fl > 0.0 {
                format!("{:.1}", fl / ms * 1e3)
            } else {
                "-".into()
            }
        };
        println!(
            "{name:<14} {g:>10.2} {:>10} {c:>10.2} {:>10}",
            rate(*g),
            rate(*c)
        );
    }
    let dir = a.model.clone().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/libbert/all-MiniLM-L6-v2")
    });
    if std::path::Path::new(&dir).is_dir() {
        let g = model_ms(vk.clone(), &dir, &a);
        let c = model_ms(Cpu, &dir, &a);
        println!("embed (whole model, {dir}): vulkan {g:.1} ms, cpu {c:.1} ms");
    }
}
