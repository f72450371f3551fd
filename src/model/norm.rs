//! LayerNorm parameters (`modeling.py: layer_norm`, i.e. `tf.contrib.layers.layer_norm`):
//! over the last axis, biased variance, epsilon inside the square root, then `* gamma + beta`.

use crate::backend::cpu;
use crate::backend::Pool;
use crate::weights::Weights;
use crate::{Error, Result};
use std::sync::Mutex;

/// Fewest elements for which [`LayerNorm::forward_residual`] splits rows among threads: below
/// it a wake-up costs about what the split saves.
const PARALLEL_MIN: usize = 32 * 1024;

/// `{scope}/LayerNorm/gamma` and `/beta`, both `[hidden]`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Loads `{scope}/gamma` and `{scope}/beta` (scope ends in `LayerNorm`).
    pub fn load(w: &Weights, scope: &str, width: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            gamma: w.get_vec(&format!("{scope}/gamma"), &[width])?,
            beta: w.get_vec(&format!("{scope}/beta"), &[width])?,
            eps,
        })
    }

    /// x: `[rows, width]`, normalised in place.
    pub fn forward(&self, x: &mut [f32]) {
        cpu::layer_norm(x, self.gamma.len(), &self.gamma, &self.beta, self.eps);
    }

    /// `x = LayerNorm(x + residual)` (both `[rows, width]`), in one pass, rows split among
    /// the pool's threads (see [`Self::forward_residual_on`]).
    pub fn forward_residual(&self, x: &mut [f32], residual: &[f32], pool: &Pool) {
        let width = self.gamma.len();
        let residual = &residual[..x.len()];
        let rows = x.len() / width.max(1);
        let parts = if width > 0 && x.len() >= PARALLEL_MIN {
            pool.threads().min(rows)
        } else {
            1
        };
        if parts <= 1 {
            return self.forward_residual_on(x, residual);
        }
        // Contiguous row chunks, chunk `p` for thread `p` (`Pool::run`): where `gemm` split
        // the dense product before by rows, these are (with two threads and row counts that
        // are multiples of 16, as BERT's batches are) the rows that thread wrote, still in its L2.
        let per = rows.div_ceil(parts) * width;
        let chunks: Vec<Mutex<(&mut [f32], &[f32])>> = x
            .chunks_mut(per)
            .zip(residual.chunks(per))
            .map(Mutex::new)
            .collect();
        pool.run(chunks.len(), &|i| {
            let mut part = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
            let (x, residual) = &mut *part;
            self.forward_residual_on(x, residual);
        });
    }

    /// `x = LayerNorm(x + residual)` on the calling thread.
    pub fn forward_residual_on(&self, x: &mut [f32], residual: &[f32]) {
        let n = x.len();
        cpu::layer_norm_residual(
            x,
            &residual[..n],
            self.gamma.len(),
            &self.gamma,
            &self.beta,
            self.eps,
        );
    }
}

/// Loads a dense layer `{scope}/kernel` `[in, out]` (Google's layout) and `{scope}/bias`
/// `[out]`, on the kernel's storage: f32, f16 or int8 ([`crate::weights::QuantizedTensor`]).
pub fn load_dense(w: &Weights, scope: &str, in_dim: usize, out_dim: usize) -> Result<cpu::Dense> {
    let name = format!("{scope}/kernel");
    let bias_name = format!("{scope}/bias");
    if let Some(q) = w.quantized(&name) {
        if q.shape() != [in_dim, out_dim] {
            return Err(Error::Shape(format!(
                "tensor {name} has shape {:?}, the config needs {:?}",
                q.shape(),
                [in_dim, out_dim]
            )));
        }
        let bias = w.get_vec(&bias_name, &[out_dim])?;
        return q
            .dense(in_dim, out_dim, bias)
            .map_err(|e| Error::Shape(format!("tensor {name}: {e}")));
    }
    let kernel = w.get(&name, &[in_dim, out_dim])?;
    let bias = w.get_vec(&bias_name, &[out_dim])?;
    Ok(cpu::Dense::from_slice(in_dim, out_dim, kernel, bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splitting rows among threads must give each row exactly what one thread gives it:
    /// every row normalized once, with its own residual, in any split (ragged ones too).
    #[test]
    fn residual_norm_split_among_threads_matches_one_thread_bit_for_bit() {
        let width = 384;
        let ln = LayerNorm {
            gamma: (0..width).map(|j| 0.5 + (j % 7) as f32 * 0.1).collect(),
            beta: (0..width).map(|j| (j % 5) as f32 * 0.01 - 0.02).collect(),
            eps: 1e-12,
        };
        // 101 rows: above `PARALLEL_MIN` and not a multiple of 2 or 3.
        let rows = 101;
        assert!(rows * width >= PARALLEL_MIN);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.03 + (i / width) as f32)
            .collect();
        let residual: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) * 0.1)
            .collect();
        let mut want = x.clone();
        ln.forward_residual_on(&mut want, &residual);
        // The reference itself normalizes: `(y - beta) / gamma` has mean 0 and variance 1.
        for row in want.chunks(width) {
            let z: Vec<f64> = (0..width)
                .map(|j| ((row[j] - ln.beta[j]) / ln.gamma[j]) as f64)
                .collect();
            let mean = z.iter().sum::<f64>() / width as f64;
            let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / width as f64;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
        for threads in [1, 2, 3, 4] {
            let pool = Pool::new(threads);
            let mut got = x.clone();
            ln.forward_residual(&mut got, &residual, &pool);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads differ from one"
            );
        }
    }
}
