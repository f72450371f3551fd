//! Opening a Vulkan device: the loader (dlopen'ed at run time, so a build with the `vulkan`
//! feature runs on machines without one), a physical device with a compute queue, the
//! allocators, and the compute pipelines of every kernel.

use std::sync::Arc;

use vulkano::buffer::Subbuffer;
use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::device::physical::{PhysicalDevice, PhysicalDeviceType};
use vulkano::device::{Device, DeviceCreateInfo, Queue, QueueCreateInfo, QueueFlags};
use vulkano::instance::{Instance, InstanceCreateInfo};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::VulkanLibrary;

use super::kernels::Kernels;
use crate::{Error, Result};

/// Which physical devices a back end may open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The best device there is: a discrete GPU, else an integrated or virtual one, else a
    /// CPU implementation (Mesa's lavapipe), which is how the tests run without a GPU.
    Any,
    /// A GPU only (discrete, integrated or virtual): what `--backend auto` asks, so that a
    /// machine whose only Vulkan device is a CPU implementation keeps the faster CPU back end.
    Gpu,
}

/// An opened device and everything made once per device.
pub(crate) struct Gpu {
    pub device: Arc<Device>,
    pub queue: Arc<Queue>,
    pub memory: Arc<StandardMemoryAllocator>,
    pub commands: Arc<StandardCommandBufferAllocator>,
    pub descriptors: Arc<StandardDescriptorSetAllocator>,
    pub kernels: Kernels,
    /// The device's name and type, for logs.
    pub name: String,
    /// Whether it is a CPU implementation (lavapipe, SwiftShader).
    pub is_cpu: bool,
    /// `maxStorageBufferRange`: the largest buffer a shader may bind, in bytes.
    pub max_binding: u64,
    /// One value, bound where a shader declares a buffer it will not read (no bias, no
    /// residual): binding the op's output there instead would make one dispatch read and
    /// write the same buffer.
    pub dummy: Subbuffer<[f32]>,
    /// Held from building a command buffer until its fence has signalled. The device has
    /// one queue, so contexts' submissions run one after another anyway; without the lock,
    /// vulkano's resource tracking deadlocked when threads submitted command buffers reading
    /// the same weights at once (its buffer-state locks in `queue_submit`). What it
    /// serialises is the device's execution, which a single queue serialises anyway:
    /// recording (descriptor sets, the ops' host work) happens before it, outside the lock.
    /// Measured on lavapipe (issue 18, session 25, BENCHMARKS.md), building and submitting
    /// took ~0.1 ms of a submission's lock time and the fence wait the rest, so releasing it
    /// before the wait would overlap nothing worth the deadlock risk.
    pub submit: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A Vulkan failure as an error of ours (`what` failed: vulkano's own words, `{:?}`).
pub(crate) fn vk_error(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Unsupported(format!("vulkan: {what}: {e:?}"))
}

/// Preference of a device type, lower first; `None` where `choice` excludes it.
fn rank(t: PhysicalDeviceType, choice: DeviceChoice) -> Option<u8> {
    match t {
        PhysicalDeviceType::DiscreteGpu => Some(0),
        PhysicalDeviceType::IntegratedGpu => Some(1),
        PhysicalDeviceType::VirtualGpu => Some(2),
        _ if choice == DeviceChoice::Gpu => None,
        PhysicalDeviceType::Cpu => Some(3),
        _ => Some(4),
    }
}

impl Gpu {
    /// Opens the preferred device of `choice`. Every failure (no loader, no driver, no
    /// device, no compute queue, a shader the driver rejects) is an `Unsupported` error
    /// that says why.
    pub fn open(choice: DeviceChoice) -> Result<Gpu> {
        let library =
            VulkanLibrary::new().map_err(|e| vk_error("loading the Vulkan library", e))?;
        let instance = Instance::new(library, InstanceCreateInfo::default())
            .map_err(|e| vk_error("creating an instance", e))?;
        let devices = instance
            .enumerate_physical_devices()
            .map_err(|e| vk_error("listing devices", e))?;
        let (physical, family) = devices
            .filter_map(|d| {
                let family = compute_family(&d)?;
                let r = rank(d.properties().device_type, choice)?;
                Some((r, d, family))
            })
            .min_by_key(|(r, ..)| *r)
            .map(|(_, d, f)| (d, f))
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "vulkan: no {}device with a compute queue",
                    if choice == DeviceChoice::Gpu {
                        "GPU "
                    } else {
                        ""
                    }
                ))
            })?;
        let props = physical.properties();
        let name = format!("{} ({:?})", props.device_name, props.device_type);
        let max_binding = u64::from(props.max_storage_buffer_range);
        let is_cpu = props.device_type == PhysicalDeviceType::Cpu;
        let (device, mut queues) = Device::new(
            physical.clone(),
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo {
                    queue_family_index: family,
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .map_err(|e| vk_error("creating the device", e))?;
        let queue = queues
            .next()
            .ok_or_else(|| Error::Unsupported("vulkan: the device gave no queue".into()))?;
        let kernels = Kernels::new(&device)?;
        let memory = Arc::new(StandardMemoryAllocator::new_default(device.clone()));
        Ok(Gpu {
            dummy: super::buffer::device_buffer(&memory, 1)?,
            memory,
            submit: std::sync::Mutex::new(()),
            commands: Arc::new(StandardCommandBufferAllocator::new(
                device.clone(),
                Default::default(),
            )),
            descriptors: Arc::new(StandardDescriptorSetAllocator::new(
                device.clone(),
                Default::default(),
            )),
            device,
            queue,
            kernels,
            name,
            is_cpu,
            max_binding,
        })
    }
}

/// The first queue family of `d` that runs compute shaders.
fn compute_family(d: &Arc<PhysicalDevice>) -> Option<u32> {
    d.queue_family_properties()
        .iter()
        .position(|q| q.queue_flags.intersects(QueueFlags::COMPUTE))
        .map(|i| i as u32)
}
