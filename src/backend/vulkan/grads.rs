//! The element-wise and row ops of the backward pass: dropout masks, activation
//! derivatives, bias gradients (column sums), row scatters (the pooler's gather and the
//! embedding tables), and the dense layers' gradients on the dense shader
//! (`shaders/{dropout,act_backward,column_sums,scatter,dense}.wgsl`).

use vulkano::buffer::Subbuffer;

use super::buffer::VkBuf;
use super::dense::{product, KernelView, Operand};
use super::exec::{linear_groups, VulkanExec};
use super::kernels::{act_code, Push};
use super::rows::push;
use super::Vulkan;
use crate::backend::{Activation, Dropout, Layout, View};
use crate::{Error, Result};

/// A mask's four push-constant words: the key's low and high words, threshold, scale.
pub(super) fn mask_words(d: Option<Dropout>) -> [u32; 4] {
    match d {
        Some(d) => [
            d.key as u32,
            (d.key >> 32) as u32,
            d.threshold.to_bits(),
            d.scale.to_bits(),
        ],
        None => [0; 4],
    }
}

/// Values a view of `rows` rows of `width` reads.
pub(super) fn view_len(v: &View<'_, Vulkan>, rows: usize, width: usize) -> usize {
    if rows == 0 || width == 0 {
        0
    } else {
        v.col + (rows - 1) * v.stride + width
    }
}

/// `x[..n] *= mask(start + i)`.
pub(super) fn dropout(ex: &VulkanExec, x: &VkBuf, n: usize, mask: Dropout) -> Result<()> {
    let bindings = [ex.input(x, n, "the dropped buffer")?.into_bytes()];
    let [lo, hi, t, s] = mask_words(Some(mask));
    let p = push(&[n as u32, 0, lo, hi, t, s]);
    ex.dispatch(&ex.gpu.kernels.dropout, &bindings, p, linear_groups(n))
}

/// `d[..n] *= act'(x)`.
pub(super) fn activation_backward(
    ex: &VulkanExec,
    x: &VkBuf,
    n: usize,
    act: Activation,
    d: &VkBuf,
) -> Result<()> {
    if act == Activation::Identity {
        return Ok(());
    }
    let bindings = [
        ex.input(x, n, "the activation's input")?.into_bytes(),
        ex.input(d, n, "the gradient")?.into_bytes(),
    ];
    let p = push(&[n as u32, act_code(act)]);
    ex.dispatch(&ex.gpu.kernels.act_backward, &bindings, p, linear_groups(n))
}

/// `out[c] += Σ_r a[r, c]` (times `b[r, c]`, row-major `[rows, width]`, when given).
pub(super) fn column_sums(
    ex: &VulkanExec,
    a: View<'_, Vulkan>,
    b: Option<&VkBuf>,
    (rows, width): (usize, usize),
    out: &VkBuf,
) -> Result<()> {
    let bb = match b {
        Some(b) => ex.input(b, rows * width, "the column sums' factor")?,
        None => ex.gpu.dummy.clone(),
    };
    let bindings = [
        ex.input(a.buf, view_len(&a, rows, width), "the summed rows")?
            .into_bytes(),
        bb.into_bytes(),
        ex.input(out, width, "the column sums")?.into_bytes(),
    ];
    let p: Push = push(&[
        rows as u32,
        width as u32,
        a.col as u32,
        a.stride as u32,
        u32::from(b.is_some()),
    ]);
    ex.dispatch(
        &ex.gpu.kernels.column_sums,
        &bindings,
        p,
        linear_groups(width),
    )
}

