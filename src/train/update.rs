//! The gradient side of an optimizer update, spread over the pool: averaging the
//! accumulated gradients and taking their global norm in one pass.

use std::sync::atomic::{AtomicU64, Ordering};

use super::kernels::SharedMut;
use super::params::Grads;
use crate::backend::Pool;

/// Elements per task.
const CHUNK: usize = 1 << 15;

/// `grads *= alpha` ([`Grads::scale`]), then returns [`Grads::tf_global_norm`] of the result,
/// in one pass. The f64 sum of squares is taken per fixed chunk and then added chunk by
/// chunk, so it does not depend on the thread count.
pub(crate) fn scale_and_tf_norm(grads: &mut Grads, alpha: f32, pool: &Pool) -> f64 {
    let word = grads.layout.word;
    let mut tasks = Vec::new();
    for (i, t) in grads.data.iter().enumerate() {
        for start in (0..t.len()).step_by(CHUNK) {
            tasks.push((i, start, (start + CHUNK).min(t.len())));
        }
    }
    // f64 bits of each task's sum.
    let sums: Vec<AtomicU64> = tasks.iter().map(|_| AtomicU64::new(0)).collect();
    let gs: Vec<SharedMut<'_>> = grads.data.iter_mut().map(|t| SharedMut::new(t)).collect();
    pool.run(tasks.len(), &|t| {
        let (i, a, b) = tasks[t];
        // SAFETY: tasks cover disjoint ranges of each variable.
        let g = unsafe { gs[i].part(a, b - a) };
        let mut acc = [0.0f64; 8];
        for c in g.chunks_mut(8) {
            for (l, x) in c.iter_mut().enumerate() {
                *x *= alpha;
                acc[l] += *x as f64 * *x as f64;
            }
        }
        // The word embeddings count per token occurrence (`word_occurrence_sq`).
        if i != word {
            sums[t].store(acc.iter().sum::<f64>().to_bits(), Ordering::Relaxed);
        }
    });
    grads.word_occurrence_sq *= (alpha as f64).powi(2);
    let dense: f64 = sums
        .iter()
        .map(|s| f64::from_bits(s.load(Ordering::Relaxed)))
        .sum();
    (dense + grads.word_occurrence_sq).sqrt()
}
