//! The optimizer's element-wise passes: averaging gradients with their sum of squares (the
//! global norm), and the AdamW update (`optimization.py: AdamWeightDecayOptimizer`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::par::SharedMut;
use crate::backend::{AdamStep, Pool};

/// Elements per task.
const CHUNK: usize = 1 << 15;

/// `x *= alpha`, then `Σ x²` in f64: per fixed chunk, then chunk by chunk in order, so the
/// sum does not depend on the thread count.
pub(crate) fn scale_and_square_sum(pool: &Pool, x: &mut [f32], alpha: f32) -> f64 {
    let n = x.len();
    let tasks = n.div_ceil(CHUNK);
    // f64 bits of each task's sum.
    let sums: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
    let xs = SharedMut::new(x);
    pool.run(tasks, &|t| {
        let start = t * CHUNK;
        // SAFETY: tasks cover disjoint ranges.
        let g = unsafe { xs.part(start, CHUNK.min(n - start)) };
        let mut acc = [0.0f64; 8];
        if alpha != 1.0 {
            g.iter_mut().for_each(|v| *v *= alpha);
        }
        for c in g.chunks(8) {
            for (l, v) in c.iter().enumerate() {
                acc[l] += *v as f64 * *v as f64;
            }
        }
        sums[t].store(acc.iter().sum::<f64>().to_bits(), Ordering::Relaxed);
    });
    sums.iter()
        .map(|s| f64::from_bits(s.load(Ordering::Relaxed)))
        .sum()
}

/// One AdamW update, zeroing the gradient: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `update = m/(√v + ε) (+ decay · θ)`, `θ ← θ − lr · update` — no bias correction — in
/// f32 like the TF ops, element by element (so the result does not depend on threads).
pub(crate) fn adamw(
    pool: &Pool,
    (p, g, m, v): (&mut [f32], &mut [f32], &mut [f32], &mut [f32]),
    k: &AdamStep,
) {
    let n = p.len();
    let (ps, gs, ms, vs) = (
        SharedMut::new(p),
        SharedMut::new(&mut g[..n]),
        SharedMut::new(&mut m[..n]),
        SharedMut::new(&mut v[..n]),
    );
    pool.run(n.div_ceil(CHUNK), &|t| {
        let (a, len) = (t * CHUNK, CHUNK.min(n - t * CHUNK));
        // SAFETY: tasks cover disjoint ranges of each buffer.
        let (p, g, m, v) = unsafe {
            (
                ps.part(a, len),
                gs.part(a, len),
                ms.part(a, len),
                vs.part(a, len),
            )
        };
        for j in 0..len {
            let gj = g[j] * k.grad_scale;
            let mj = k.beta_1 * m[j] + k.one_minus_beta_1 * gj;
            let vj = k.beta_2 * v[j] + k.one_minus_beta_2 * (gj * gj);
            m[j] = mj;
            v[j] = vj;
            let mut update = mj / (vj.sqrt() + k.epsilon);
            if k.weight_decay != 0.0 {
                update += k.weight_decay * p[j];
            }
            p[j] -= k.lr * update;
            g[j] = 0.0;
        }
    });
}
