//! Dense layers whose weights stream from memory: one `rows x in -> out` product over each
//! of ~340 MB of distinct weight matrices (BERT-base's whole encoder, far past what stays in
//! cache from one forward pass to the next), so the figure is how fast the kernels consume
//! weights arriving from memory, the limit at small batches.
//!
//! `cargo bench --bench stream -- [THREADS [ROWS [IN OUT]]]` (defaults: 2 16 768 3072).
//! Prints the median and best of 15 passes as ms and GB/s of weight bytes. For scale, two
//! threads summing a 340 MB array in order read about 25 GB/s on the machine of
//! BENCHMARKS.md, one thread about 13.

use bert::backend::cpu::Dense;
use bert::backend::Pool;
use std::time::Instant;

#[path = "common/timing.rs"]
mod timing;
use timing::{median, values};

fn arg(args: &[String], i: usize, default: usize) -> usize {
    args.get(i).map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("argument {i}: not a number: {s}"))
    })
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let threads = arg(&args, 0, 2);
    let rows = arg(&args, 1, 16);
    let (i, o) = (arg(&args, 2, 768), arg(&args, 3, 3072));
    let count = (340_000_000 / (i * o * 4)).max(1);
    let pool = Pool::new(threads);
    let layers: Vec<Dense> = (0..count)
        .map(|s| Dense::new(i, o, values(i * o, s as u64 + 1), vec![0.0; o]))
        .collect();
    let x = values(rows * i, 0);
    let mut y = vec![0.0f32; rows * o];
    let times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for d in &layers {
                d.forward(&x, rows, &mut y, &pool);
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    let bytes = (count * i * o * 4) as f64;
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let median = median(times);
    println!(
        "{threads} thread(s), {rows} rows, {i} -> {o} x {count} matrices ({:.0} MB): median {:.2} ms ({:.1} GB/s), best {:.2} ms ({:.1} GB/s)",
        bytes / 1e6,
        median * 1e3,
        bytes / median / 1e9,
        best * 1e3,
        bytes / best / 1e9
    );
}
