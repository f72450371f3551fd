//! Multi-head self-attention, fused (`shaders/attention.wgsl`): scores, mask, soft-max and
//! the product with the values in one dispatch, one workgroup per (query row, head).

use super::buffer::VkBuf;
use super::exec::VulkanExec;
use super::grads::view_len;
use super::kernels::{Push, MAX_GROUPS, MAX_HEAD_SIZE, MAX_KEYS};
use super::rows::push;
use super::Vulkan;
use crate::backend::{Heads, Queries, Rows, View};
use crate::{Error, Result};

/// The shaders' limits: head size and keys per sequence (workgroup arrays).
pub(super) fn check_shape(rows: &Rows, heads: Heads) -> Result<()> {
    if heads.size > MAX_HEAD_SIZE {
        return Err(Error::Unsupported(format!(
            "vulkan: attention heads of {} values (at most {MAX_HEAD_SIZE})",
            heads.size
        )));
    }
    if let Some(s) = rows.seqs.iter().find(|s| s.len > MAX_KEYS) {
        return Err(Error::Unsupported(format!(
            "vulkan: attention over {} tokens (at most {MAX_KEYS})",
            s.len
        )));
    }
    Ok(())
}

/// Workgroups over (head, row) for `rows` rows (`y + 65535 z` in the shaders).
pub(super) fn groups(heads: usize, rows: usize) -> [u32; 3] {
    let g = MAX_GROUPS as usize;
    [heads as u32, rows.min(g) as u32, rows.div_ceil(g) as u32]
}

/// The push constants of the forward shaders (`attention.wgsl`, `attention_train.wgsl`):
/// query rows, head size, scale, then each view's column and stride, then the width.
pub(super) fn forward_push(
    nq: usize,
    heads: Heads,
    (q, k, v): (&View<'_, Vulkan>, &View<'_, Vulkan>, &View<'_, Vulkan>),
) -> Push {
    let scale = 1.0 / (heads.size as f32).sqrt();
    push(&[
        nq as u32,
        heads.size as u32,
        scale.to_bits(),
        q.col as u32,
        q.stride as u32,
        k.col as u32,
        k.stride as u32,
        v.col as u32,
        v.stride as u32,
        (heads.n * heads.size) as u32,
    ])
}

/// `out[queries, heads · size]` (see [`crate::backend::Backend::attention`]).
pub(super) fn attention(
    ex: &VulkanExec,
    (q, k, v): (View<'_, Vulkan>, View<'_, Vulkan>, View<'_, Vulkan>),
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    out: &mut VkBuf,
) -> Result<()> {
    let h = heads.n * heads.size;
    check_shape(rows, heads)?;
    // Per query row: its sequence's first key row and number of keys.
    let mut spans = Vec::new();
    match queries {
        None => {
            for s in &rows.seqs {
                for _ in 0..s.len {
                    spans.extend([s.start as u32, s.len as u32]);
                }
            }
        }
        Some(qs) => {
            spans.resize(2 * qs.len(), 0);
            for (s, qspan) in rows.seqs.iter().zip(&qs.seqs) {
                for i in qspan.start..qspan.start + qspan.len {
                    let slot = spans.get_mut(2 * i..2 * i + 2).ok_or_else(|| {
                        Error::InvalidArgument(format!("vulkan: query row {i} out of range"))
                    })?;
                    slot.copy_from_slice(&[s.start as u32, s.len as u32]);
                }
            }
        }
    }
    let nq = spans.len() / 2;
    let r = rows.len();
    let bindings = [
        ex.input(q.buf, view_len(&q, nq, h), "the queries")?
            .into_bytes(),
        ex.input(k.buf, view_len(&k, r, h), "the keys")?
            .into_bytes(),
        ex.input(v.buf, view_len(&v, r, h), "the values")?
            .into_bytes(),
        ex.gpu.host_buffer(&spans, 0)?.into_bytes(),
        ex.gpu.host_buffer(&rows.mask_bias, 0.0)?.into_bytes(),
        ex.grow(out, nq * h)?.into_bytes(),
    ];
    let p = forward_push(nq, heads, (&q, &k, &v));
    ex.dispatch(&ex.gpu.kernels.attention, &bindings, p, groups(heads.n, nq))
}
