//! `act(x · W + bias)` (`shaders/dense.wgsl`): the prepared kernel type and the op.

use vulkano::buffer::Subbuffer;

use super::buffer::VkBuf;
use super::exec::VulkanExec;
use super::kernels::{act_code, DENSE_ACCUMULATE, DENSE_BIAS, DENSE_F16, DENSE_TILE, MAX_GROUPS};
use super::rows::push;
use crate::backend::{Activation, Layout, View};
use crate::{Error, Result};

/// A dense kernel on the device, `[in, out]` row-major (Google's layout; an `[out, in]`
/// source is transposed once while uploading): f32 values, or for an f16 source its halves
/// two per 32-bit word (the shader widens them).
#[derive(Clone, Debug)]
pub struct VkMatrix {
    pub(crate) values: VkBuf,
    pub(crate) f16: bool,
    /// The storage the kernel was loaded from (int8 is held as f32 on the device).
    pub(crate) source: crate::weights::DType,
}

/// A kernel as the op reads it: values, and the offset and (row, column) strides of its
/// `[in, out]` view.
pub(super) struct KernelView {
    pub values: Subbuffer<[f32]>,
    pub off: usize,
    pub strides: (usize, usize),
    pub f16: bool,
}

/// The left operand `[rows, k]` of a product: a buffer, an offset and (row, column) strides.
pub(super) struct Operand {
    pub values: Subbuffer<[f32]>,
    pub off: usize,
    pub strides: (usize, usize),
}

impl KernelView {
    /// A plain f32 kernel of `layout`.
    pub fn new(
        ex: &VulkanExec,
        values: &VkBuf,
        layout: Layout,
        dims: (usize, usize),
    ) -> Result<Self> {
        let (i, o) = dims;
        Ok(KernelView {
            values: ex.input(values, i * o, "the kernel")?,
            off: 0,
            strides: match layout {
                Layout::InOut => (o, 1),
                Layout::OutIn => (1, i),
            },
            f16: false,
        })
    }

    /// A prepared kernel (`[in, out]`, f32 or f16).
    pub fn prepared(ex: &VulkanExec, m: &VkMatrix, (i, o): (usize, usize)) -> Result<Self> {
        let words = if m.f16 { (i * o).div_ceil(2) } else { i * o };
        Ok(KernelView {
            values: ex.input(&m.values, words, "the kernel")?,
            off: 0,
            strides: (o, 1),
            f16: m.f16,
        })
    }
}

/// `out[rows, out] = act(x[rows, in] · w + bias)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense(
    ex: &VulkanExec,
    w: KernelView,
    (in_dim, out_dim): (usize, usize),
    bias: Option<&VkBuf>,
    x: View<'_, super::Vulkan>,
    rows: usize,
    out: &mut VkBuf,
    act: Activation,
) -> Result<()> {
    let x_len = if rows == 0 {
        0
    } else {
        x.col + (rows - 1) * x.stride + in_dim
    };
    let x = Operand {
        values: ex.input(x.buf, x_len, "the dense layer's input")?,
        off: x.col,
        strides: (x.stride, 1),
    };
    let out = ex.grow(out, rows * out_dim)?;
    product(ex, x, w, (rows, in_dim, out_dim), bias, out, act, false)
}

/// `out[m, n] = act(a[m, k] · w[k, n] + bias)`, or `out += a · w` with `accumulate` (no
/// bias or activation then), `out` row-major with `n` columns.
#[allow(clippy::too_many_arguments)]
pub(super) fn product(
    ex: &VulkanExec,
    a: Operand,
    w: KernelView,
    (m, k, n): (usize, usize, usize),
    bias: Option<&VkBuf>,
    out: Subbuffer<[f32]>,
    act: Activation,
    accumulate: bool,
) -> Result<()> {
    let tile = DENSE_TILE as usize;
    let row_tiles = m.div_ceil(tile);
    if row_tiles > MAX_GROUPS as usize {
        return Err(Error::InvalidArgument(format!(
            "vulkan: a product of {m} rows (at most {})",
            MAX_GROUPS as usize * tile
        )));
    }
    let bias_buf = match bias {
        Some(b) => ex.input(b, n, "the bias")?,
        None => ex.gpu.dummy.clone(),
    };
    let bindings = [
        a.values.into_bytes(),
        w.values.into_bytes(),
        bias_buf.into_bytes(),
        out.into_bytes(),
    ];
    let flags = act_code(act)
        | if bias.is_some() { DENSE_BIAS } else { 0 }
        | if w.f16 { DENSE_F16 } else { 0 }
        | if accumulate { DENSE_ACCUMULATE } else { 0 };
    let p = push(&[
        m as u32,
        k as u32,
        n as u32,
        a.off as u32,
        a.strides.0 as u32,
        a.strides.1 as u32,
        w.off as u32,
        w.strides.0 as u32,
        w.strides.1 as u32,
        flags,
    ]);
    let groups = [n.div_ceil(tile) as u32, row_tiles as u32, 1];
    ex.dispatch(&ex.gpu.kernels.dense, &bindings, p, groups)
}
