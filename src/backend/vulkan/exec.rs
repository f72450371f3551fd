//! [`VulkanExec`]: a context's queue of recorded commands. Ops record dispatches; nothing
//! runs until a result is read (or a buffer written from the host), when the whole queue is
//! submitted as one command buffer and waited for. vulkano's auto command buffer inserts the
//! barriers between a dispatch that writes a buffer and the next that reads it.

use std::cell::RefCell;
use std::sync::Arc;

use vulkano::buffer::Subbuffer;
use vulkano::command_buffer::{AutoCommandBufferBuilder, CommandBufferUsage, CopyBufferInfo};
use vulkano::descriptor_set::{DescriptorSet, WriteDescriptorSet};
use vulkano::pipeline::{Pipeline, PipelineBindPoint};
use vulkano::sync::{self, GpuFuture};

use super::buffer::VkBuf;
use super::device::{vk_error, Gpu};
use super::kernels::{Kernel, Push, LINEAR_WG, MAX_GROUPS};
use crate::{Error, Result};

/// A recorded command.
enum Cmd {
    Dispatch {
        kernel: Kernel,
        set: Arc<DescriptorSet>,
        push: Push,
        groups: [u32; 3],
    },
    Copy(CopyBufferInfo),
}

/// A context's executor on a Vulkan device: its pending commands and the first error an op
/// met (ops cannot return errors; [`crate::backend::Backend::status`] reports it).
pub struct VulkanExec {
    pub(crate) gpu: Arc<Gpu>,
    pending: RefCell<Vec<Cmd>>,
    error: RefCell<Option<Error>>,
}

impl std::fmt::Debug for VulkanExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VulkanExec({:?}, {} pending)",
            self.gpu,
            self.pending.borrow().len()
        )
    }
}

/// Workgroups of a dispatch of `n` invocations in 256-wide groups, spread over x then y
/// (`linear_index` in common.wgsl).
pub(crate) fn linear_groups(n: usize) -> [u32; 3] {
    let g = n.div_ceil(LINEAR_WG as usize) as u64;
    let x = g.min(u64::from(MAX_GROUPS)) as u32;
    let y = g.div_ceil(u64::from(MAX_GROUPS).max(1)) as u32;
    [x, y, 1]
}

/// One workgroup per row, spread over x then y.
pub(crate) fn row_groups(rows: usize) -> [u32; 3] {
    let rows = rows as u64;
    let x = rows.min(u64::from(MAX_GROUPS)) as u32;
    [x, rows.div_ceil(u64::from(MAX_GROUPS)) as u32, 1]
}

impl VulkanExec {
    pub(crate) fn new(gpu: Arc<Gpu>) -> VulkanExec {
        VulkanExec {
            gpu,
            pending: RefCell::new(Vec::new()),
            error: RefCell::new(None),
        }
    }

    /// Keeps the first error of a sequence of ops (later ones are usually its consequence).
    pub(crate) fn fail(&self, e: Error) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// Runs `f`, keeping its error.
    pub(crate) fn attempt(&self, f: impl FnOnce() -> Result<()>) {
        if let Err(e) = f() {
            self.fail(e);
        }
    }

