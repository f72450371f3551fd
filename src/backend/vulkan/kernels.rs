//! The compute pipelines, one per shader of `shaders/` (compiled to SPIR-V by build.rs), and
//! the constants the host and the shaders share.

use std::sync::Arc;

use vulkano::device::Device;
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::PipelineDescriptorSetLayoutCreateInfo;
use vulkano::pipeline::{ComputePipeline, PipelineLayout, PipelineShaderStageCreateInfo};
use vulkano::shader::{ShaderModule, ShaderModuleCreateInfo};

use super::device::vk_error;
use crate::backend::Activation;
use crate::{Error, Result};

/// Every shader's push constants: 12 words (48 bytes, within the 128 that Vulkan
/// guarantees), each shader naming the ones it reads and padding the rest, so one host type
/// serves them all.
pub(crate) type Push = [u32; 12];

/// Invocations of the element-wise shaders' workgroups (`linear_index` in common.wgsl).
pub(crate) const LINEAR_WG: u32 = 256;
/// The dense shader's output tile (rows and columns).
pub(crate) const DENSE_TILE: u32 = 64;
/// Flags of the dense shader's `flags` word, above the activation code.
pub(crate) const DENSE_BIAS: u32 = 16;
pub(crate) const DENSE_F16: u32 = 32;
pub(crate) const DENSE_ACCUMULATE: u32 = 64;
/// The attention shader's limits: keys per sequence and head size (its workgroup arrays).
pub(crate) const MAX_KEYS: usize = 512;
pub(crate) const MAX_HEAD_SIZE: usize = 256;
/// Workgroups per dimension of a dispatch (Vulkan guarantees 65535).
pub(crate) const MAX_GROUPS: u32 = 65535;

/// `activate()`'s code of common.wgsl.
pub(crate) fn act_code(act: Activation) -> u32 {
    match act {
        Activation::Identity => 0,
        Activation::GeluTanh => 1,
        Activation::GeluErf => 2,
        Activation::Relu => 3,
        Activation::Tanh => 4,
    }
}

/// A compute pipeline and its layout.
#[derive(Clone)]
pub(crate) struct Kernel {
    pub pipeline: Arc<ComputePipeline>,
    pub layout: Arc<PipelineLayout>,
}

/// The pipelines of every op.
pub(crate) struct Kernels {
    pub fill: Kernel,
    pub activate: Kernel,
    pub embed: Kernel,
    pub dense: Kernel,
    pub attention: Kernel,
    pub layer_norm: Kernel,
    pub gather: Kernel,
    pub transpose: Kernel,
    pub reduce: Kernel,
    pub l2_normalize: Kernel,
    // Training (`train.rs`).
    pub dropout: Kernel,
    pub act_backward: Kernel,
    pub adamw: Kernel,
    pub square_sum: Kernel,
    pub column_sums: Kernel,
    pub scatter: Kernel,
    pub layer_norm_train: Kernel,
    pub layer_norm_backward: Kernel,
    pub attention_train: Kernel,
    pub attention_dq: Kernel,
    pub attention_dkv: Kernel,
    pub softmax_xent: Kernel,
}

macro_rules! spirv {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".spv")),
        )
    };
}

impl Kernels {
    pub fn new(device: &Arc<Device>) -> Result<Kernels> {
        let k = |(name, bytes): (&str, &[u8])| kernel(device, name, bytes);
        Ok(Kernels {
            fill: k(spirv!("fill"))?,
            activate: k(spirv!("activate"))?,
            embed: k(spirv!("embed"))?,
            dense: k(spirv!("dense"))?,
            attention: k(spirv!("attention"))?,
            layer_norm: k(spirv!("layer_norm"))?,
            gather: k(spirv!("gather"))?,
            transpose: k(spirv!("transpose"))?,
            reduce: k(spirv!("reduce"))?,
            l2_normalize: k(spirv!("l2_normalize"))?,
            dropout: k(spirv!("dropout"))?,
            act_backward: k(spirv!("act_backward"))?,
            adamw: k(spirv!("adamw"))?,
            square_sum: k(spirv!("square_sum"))?,
            column_sums: k(spirv!("column_sums"))?,
            scatter: k(spirv!("scatter"))?,
            layer_norm_train: k(spirv!("layer_norm_train"))?,
            layer_norm_backward: k(spirv!("layer_norm_backward"))?,
            attention_train: k(spirv!("attention_train"))?,
            attention_dq: k(spirv!("attention_dq"))?,
            attention_dkv: k(spirv!("attention_dkv"))?,
            softmax_xent: k(spirv!("softmax_xent"))?,
        })
    }
}

/// The pipeline of one shader's `main`, its layout reflected from the SPIR-V.
fn kernel(device: &Arc<Device>, name: &str, bytes: &[u8]) -> Result<Kernel> {
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let what = |step: &str| format!("{step} of shader {name}");
    // SAFETY: the SPIR-V was written by naga from a module its validator accepted
    // (build.rs), which is what `ShaderModule::new` asks of its caller.
    let module = unsafe { ShaderModule::new(device.clone(), ShaderModuleCreateInfo::new(&words)) }
        .map_err(|e| vk_error(&what("the module"), e))?;
    let entry = module
        .entry_point("main")
        .ok_or_else(|| Error::Unsupported(format!("vulkan: shader {name} has no main")))?;
    let stage = PipelineShaderStageCreateInfo::new(entry);
    let layout_info = PipelineDescriptorSetLayoutCreateInfo::from_stages([&stage])
        .into_pipeline_layout_create_info(device.clone())
        .map_err(|e| vk_error(&what("the layout"), e))?;
    let layout = PipelineLayout::new(device.clone(), layout_info)
        .map_err(|e| vk_error(&what("the layout"), e))?;
    let pipeline = ComputePipeline::new(
        device.clone(),
        None,
        ComputePipelineCreateInfo::stage_layout(stage, layout.clone()),
    )
    .map_err(|e| vk_error(&what("the pipeline"), e))?;
    Ok(Kernel { pipeline, layout })
}
