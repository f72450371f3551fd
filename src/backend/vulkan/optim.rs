//! The optimizer's passes on the device (`shaders/{square_sum,adamw}.wgsl`): parameters,
//! gradients and AdamW slots stay there; only each gradient's per-chunk sums of squares
//! come back, for the global norm.

use super::buffer::VkBuf;
use super::exec::{linear_groups, VulkanExec};
use super::rows::push;
use crate::backend::AdamStep;
use crate::Result;

/// Values per partial sum (`CHUNK` in square_sum.wgsl).
const CHUNK: usize = 4096;

/// `x[..n] *= alpha`, then `Σ x²`: f32 sums of 4096-value chunks on the device, added in
/// f64 on the host in chunk order (so the result does not depend on scheduling).
pub(super) fn scale_and_square_sum(
    ex: &VulkanExec,
    x: &VkBuf,
    n: usize,
    alpha: f32,
) -> Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    let chunks = n.div_ceil(CHUNK);
    let partials = ex.gpu.device_buffer(chunks)?;
    let bindings = [
        ex.input(x, n, "the scaled buffer")?.into_bytes(),
        partials.clone().into_bytes(),
    ];
    let p = push(&[n as u32, alpha.to_bits()]);
    // One 256-wide workgroup per chunk.
    let groups = linear_groups(chunks * 256);
    ex.dispatch(&ex.gpu.kernels.square_sum, &bindings, p, groups)?;
    let sums = ex.read_now(partials, chunks)?;
    Ok(sums.iter().map(|&s| s as f64).sum())
}

/// One AdamW update of `value[..n]`, zeroing `grad`.
pub(super) fn adamw(
    ex: &VulkanExec,
    (value, grad, m, v): (&VkBuf, &VkBuf, &VkBuf, &VkBuf),
    k: &AdamStep,
) -> Result<()> {
    let n = value.len;
    let bindings = [
        ex.input(value, n, "the variable")?.into_bytes(),
        ex.input(grad, n, "its gradient")?.into_bytes(),
        ex.input(m, n, "its first moment")?.into_bytes(),
        ex.input(v, n, "its second moment")?.into_bytes(),
    ];
    let p = push(&[
        n as u32,
        k.lr.to_bits(),
        k.beta_1.to_bits(),
        k.beta_2.to_bits(),
        k.one_minus_beta_1.to_bits(),
        k.one_minus_beta_2.to_bits(),
        k.epsilon.to_bits(),
        k.weight_decay.to_bits(),
        k.grad_scale.to_bits(),
    ]);
    ex.dispatch(&ex.gpu.kernels.adamw, &bindings, p, linear_groups(n))
}
