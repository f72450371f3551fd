//! Self-attention as training runs it: the forward pass recording the soft-max outputs,
//! with dropout on them (`shaders/attention_train.wgsl`), and its backward pass in two
//! dispatches (`shaders/attention_{dq,dkv}.wgsl`: per query row then per key row, so each
//! invocation owns what it writes).
//!
//! The record has the CPU's layout (`src/backend/cpu/attention.rs`): per sequence,
//! `[heads, queries, keys attended]`, sequences in order, where a sequence attends to its
//! keys up to its last real one. Dropout's mask index of a probability is its index in the
//! record, as on the CPU, so both back ends drop the same units.

use super::attention::{check_shape, forward_push, groups};
use super::buffer::VkBuf;
use super::exec::VulkanExec;
use super::grads::{mask_words, view_len};
use super::rows::push;
use super::Vulkan;
use crate::backend::View;
use crate::backend::{Dropout, Heads, Queries, Rows, Span};
use crate::{Error, Result};

/// The batch's geometry as the shaders read it.
struct Plan {
    /// The mask header (8 words) then per query row: first key row, keys attended, record
    /// row of head 0, record stride between heads.
    per_query: Vec<u32>,
    /// The header then per key row: first query row, query rows, index in the sequence,
    /// keys attended, the sequence's record offset.
    per_key: Vec<u32>,
    queries: usize,
    /// Values of the record.
    total: usize,
}

/// Keys a sequence attends to: up to its last real one (all if none is real).
fn attended(bias: &[f32]) -> usize {
    bias.iter()
        .rposition(|&x| x == 0.0)
        .map_or(bias.len(), |i| i + 1)
}

fn plan(
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    drop: Option<Dropout>,
) -> Result<Plan> {
    check_shape(rows, heads)?;
    let [lo, hi, t, s] = mask_words(drop);
    let header = [lo, hi, t, s, u32::from(drop.is_some()), 0, 0, 0];
    let nq = queries.map_or(rows.len(), Queries::len);
    let mut per_query = header.to_vec();
    per_query.resize(8 + 4 * nq, 0);
    let mut per_key = header.to_vec();
    per_key.resize(8 + 5 * rows.len(), 0);
    let mut total = 0usize;
    for (e, ks) in rows.seqs.iter().enumerate() {
        let qs: Span = match queries {
            Some(q) => *q.seqs.get(e).ok_or_else(|| {
                Error::InvalidArgument(format!("vulkan: no query rows for sequence {e}"))
            })?,
            None => *ks,
        };
        let bias = rows
            .mask_bias
            .get(ks.start..ks.start + ks.len)
            .ok_or_else(|| Error::InvalidArgument("vulkan: mask bias too short".into()))?;
        let kl = attended(bias);
        for i in 0..qs.len {
            let slot = per_query
                .get_mut(8 + 4 * (qs.start + i)..8 + 4 * (qs.start + i + 1))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("vulkan: query row {i} out of range"))
                })?;
            let row = total + i * kl;
            slot.copy_from_slice(&[ks.start as u32, kl as u32, row as u32, (qs.len * kl) as u32]);
        }
        for j in 0..ks.len {
            let slot = per_key
                .get_mut(8 + 5 * (ks.start + j)..8 + 5 * (ks.start + j + 1))
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("vulkan: key row {j} out of range"))
                })?;
            let f = [qs.start, qs.len, j, kl, total];
            for (d, s) in slot.iter_mut().zip(f) {
                *d = s as u32;
            }
        }
        total += heads.n * qs.len * kl;
    }
    Ok(Plan {
        per_query,
        per_key,
        queries: nq,
        total,
    })
}

/// The forward pass (see `Backend::attention`), recording into `record`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    ex: &VulkanExec,
    (q, k, v): (View<'_, Vulkan>, View<'_, Vulkan>, View<'_, Vulkan>),
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    out: &mut VkBuf,
    record: &mut VkBuf,
    drop: Option<Dropout>,
) -> Result<()> {
    let h = heads.n * heads.size;
    let pl = plan(rows, queries, heads, drop)?;
    let (nq, r) = (pl.queries, rows.len());
    let bindings = [
        ex.input(q.buf, view_len(&q, nq, h), "the queries")?
            .into_bytes(),
        ex.input(k.buf, view_len(&k, r, h), "the keys")?
            .into_bytes(),
        ex.input(v.buf, view_len(&v, r, h), "the values")?
            .into_bytes(),
        ex.gpu.host_buffer(&pl.per_query, 0)?.into_bytes(),
        ex.gpu.host_buffer(&rows.mask_bias, 0.0)?.into_bytes(),
        ex.grow(out, nq * h)?.into_bytes(),
        ex.grow(record, pl.total)?.into_bytes(),
    ];
    let p = forward_push(nq, heads, (&q, &k, &v));
    ex.dispatch(
        &ex.gpu.kernels.attention_train,
        &bindings,
        p,
        groups(heads.n, nq),
    )
}

/// The backward pass (see `Backend::attention_backward`): `dq: [queries, h]`, `dk`, `dv`:
/// `[rows, h]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    ex: &VulkanExec,
    (q, k, v): (View<'_, Vulkan>, View<'_, Vulkan>, View<'_, Vulkan>),
    rows: &Rows,
    queries: Option<&Queries>,
    heads: Heads,
    record: &VkBuf,
    drop: Option<Dropout>,
    dout: &VkBuf,
    (dq, dk, dv): (&mut VkBuf, &mut VkBuf, &mut VkBuf),
) -> Result<()> {
    let h = heads.n * heads.size;
    let pl = plan(rows, queries, heads, drop)?;
    let (nq, r) = (pl.queries, rows.len());
    let scale = (1.0 / (heads.size as f32).sqrt()).to_bits();
    let record = ex.input(record, pl.total, "the attention record")?;
    let dout = ex.input(dout, nq * h, "the context's gradient")?;
    // dS, in the record's layout: written per query row, read per key row.
    let ds = ex.gpu.device_buffer(pl.total)?;
    let bindings = [
        ex.input(k.buf, view_len(&k, r, h), "the keys")?
            .into_bytes(),
        ex.input(v.buf, view_len(&v, r, h), "the values")?
            .into_bytes(),
        ex.gpu.host_buffer(&pl.per_query, 0)?.into_bytes(),
        record.clone().into_bytes(),
        dout.clone().into_bytes(),
        ds.clone().into_bytes(),
        ex.grow(dq, nq * h)?.into_bytes(),
    ];
    let p = push(&[
        nq as u32,
        heads.size as u32,
        scale,
        k.col as u32,
        k.stride as u32,
        v.col as u32,
        v.stride as u32,
        h as u32,
    ]);
    ex.dispatch(
        &ex.gpu.kernels.attention_dq,
        &bindings,
        p,
        groups(heads.n, nq),
    )?;
    let bindings = [
        ex.input(q.buf, view_len(&q, nq, h), "the queries")?
            .into_bytes(),
        dout.into_bytes(),
        ex.gpu.host_buffer(&pl.per_key, 0)?.into_bytes(),
        record.into_bytes(),
        ds.into_bytes(),
        ex.grow(dk, r * h)?.into_bytes(),
        ex.grow(dv, r * h)?.into_bytes(),
    ];
    let p = push(&[
        r as u32,
        heads.size as u32,
        scale,
        q.col as u32,
        q.stride as u32,
        h as u32,
    ]);
    ex.dispatch(
        &ex.gpu.kernels.attention_dkv,
        &bindings,
        p,
        groups(heads.n, r),
    )
}
