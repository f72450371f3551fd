//! Encoder forward-pass latency, in the same form as the ONNX Runtime peer
//! (`shared/bench/bench_ort.py`), so `scripts/bench_encoder.sh` can put both side by side.
//!
//! ```text
//! cargo bench --bench encoder -- --model /tmp/peers/models/minilm-l6 --label minilm-l6 \
//!     --threads 1 [--shapes 1x16,1x128,8x128,32x128,1x384] [--budget-s 3] [--min-runs 5]
//!     [--max-runs 200] [--warmup 1] [--dtype f32|f16|int8]
//! ```
//!
//! `--dtype` converts the model on load (`ModelOptions::dtype`; the default keeps what the
//! model file stores, e.g. an int8 `.bert` file) and is reported in the `variant` field
//! (`""` for f32, `"int8"`, `"f16"`), so `scripts/bench_encoder.sh` can put the variants side
//! by side.
//!
//! Inputs are the peer's: the same LCG token ids (`[CLS] … [SEP]`), mask all 1, segment 0.
//! A run is one `BertModel::forward` without the all-layers copy. Each shape: `--warmup`
//! untimed runs, then timed runs until both `--min-runs` and `--budget-s` are reached (or
//! `--max-runs`). One JSON line per shape with the median wall and process-CPU milliseconds
//! per run (with one thread the CPU time is the compute time even when other processes
//! compete for the cores) and the 1-minute load average before/after.
//!
//! `--stages` instead prints, per shape, the time of each stage of one layer (fused QKV
//! dense, attention, attention-output dense, FFN up with GELU, FFN down, the two residual
//! LayerNorms) on the model's widths with random values, and each dense's GFLOP/s, after the
//! register-only FMA peak of one core measured in the same run. Stages are timed in process
//! CPU with one thread and in wall time with more.

use bert::backend::cpu::{self, Activation, Dense};
use bert::backend::int8::QuantizedKernel;
use bert::backend::Pool;
use bert::backend::WeightBytes;
use bert::{BertConfig, BertModel, Context, DType, Inputs, ModelOptions};
use std::time::Instant;

#[path = "common/ids.rs"]
mod ids;
use ids::make_ids;
#[path = "common/peaks.rs"]
mod peaks;
#[path = "common/timing.rs"]
mod timing;
use timing::values;

