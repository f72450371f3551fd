//! Residual add + LayerNorm (`shaders/layer_norm.wgsl`), and as training runs it: with
//! dropout and a record, and its backward pass (`shaders/layer_norm_{train,backward}.wgsl`).

use super::buffer::VkBuf;
use super::exec::{row_groups, VulkanExec};
use super::grads::{column_sums, mask_words};
use super::rows::push;
use crate::backend::{Dropout, View};
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

/// [`layer_norm`] as training runs it (`shaders/layer_norm_train.wgsl`): `x` dropped by
/// `drop` before the residual add, `x̂` and `1/σ` written into `(xhat, rstd)`.
pub(super) fn layer_norm_train(
    ex: &VulkanExec,
    x: &VkBuf,
    (rows, width): (usize, usize),
    (residual, drop): (Option<&VkBuf>, Option<Dropout>),
    (gamma, beta, eps): (&VkBuf, &VkBuf, f32),
    (xhat, rstd): (&mut VkBuf, &mut VkBuf),
) -> Result<()> {
    let n = rows * width;
    let res = match residual {
        Some(r) => ex.input(r, n, "the residual")?,
        None => ex.gpu.dummy.clone(),
    };
    let bindings = [
        ex.input(x, n, "the normalised buffer")?.into_bytes(),
        res.into_bytes(),
        ex.input(gamma, width, "gamma")?.into_bytes(),
        ex.input(beta, width, "beta")?.into_bytes(),
        ex.grow(xhat, n)?.into_bytes(),
        ex.grow(rstd, rows)?.into_bytes(),
    ];
    let [lo, hi, t, s] = mask_words(drop);
    let p = push(&[
        rows as u32,
        width as u32,
        u32::from(residual.is_some()),
        eps.to_bits(),
        u32::from(drop.is_some()),
        lo,
        hi,
        t,
        s,
    ]);
    ex.dispatch(
        &ex.gpu.kernels.layer_norm_train,
        &bindings,
        p,
        row_groups(rows),
    )
}

/// Backward of [`layer_norm_train`] (see `Backend::layer_norm_backward`): `dsum`, the
/// dropped branch's gradient into `branch`, and `dgamma += Σ dy·x̂`, `dbeta += Σ dy` as
/// column sums.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_backward(
    ex: &VulkanExec,
    dy: &VkBuf,
    (rows, width): (usize, usize),
    (xhat, rstd, gamma): (&VkBuf, &VkBuf, &VkBuf),
    (dgamma, dbeta): (&VkBuf, &VkBuf),
    dsum: &mut VkBuf,
    branch: Option<(Option<Dropout>, &mut VkBuf)>,
) -> Result<()> {
    let n = rows * width;
    let (drop, dz) = match branch {
        Some((d, z)) => (d, Some(ex.grow(z, n)?)),
        None => (None, None),
    };
    let bindings = [
        ex.input(dy, n, "the output gradient")?.into_bytes(),
        ex.input(xhat, n, "the record's x̂")?.into_bytes(),
        ex.input(rstd, rows, "the record's 1/σ")?.into_bytes(),
        ex.input(gamma, width, "gamma")?.into_bytes(),
        ex.grow(dsum, n)?.into_bytes(),
        dz.clone()
            .unwrap_or_else(|| ex.gpu.dummy.clone())
            .into_bytes(),
    ];
    let [lo, hi, t, s] = mask_words(drop);
    let p = push(&[
        rows as u32,
        width as u32,
        u32::from(dz.is_some()),
        u32::from(drop.is_some()),
        lo,
        hi,
        t,
        s,
    ]);
    ex.dispatch(
        &ex.gpu.kernels.layer_norm_backward,
        &bindings,
        p,
        row_groups(rows),
    )?;
    let dyv = View::rows(dy, width);
    column_sums(ex, dyv, Some(xhat), (rows, width), dgamma)?;
    column_sums(ex, dyv, None, (rows, width), dbeta)
}
