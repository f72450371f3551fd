//! The row and element-wise ops: embedding lookup, gathers, poolings, L2 normalisation,
//! activations, transposes, fills (`shaders/{embed,gather,reduce,l2_normalize,activate,
//! transpose,fill}.wgsl`).

use super::buffer::VkBuf;
use super::exec::{linear_groups, row_groups, VulkanExec};
use super::kernels::{act_code, Push};
use crate::backend::{Activation, Reduce, Rows};
use crate::{Error, Result};

/// Push constants from their first words.
pub(super) fn push(words: &[u32]) -> Push {
    let mut p = [0; 12];
    p[..words.len()].copy_from_slice(words);
    p
}

/// Checks that a table of `rows` rows can be indexed by every value of `ids`.
fn check_ids(ids: &[u32], rows: usize, what: &str) -> Result<()> {
    match ids.iter().find(|&&i| i as usize >= rows) {
        Some(i) => Err(Error::InvalidArgument(format!(
            "vulkan: {what} {i} is outside 0..{rows}"
        ))),
        None => Ok(()),
    }
}

/// A word table as the lookup reads it: chunks of consecutive rows `(first row, rows,
/// values)`, f32 values or (`f16`) IEEE halves two per word.
pub(super) struct Words<'a> {
    pub chunks: &'a [(usize, usize, &'a VkBuf)],
    pub f16: bool,
}

/// `out = word[ids] + token_type[segments] + position[positions]`, `[rows, width]`: one
/// dispatch per chunk of the word table writes the rows whose id it holds.
pub(super) fn embed(
    ex: &VulkanExec,
    (word, token_type, position): (Words<'_>, &VkBuf, &VkBuf),
    rows: &Rows,
    width: usize,
    out: &mut VkBuf,
) -> Result<()> {
    let n = rows.len();
    let w = width.max(1);
    let vocab = word.chunks.last().map_or(0, |(s, r, _)| s + r);
    check_ids(&rows.ids, vocab, "word id")?;
    check_ids(&rows.segments, token_type.len / w, "segment id")?;
    check_ids(&rows.positions, position.len / w, "position")?;
    let index: Vec<u32> = [&rows.ids, &rows.segments, &rows.positions]
        .into_iter()
        .flat_map(|v| v.iter().copied())
        .collect();
    let index = ex.gpu.host_buffer(&index, 0)?;
    let dst = ex.grow(out, n * width)?;
    for &(first, chunk_rows, chunk) in word.chunks {
        let bindings = [
            ex.input(chunk, 0, "the word table")?.into_bytes(),
            ex.input(token_type, 0, "the token type table")?
                .into_bytes(),
            ex.input(position, 0, "the position table")?.into_bytes(),
            index.clone().into_bytes(),
            dst.clone().into_bytes(),
        ];
        let p = push(&[
            n as u32,
            width as u32,
            first as u32,
            chunk_rows as u32,
            u32::from(word.f16),
        ]);
        ex.dispatch(
            &ex.gpu.kernels.embed,
            &bindings,
            p,
            linear_groups(n * width),
        )?;
    }
    Ok(())
}

/// `out[i] = x[rows[i]]`, rows of `width`.
pub(super) fn gather(
    ex: &VulkanExec,
    x: &VkBuf,
    width: usize,
    rows: &[u32],
    out: &mut VkBuf,
) -> Result<()> {
    check_ids(rows, x.len / width.max(1), "row")?;
    let index = ex.gpu.host_buffer(rows, 0)?;
    let bindings = [
        ex.input(x, 0, "the gathered buffer")?.into_bytes(),
        index.into_bytes(),
        ex.grow(out, rows.len() * width)?.into_bytes(),
    ];
    let p = push(&[rows.len() as u32, width as u32]);
    let groups = linear_groups(rows.len() * width);
    ex.dispatch(&ex.gpu.kernels.gather, &bindings, p, groups)
}

/// One vector per sequence: `out: [sequences, width]`.
pub(super) fn reduce(
    ex: &VulkanExec,
    x: &VkBuf,
    rows: &Rows,
    width: usize,
    how: Reduce,
    out: &mut VkBuf,
) -> Result<()> {
    let spans: Vec<u32> = rows
        .seqs
        .iter()
        .flat_map(|s| [s.start as u32, s.len as u32])
        .collect();
    let seqs = rows.seqs.len();
    let bindings = [
        ex.input(x, rows.len() * width, "the reduced buffer")?
            .into_bytes(),
        ex.gpu.host_buffer(&spans, 0)?.into_bytes(),
        ex.gpu.host_buffer(&rows.mask_bias, 0.0)?.into_bytes(),
        ex.grow(out, seqs * width)?.into_bytes(),
    ];
    let how = match how {
        Reduce::First => 0,
        Reduce::Mean => 1,
        Reduce::Max => 2,
    };
    let p = push(&[seqs as u32, width as u32, how]);
    ex.dispatch(
        &ex.gpu.kernels.reduce,
        &bindings,
        p,
        linear_groups(seqs * width),
    )
}

/// Each row of `x[..rows * width]` to unit L2 norm.
pub(super) fn l2_normalize(
    ex: &VulkanExec,
    x: &mut VkBuf,
    rows: usize,
    width: usize,
) -> Result<()> {
    let bindings = [ex
        .input(x, rows * width, "the normalised buffer")?
        .into_bytes()];
    let p = push(&[rows as u32, width as u32]);
    ex.dispatch(&ex.gpu.kernels.l2_normalize, &bindings, p, row_groups(rows))
}

/// `out = act(x)` over `n` values.
pub(super) fn activate(
    ex: &VulkanExec,
    x: &VkBuf,
    n: usize,
    act: Activation,
    out: &mut VkBuf,
) -> Result<()> {
    let bindings = [
        ex.input(x, n, "the activation's input")?.into_bytes(),
        ex.grow(out, n)?.into_bytes(),
    ];
    let p = push(&[n as u32, act_code(act)]);
    ex.dispatch(&ex.gpu.kernels.activate, &bindings, p, linear_groups(n))
}

/// `out[cols, rows] = x[rows, cols]ᵀ`.
pub(super) fn transpose(
    ex: &VulkanExec,
    x: &VkBuf,
    rows: usize,
    cols: usize,
    out: &mut VkBuf,
) -> Result<()> {
    let bindings = [
        ex.input(x, rows * cols, "the transposed buffer")?
            .into_bytes(),
        ex.grow(out, rows * cols)?.into_bytes(),
    ];
    let p = push(&[rows as u32, cols as u32]);
    ex.dispatch(
        &ex.gpu.kernels.transpose,
        &bindings,
        p,
        linear_groups(rows * cols),
    )
}

/// `buf[..n] = value`.
pub(super) fn fill(ex: &VulkanExec, buf: &mut VkBuf, n: usize, value: f32) -> Result<()> {
    let bindings = [ex.grow(buf, n)?.into_bytes()];
    let p = push(&[n as u32, value.to_bits()]);
    ex.dispatch(&ex.gpu.kernels.fill, &bindings, p, linear_groups(n))
}
