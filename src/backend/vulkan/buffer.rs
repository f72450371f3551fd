//! Device buffers ([`VkBuf`]) and the host-visible buffers that carry values to and from
//! them.

use std::sync::Arc;
use vulkano::buffer::{Buffer, BufferContents, BufferCreateInfo, BufferUsage, Subbuffer};

use vulkano::memory::allocator::{AllocationCreateInfo, MemoryTypeFilter, StandardMemoryAllocator};

use super::device::{vk_error, Gpu};
use crate::{Error, Result};

/// f32 values in device memory: the back end's [`crate::backend::Backend::Buf`]. `len`
/// values are in use; the allocation may be larger (buffers only grow, so a context's
/// steady-state calls allocate nothing). Cloning shares the memory.
#[derive(Clone, Default)]
pub struct VkBuf {
    pub(crate) sub: Option<Subbuffer<[f32]>>,
    pub(crate) len: usize,
}

impl std::fmt::Debug for VkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VkBuf[{}]", self.len)
    }
}

impl VkBuf {
    /// Values the allocation can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.sub.as_ref().map_or(0, |s| s.len() as usize)
    }
}

impl Gpu {
    /// Checks that `n` values of 4 bytes fit one shader binding (`maxStorageBufferRange`).
    pub(crate) fn check_binding(&self, n: usize, what: &str) -> Result<()> {
        let bytes = (n as u64).saturating_mul(4);
        if bytes > self.max_binding {
            return Err(Error::Unsupported(format!(
                "vulkan: {what} needs {bytes} bytes in one buffer; {} allows {}",
                self.name, self.max_binding
            )));
        }
        Ok(())
    }

    /// An uninitialised device-local buffer of `n` f32 (at least one: Vulkan has no empty
    /// buffers).
    pub(crate) fn device_buffer(&self, n: usize) -> Result<Subbuffer<[f32]>> {
        self.check_binding(n, "a buffer")?;
        device_buffer(&self.memory, n)
    }

    /// A host-written buffer holding `values` that shaders read directly (index lists) or a
    /// copy reads (staging).
    pub(crate) fn host_buffer<T: BufferContents + Copy>(
        &self,
        values: &[T],
        zero: T,
    ) -> Result<Subbuffer<[T]>> {
        let data: Box<dyn ExactSizeIterator<Item = T>> = if values.is_empty() {
            Box::new(std::iter::once(zero))
        } else {
            Box::new(values.iter().copied())
        };
        Buffer::from_iter(
            self.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::STORAGE_BUFFER | BufferUsage::TRANSFER_SRC,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_DEVICE
                    | MemoryTypeFilter::HOST_SEQUENTIAL_WRITE,
                ..Default::default()
            },
            data,
        )
        .map_err(|e| vk_error(&format!("uploading {} values", values.len()), e))
    }

    /// A host-readable buffer of `n` f32 that a copy fills.
    pub(crate) fn readback_buffer(&self, n: usize) -> Result<Subbuffer<[f32]>> {
        Buffer::new_slice::<f32>(
            self.memory.clone(),
            BufferCreateInfo {
                usage: BufferUsage::TRANSFER_DST,
                ..Default::default()
            },
            AllocationCreateInfo {
                memory_type_filter: MemoryTypeFilter::PREFER_HOST
                    | MemoryTypeFilter::HOST_RANDOM_ACCESS,
                ..Default::default()
            },
            n.max(1) as u64,
        )
        .map_err(|e| vk_error(&format!("allocating {n} values to read back"), e))
    }
}

/// An uninitialised device-local buffer of `n` f32 (at least one).
pub(crate) fn device_buffer(
    memory: &Arc<StandardMemoryAllocator>,
    n: usize,
) -> Result<Subbuffer<[f32]>> {
    Buffer::new_slice::<f32>(
        memory.clone(),
        BufferCreateInfo {
            usage: BufferUsage::STORAGE_BUFFER
                | BufferUsage::TRANSFER_SRC
                | BufferUsage::TRANSFER_DST,
            ..Default::default()
        },
        AllocationCreateInfo {
            memory_type_filter: MemoryTypeFilter::PREFER_DEVICE,
            ..Default::default()
        },
        n.max(1) as u64,
    )
    .map_err(|e| vk_error(&format!("allocating {n} values"), e))
}
