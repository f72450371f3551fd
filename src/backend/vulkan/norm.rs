//! Residual add + LayerNorm (`shaders/layer_norm.wgsl`).

use super::buffer::VkBuf;
use super::exec::{row_groups, VulkanExec};
use super::rows::push;
use crate::Result;

/// `x = LayerNorm(x + residual) · gamma + beta` in place over `[rows, width]`.
pub(super) fn layer_norm(
    ex: &VulkanExec,
    x: &mut VkBuf,
    (rows, width): (usize, usize),
    residual: Option<&VkBuf>,
    (gamma, beta, eps): (&VkBuf, &VkBuf, f32),
) -> Result<()> {
    let n = rows * width;
    let xs = ex.input(x, n, "the normalised buffer")?;
    let res = match residual {
        Some(r) => ex.input(r, n, "the residual")?,
        None => ex.gpu.dummy.clone(),
    };
    let bindings = [
        xs.into_bytes(),
        res.into_bytes(),
        ex.input(gamma, width, "gamma")?.into_bytes(),
        ex.input(beta, width, "beta")?.into_bytes(),
    ];
    let p = push(&[
        rows as u32,
        width as u32,
        u32::from(residual.is_some()),
        eps.to_bits(),
    ]);
    ex.dispatch(&ex.gpu.kernels.layer_norm, &bindings, p, row_groups(rows))
}