    /// The first error since the last call, and clears it.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.borrow_mut().take()
    }

    /// Whether an op failed since the last [`VulkanExec::take_error`].
    pub(crate) fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }

    /// Makes `buf` hold at least `n` values (new contents undefined), and returns them.
    pub(crate) fn grow(&self, buf: &mut VkBuf, n: usize) -> Result<Subbuffer<[f32]>> {
        if buf.capacity() < n || buf.sub.is_none() {
            // Commands already recorded keep the old allocation alive until they ran.
            buf.sub = Some(self.gpu.device_buffer(n)?);
        }
        buf.len = buf.len.max(n);
        buf.sub
            .clone()
            .ok_or_else(|| Error::Unsupported("vulkan: a buffer was not allocated".into()))
    }

    /// The allocation of an input buffer, which must hold `n` values.
    pub(crate) fn input(&self, buf: &VkBuf, n: usize, what: &str) -> Result<Subbuffer<[f32]>> {
        match &buf.sub {
            Some(s) if buf.len >= n => Ok(s.clone()),
            _ => Err(Error::InvalidArgument(format!(
                "vulkan: {what} holds {} values, the op reads {n}",
                buf.len
            ))),
        }
    }

    /// Records a dispatch of `kernel` with `bindings` at bindings 0, 1, … (whole buffers).
    pub(crate) fn dispatch(
        &self,
        kernel: &Kernel,
        bindings: &[Subbuffer<[u8]>],
        push: Push,
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let layout = kernel
            .pipeline
            .layout()
            .set_layouts()
            .first()
            .cloned()
            .ok_or_else(|| Error::Unsupported("vulkan: a shader without bindings".into()))?;
        let writes = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| WriteDescriptorSet::buffer(i as u32, b.clone()));
        let set = DescriptorSet::new(self.gpu.descriptors.clone(), layout, writes, [])
            .map_err(|e| vk_error("a descriptor set", e))?;
        self.pending.borrow_mut().push(Cmd::Dispatch {
            kernel: kernel.clone(),
            set,
            push,
            groups,
        });
        Ok(())
    }

    /// Records a copy of `src` into `dst` (equal lengths).
    pub(crate) fn copy(&self, src: Subbuffer<[f32]>, dst: Subbuffer<[f32]>) {
        self.pending
            .borrow_mut()
            .push(Cmd::Copy(CopyBufferInfo::buffers(src, dst)));
    }

    /// Runs every pending command and returns the first `n` values of `src` (a reduction's
    /// partial sums, a loss): one submission and wait.
    pub(crate) fn read_now(&self, src: Subbuffer<[f32]>, n: usize) -> Result<Vec<f32>> {
        let host = self.gpu.readback_buffer(n)?;
        self.copy(src.slice(0..n as u64), host.clone());
        self.flush()?;
        let guard = host.read().map_err(|e| vk_error("reading back", e))?;
        Ok(guard[..n].to_vec())
    }

    /// Drops the pending commands unrun.
    pub(crate) fn discard(&self) {
        self.pending.borrow_mut().clear();
    }

    /// Submits every pending command as one command buffer and waits for it.
    pub(crate) fn flush(&self) -> Result<()> {
        let cmds = std::mem::take(&mut *self.pending.borrow_mut());
        if cmds.is_empty() {
            return Ok(());
        }
        submit(&self.gpu, cmds)
    }
}

fn submit(gpu: &Gpu, cmds: Vec<Cmd>) -> Result<()> {
    // A poisoned lock only means another thread panicked while submitting: the lock itself
    // protects no data.
    let _turn = gpu.submit.lock().unwrap_or_else(|p| p.into_inner());
    let mut b = AutoCommandBufferBuilder::primary(
        gpu.commands.clone(),
        gpu.queue.queue_family_index(),
        CommandBufferUsage::OneTimeSubmit,
    )
    .map_err(|e| vk_error("a command buffer", e))?;
    for cmd in cmds {
        match cmd {
            Cmd::Dispatch {
                kernel,
                set,
                push,
                groups,
            } => {
                b.bind_pipeline_compute(kernel.pipeline.clone())
                    .and_then(|b| {
                        b.bind_descriptor_sets(
                            PipelineBindPoint::Compute,
                            kernel.layout.clone(),
                            0,
                            set,
                        )
                    })
                    .and_then(|b| b.push_constants(kernel.layout.clone(), 0, push))
                    .map_err(|e| vk_error("recording a dispatch", e))?;
                // SAFETY: every shader bounds-checks its indices against the sizes in its push
                // constants, which the ops set within the lengths of the buffers they bind
                // (`VulkanExec::input` checks them).
                unsafe { b.dispatch(groups) }.map_err(|e| vk_error("a dispatch", e))?;
            }
            Cmd::Copy(info) => {
                b.copy_buffer(info).map_err(|e| vk_error("a copy", e))?;
            }
        }
    }
    let cb = b.build().map_err(|e| vk_error("building commands", e))?;
    sync::now(gpu.device.clone())
        .then_execute(gpu.queue.clone(), cb)
        .map_err(|e| vk_error("submitting", e))?
        .then_signal_fence_and_flush()
        .map_err(|e| vk_error("submitting", e))?
        .wait(None)
        .map_err(|e| vk_error("waiting for the device", e))
}

impl Gpu {
    /// Copies `values` into a new device buffer now (weights, at load time).
    pub(crate) fn upload_now(self: &Arc<Self>, values: &[f32]) -> Result<VkBuf> {
        let dst = self.device_buffer(values.len())?;
        let src = self.host_buffer(values, 0.0)?;
        let n = values.len().max(1) as u64;
        let cmd = Cmd::Copy(CopyBufferInfo::buffers(src, dst.clone().slice(0..n)));
        submit(self, vec![cmd])?;
        Ok(VkBuf {
            sub: Some(dst),
            len: values.len(),
        })
    }
}
