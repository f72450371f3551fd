//! The heads' loss on the device (`shaders/softmax_xent.wgsl`): logits, log-probabilities
//! and their gradient stay there; only the per-row losses come back.

use super::buffer::VkBuf;
use super::exec::{row_groups, VulkanExec};
use super::rows::push;
use crate::{Error, Result};

/// `−log_softmax(row)[label]` per row of `logits: [labels.len(), width]`; the
/// log-probabilities and `dlogits = (softmax − onehot) · scales[row]` when asked.
pub(super) fn softmax_cross_entropy(
    ex: &VulkanExec,
    logits: &VkBuf,
    width: usize,
    labels: &[u32],
    log_probs: Option<&mut VkBuf>,
    dlogits: Option<(&mut VkBuf, &[f32])>,
) -> Result<Vec<f64>> {
    let (rows, n) = (labels.len(), labels.len() * width);
    if rows == 0 {
        return Ok(Vec::new());
    }
    if let Some(l) = labels.iter().find(|&&l| l as usize >= width) {
        return Err(Error::InvalidArgument(format!(
            "vulkan: label {l} of logits {width} wide"
        )));
    }
    let scales = match &dlogits {
        Some((_, s)) if s.len() >= rows => s[..rows].to_vec(),
        Some((_, s)) => {
            return Err(Error::InvalidArgument(format!(
                "vulkan: {} gradient scales for {rows} rows",
                s.len()
            )))
        }
        None => vec![0.0; rows],
    };
    let losses = ex.gpu.device_buffer(rows)?;
    // An output not asked for gets a buffer of its own (two writable bindings of one
    // placeholder buffer would alias).
    let out = |b: Option<&mut VkBuf>| match b {
        Some(b) => ex.grow(b, n),
        None => ex.gpu.device_buffer(1),
    };
    let (want_lp, want_dl) = (log_probs.is_some(), dlogits.is_some());
    let bindings = [
        ex.input(logits, n, "the logits")?.into_bytes(),
        ex.gpu.host_buffer(labels, 0)?.into_bytes(),
        ex.gpu.host_buffer(&scales, 0.0)?.into_bytes(),
        losses.clone().into_bytes(),
        out(log_probs)?.into_bytes(),
        out(dlogits.map(|(d, _)| d))?.into_bytes(),
    ];
    let p = push(&[
        rows as u32,
        width as u32,
        u32::from(want_lp),
        u32::from(want_dl),
    ]);
    ex.dispatch(&ex.gpu.kernels.softmax_xent, &bindings, p, row_groups(rows))?;
    let losses = ex.read_now(losses, rows)?;
    Ok(losses.into_iter().map(f64::from).collect())
}