/// CPU time of the whole process (all threads), like Python's `time.process_time()`; NaN
/// where the platform has no such clock here.
fn process_cpu_s() -> f64 {
    timing::process_cpu_ns().map_or(f64::NAN, |ns| ns as f64 * 1e-9)
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
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

fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// Median ms of `f` over at least 5 runs and ~0.3 s: process-CPU time with one thread
/// (robust when other processes compete for the cores), wall time with more, because the
/// CPU time of two threads adds up their work and hides how well a stage splits.
fn stage_ms(f: &mut dyn FnMut(), wall: bool) -> f64 {
    f();
    let mut v = Vec::new();
    let start = Instant::now();
    while v.len() < 5 || (start.elapsed().as_secs_f64() < 0.3 && v.len() < 1000) {
        if wall {
            let w = Instant::now();
            f();
            v.push(w.elapsed().as_secs_f64() * 1e3);
        } else {
            let c = process_cpu_s();
            f();
            v.push((process_cpu_s() - c) * 1e3);
        }
    }
    median(&v)
}

/// Per-stage CPU time of one encoder layer with `c`'s widths.
fn stages(c: &BertConfig, label: &str, batch: usize, seq: usize, pool: &Pool, dtype: DType) {
    let (h, i, heads) = (c.hidden_size, c.intermediate_size, c.num_attention_heads);
    let rows = batch * seq;
    let dense = |k, n, seed| {
        let (w, b) = (values(k * n, seed), values(n, seed + 1));
        match dtype {
            DType::F32 => Dense::new(k, n, w, b),
            DType::F16 => {
                let bytes = w
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect();
                Dense::new_f16(k, n, WeightBytes::Owned(bytes), b).expect("f16 dense")
            }
            DType::Int8 => Dense::new_int8(&QuantizedKernel::quantize(&w, k, n), b),
        }
    };
    let (qkv, ao, up, down) = (
        dense(h, 3 * h, 1),
        dense(h, h, 3),
        dense(h, i, 5),
        dense(i, h, 7),
    );
    let x = values(rows * h, 9);
    let mut qkv_out = values(rows * 3 * h, 10);
    let mut ctx = vec![0.0f32; rows * h];
    let mut y = vec![0.0f32; rows * h];
    let mut inter = vec![0.0f32; rows * i];
    let bias = vec![0.0f32; rows];
    let (g, b) = (vec![1.0f32; h], vec![0.0f32; h]);
    let gf = |k: usize, n: usize, ms: f64| 2.0 * (rows * k * n) as f64 / ms * 1e-6;
    let wall = pool.threads() > 1;
    let time_ms = |f: &mut dyn FnMut()| stage_ms(f, wall);
    let t_qkv = time_ms(&mut || qkv.forward(&x, rows, &mut qkv_out, pool));
    for v in qkv_out.iter_mut() {
        *v *= 0.2;
    }
    let t_att = time_ms(&mut || {
        cpu::attention(
            &qkv_out,
            batch,
            seq,
            heads,
            h / heads,
            &bias,
            &mut ctx,
            pool,
        )
    });
    let t_ao = time_ms(&mut || ao.forward(&ctx, rows, &mut y, pool));
    let t_ln = time_ms(&mut || cpu::layer_norm_residual(&mut y, &x, h, &g, &b, 1e-12));
    let t_up = time_ms(&mut || up.forward_act(&x, rows, &mut inter, Activation::GeluErf, pool));
    let t_up0 = time_ms(&mut || up.forward(&x, rows, &mut inter, pool));
    let t_down = time_ms(&mut || down.forward(&inter, rows, &mut y, pool));
    let mut sm = values(heads * rows * seq, 11);
    let t_sm = time_ms(&mut || cpu::softmax_rows(&mut sm, seq));
    let total = t_qkv + t_att + t_ao + t_up + t_down + 2.0 * t_ln;
    let att_flop = 4.0 * (batch * seq * seq * h) as f64;
    println!(
        "{label} {dtype} ({batch},{seq}) threads {}: layer {total:.3} ms {} | qkv {t_qkv:.3} ({:.0} GF/s) | attention {t_att:.3} ({:.0} GF/s; its softmax alone {t_sm:.3}) | attn-out {t_ao:.3} ({:.0} GF/s) | ffn-up+gelu {t_up:.3} (no act {t_up0:.3}, {:.0} GF/s) | ffn-down {t_down:.3} ({:.0} GF/s) | 2x residual LN {:.3}",
        pool.threads(),
        if wall { "wall" } else { "CPU" },
        gf(h, 3 * h, t_qkv),
        att_flop / t_att * 1e-6,
        gf(h, h, t_ao),
        gf(h, i, t_up0),
        gf(i, h, t_down),
        2.0 * t_ln
    );
}

fn main() {
    let mut model_dir = None;
    let mut label = String::from("model");
    let mut threads = 1usize;
    let mut shapes = String::from("1x16,1x128,8x128,32x128,1x384");
    let (mut min_runs, mut max_runs, mut warmup) = (5usize, 200usize, 1usize);
    let mut budget_s = 3.0f64;
    let mut stage_mode = false;
    let mut dtype: Option<DType> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model_dir = Some(val()),
            "--label" => label = val(),
            "--threads" => threads = val().parse().expect("--threads"),
            "--shapes" => shapes = val(),
            "--min-runs" => min_runs = val().parse().expect("--min-runs"),
            "--max-runs" => max_runs = val().parse().expect("--max-runs"),
            "--budget-s" => budget_s = val().parse().expect("--budget-s"),
            "--warmup" => warmup = val().parse().expect("--warmup"),
            "--stages" => stage_mode = true,
            "--dtype" => dtype = Some(val().parse().expect("--dtype f32|f16|int8")),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let Some(model_dir) = model_dir else {
        eprintln!("usage: cargo bench --bench encoder -- --model DIR [--label L] [--threads N] [--shapes 1x16,...]");
        return;
    };
    let t0 = Instant::now();
    let opts = ModelOptions {
        dtype,
        ..ModelOptions::default()
    };
    let model = BertModel::load_with(&model_dir, &opts).expect("load model");
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    // What the model holds: the requested dtype, else what the file stores.
    let dtype = model.dtype();
    let variant = match dtype {
        DType::F32 => "",
        d => d.name(),
    };
    let mut ctx = Context::new(threads);
    if stage_mode {
        if let Some((f32_peak, _)) = peaks::measured_peaks() {
            println!(
                "register-only f32 FMA peak of one core in this run: {f32_peak:.1} GF/s \
                 (x{threads} threads: {:.1})",
                f32_peak * threads as f64
            );
        }
        let pool = Pool::new(threads);
        for shape in shapes.split(',') {
            let (b, s) = shape.split_once('x').expect("shape BxS");
            stages(
                model.config(),
                &label,
                b.parse().unwrap(),
                s.parse().unwrap(),
                &pool,
                dtype,
            );
        }
        return;
    }
    for shape in shapes.split(',') {
        let (b, s) = shape.split_once('x').expect("shape BxS");
        let (batch, seq): (usize, usize) = (b.parse().unwrap(), s.parse().unwrap());
        let ids = make_ids(batch, seq);
        let inputs = Inputs {
            input_ids: &ids,
            segment_ids: &[],
            input_mask: &[],
            batch,
            seq,
        };
        let run = |ctx: &mut Context| {
            let out = model.forward(ctx, &inputs, false).expect("forward");
            std::hint::black_box(out.sequence_output()[0]);
        };
        for _ in 0..warmup {
            run(&mut ctx);
        }
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        let l0 = load1();
        let start = Instant::now();
        while wall.len() < max_runs
            && (wall.len() < min_runs || start.elapsed().as_secs_f64() < budget_s)
        {
            let (t, c) = (Instant::now(), process_cpu_s());
            run(&mut ctx);
            wall.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push((process_cpu_s() - c) * 1e3);
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| r4(*x).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{{\"peer\": \"libbert\", \"model\": \"{label}\", \"variant\": \"{variant}\", \"batch\": {batch}, \"seq\": {seq}, \"threads\": {}, \"median_ms\": {}, \"median_cpu_ms\": {}, \"load1\": [{:.2}, {:.2}], \"runs\": {}, \"load_ms\": {:.1}, \"runs_ms\": [{}], \"cpu_ms\": [{}]}}",
            ctx.threads(),
            r4(median(&wall)),
            r4(median(&cpu)),
            l0,
            load1(),
            wall.len(),
            load_ms,
            list(&wall),
            list(&cpu),
        );
    }
}
