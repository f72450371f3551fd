//! The Vulkan compute back end (feature `vulkan`): the encoder's forward ops as compute
//! shaders, on any Vulkan 1.0 device with a compute queue, Mesa's lavapipe (a CPU
//! implementation) included, which is how CI tests it.
//!
//! - Weights are uploaded once per model: f32, or f16 dense kernels and word tables as
//!   halves (two per 32-bit word, widened by the dense and lookup shaders as they read
//!   them: half the memory; `unpack2x16float` is core SPIR-V, so no 16-bit storage feature
//!   is needed); int8 kernels and int8 word tables are widened to f32 while uploading. The
//!   arithmetic is f32 throughout.
//! - Activations stay on the device from the embedding lookup to the pooling; only what the
//!   caller reads ([`Backend::read`](crate::backend::Backend::read)) comes back.
//! - Each op records a dispatch into its context's [`VulkanExec`]; a read submits them all
//!   as one command buffer (`exec.rs`).
//! - Shaders are WGSL in `shaders/` (one per op), compiled to SPIR-V at build time by naga
//!   (`build.rs`). The Vulkan loader is opened at run time: a build with this feature runs
//!   (on the CPU back end) where there is none, and [`Vulkan::open`] says why it cannot.
//! - Training runs on the device too: dropout (the CPU's mask hash, so both back ends drop
//!   the same units), LayerNorm and attention with their training records, every backward
//!   op and AdamW are shaders; parameters, gradients and optimizer slots stay resident. What
//!   comes back per step: the losses, the outputs the heads return (logits), and each
//!   gradient's per-chunk sums of squares for the global norm.
//!   Gradients are summed without atomics (one invocation owns each output value), so
//!   they are deterministic.
//!
//! Limits, checked with an error rather than a wrong answer: a sequence of at most 512
//! tokens and heads of at most 256 values (the attention keeps a query's scores in
//! workgroup memory), and every activation buffer within the device's
//! `maxStorageBufferRange` (128 MiB on some devices). The word table is split into chunks of
//! rows within that limit, one embedding dispatch per chunk.

mod attention;
mod attention_train;
mod backend;
mod buffer;
mod dense;
mod device;
mod exec;
mod grads;
mod kernels;
mod loss;
mod norm;
mod optim;
mod rows;

use std::sync::Arc;

pub use backend::VkTable;
pub use buffer::VkBuf;
pub use dense::VkMatrix;
pub use device::DeviceChoice;
pub use exec::VulkanExec;

use crate::Result;
use device::Gpu;

/// The Vulkan back end: one opened device, shared by the models built on it and their
/// contexts (each context records and submits its own commands).
#[derive(Clone)]
pub struct Vulkan {
    gpu: Arc<Gpu>,
    /// The largest buffer a table chunk may be, in bytes (the device's
    /// `maxStorageBufferRange`, or less: [`Vulkan::with_binding_limit`]).
    binding_limit: u64,
}

impl std::fmt::Debug for Vulkan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vulkan({:?})", self.gpu)
    }
}

impl Vulkan {
    /// Opens the preferred device of `choice`; an [`Error::Unsupported`](crate::Error::Unsupported) says why none
    /// could be (no loader, no driver, no device).
    pub fn open(choice: DeviceChoice) -> Result<Vulkan> {
        let gpu = Gpu::open(choice)?;
        Ok(Vulkan {
            binding_limit: gpu.max_binding,
            gpu: Arc::new(gpu),
        })
    }

    /// The same device, splitting word tables as a device whose `maxStorageBufferRange` is
    /// `bytes` would (if that is below this device's): how the tests exercise the split that
    /// large vocabularies need on devices with a 128 MiB limit.
    pub fn with_binding_limit(mut self, bytes: u64) -> Vulkan {
        self.binding_limit = bytes.min(self.gpu.max_binding);
        self
    }

    fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// The device's name and type, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits) (Cpu)"`.
    pub fn device_name(&self) -> &str {
        &self.gpu.name
    }

    /// Whether the device is a CPU implementation (lavapipe, SwiftShader).
    pub fn is_cpu(&self) -> bool {
        self.gpu.is_cpu
    }
}

/// Why a context's last ops failed, if they did (see
/// [`Backend::status`](crate::backend::Backend::status)).
pub(crate) fn status(ex: &VulkanExec) -> Result<()> {
    // Commands recorded but not run yet may still fail: run them. After a failure, those
    // recorded since would compute from a missing result: drop them.
    if ex.failed() {
        ex.discard();
    } else if let Err(e) = ex.flush() {
        ex.fail(e);
    }
    match ex.take_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
