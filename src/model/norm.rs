//! LayerNorm parameters (`modeling.py: layer_norm`, i.e. `tf.contrib.layers.layer_norm`):
//! over the last axis, biased variance, epsilon inside the square root, then `* gamma + beta`.

use crate::backend::cpu;
use crate::weights::Weights;
use crate::{Error, Result};

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

    /// `x = LayerNorm(x + residual)` (both `[rows, width]`), in one pass.
    pub fn forward_residual(&self, x: &mut [f32], residual: &[f32]) {
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