/// `dx[targets[i]] += d[i]` for every row `i` of `d` (rows of `width`), in `i` order per
/// target: the pairs grouped by target on the host so that one invocation owns each
/// output value (no atomics).
pub(super) fn scatter_rows(
    ex: &VulkanExec,
    d: &Subbuffer<[f32]>,
    width: usize,
    targets: &[u32],
    dx: &VkBuf,
) -> Result<()> {
    if targets.is_empty() || width == 0 {
        return Ok(());
    }
    let limit = dx.len / width;
    if let Some(t) = targets.iter().find(|&&t| t as usize >= limit) {
        return Err(Error::InvalidArgument(format!(
            "vulkan: scattered row {t} is outside 0..{limit}"
        )));
    }
    // Sources by target, stably (each target's sources stay in row order).
    let mut order: Vec<u32> = (0..targets.len() as u32).collect();
    order.sort_by_key(|&i| targets[i as usize]);
    let mut groups = Vec::new();
    let mut s = 0;
    while s < order.len() {
        let t = targets[order[s] as usize];
        let e = s + order[s..]
            .iter()
            .take_while(|&&i| targets[i as usize] == t)
            .count();
        groups.extend([t, s as u32, (e - s) as u32]);
        s = e;
    }
    let n = groups.len() / 3;
    let bindings = [
        d.clone().into_bytes(),
        ex.gpu.host_buffer(&groups, 0)?.into_bytes(),
        ex.gpu.host_buffer(&order, 0)?.into_bytes(),
        ex.input(dx, limit * width, "the scatter's output")?
            .into_bytes(),
    ];
    let p = push(&[n as u32, width as u32]);
    ex.dispatch(
        &ex.gpu.kernels.scatter,
        &bindings,
        p,
        linear_groups(n * width),
    )
}

/// `dw += xᵀ · dy` for a plain kernel of `layout`, over `rows` rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_weight_grad(
    ex: &VulkanExec,
    x: View<'_, Vulkan>,
    dy: View<'_, Vulkan>,
    (rows, in_dim, out_dim): (usize, usize, usize),
    layout: Layout,
    dw: &VkBuf,
) -> Result<()> {
    let xs = ex.input(x.buf, view_len(&x, rows, in_dim), "the layer's input")?;
    let ds = ex.input(dy.buf, view_len(&dy, rows, out_dim), "the output gradient")?;
    let out = ex.input(dw, in_dim * out_dim, "the kernel's gradient")?;
    // `[in, out] += xᵀ dy` or `[out, in] += dyᵀ x`: the left operand read transposed
    // (column stride = its row stride), the right one as rows.
    let (a, b, m, n) = match layout {
        Layout::InOut => ((xs, x), (ds, dy), in_dim, out_dim),
        Layout::OutIn => ((ds, dy), (xs, x), out_dim, in_dim),
    };
    let a = Operand {
        values: a.0,
        off: a.1.col,
        strides: (1, a.1.stride),
    };
    let b = KernelView {
        values: b.0,
        off: b.1.col,
        strides: (b.1.stride, 1),
        f16: false,
    };
    product(
        ex,
        a,
        b,
        (m, rows, n),
        None,
        out,
        Activation::Identity,
        true,
    )
}

/// `dx[rows, in] = dy · wᵀ` (or `+=`) for a plain kernel of `layout`.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense_input_grad(
    ex: &VulkanExec,
    w: &VkBuf,
    layout: Layout,
    (in_dim, out_dim): (usize, usize),
    dy: View<'_, Vulkan>,
    rows: usize,
    dx: &mut VkBuf,
    accumulate: bool,
) -> Result<()> {
    let a = Operand {
        values: ex.input(dy.buf, view_len(&dy, rows, out_dim), "the output gradient")?,
        off: dy.col,
        strides: (dy.stride, 1),
    };
    // The kernel read as `[out, in]`.
    let b = KernelView {
        values: ex.input(w, in_dim * out_dim, "the kernel")?,
        off: 0,
        strides: match layout {
            Layout::InOut => (1, out_dim),
            Layout::OutIn => (in_dim, 1),
        },
        f16: false,
    };
    let out = if accumulate {
        ex.input(dx, rows * in_dim, "the accumulated input gradient")?
    } else {
        ex.grow(dx, rows * in_dim)?
    };
    let dims = (rows, out_dim, in_dim);
    product(ex, a, b, dims, None, out, Activation::Identity, accumulate)
}
