//! Dense layers: `x @ kernel + bias` on f32 (packed), f16 or int8 kernel storage.

use super::gemm::{self, BSrc, CMut};
use super::isa::Isa;
use super::pack::{MatRef, PackedB};
use super::Activation;
use crate::backend::int8::{Int8Path, Int8Weights, QuantizedKernel};
use crate::backend::{Layout, MatrixSource, Pool, WeightBytes};
use crate::weights::{DType, QuantizedTensor};
use crate::{Error, Result};

/// A dense layer `y = x @ kernel + bias` with `kernel: [in, out]` (Google's layout).
///
/// The kernel is stored as f32 (packed once for the f32 micro-kernel), f16 (converted while
/// each GEMM packs its blocks) or int8 (packed once in the layout of [`crate::backend::int8`]); the
/// model code calls [`Dense::forward_act`] whatever the storage.
#[derive(Debug, Clone)]
pub struct Dense {
    in_dim: usize,
    out_dim: usize,
    kernel: Kernel,
    /// `[out]`
    bias: Vec<f32>,
}

#[derive(Debug, Clone)]
enum Kernel {
    /// `[in, out]`, packed by [`PackedB`].
    F32(PackedB),
    /// `[in, out]` f16 little-endian bytes; the f32 micro-kernel `isa` runs the GEMM.
    F16 {
        bytes: WeightBytes,
        isa: Isa,
    },
    Int8(Int8Weights),
}

impl Dense {
    /// Builds a dense layer from a `[in, out]` kernel and an `[out]` bias, packed for the best
    /// micro-kernel this CPU runs.
    ///
    /// Panics only on programmer error (lengths inconsistent with `in_dim`/`out_dim`); loaders
    /// check shapes before calling.
    pub fn new(in_dim: usize, out_dim: usize, kernel: Vec<f32>, bias: Vec<f32>) -> Self {
        Self::with_isa(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    /// As [`Dense::new`] with an explicit micro-kernel (tests and benchmarks); panics if the
    /// CPU lacks it ([`Isa::available`]).
    pub fn with_isa(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        Self::packed_from(isa, in_dim, out_dim, &kernel, bias)
    }

    /// As [`Dense::new`] from a borrowed kernel (the loaders' tensors): packing copies it
    /// anyway, so a `Vec` of it would be one more pass over every weight.
    pub fn from_slice(in_dim: usize, out_dim: usize, kernel: &[f32], bias: Vec<f32>) -> Self {
        Self::packed_from(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    fn packed_from(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: &[f32],
        bias: Vec<f32>,
    ) -> Self {
        assert_eq!(kernel.len(), in_dim * out_dim, "Dense kernel length");
        assert_eq!(bias.len(), out_dim, "Dense bias length");
        let view = MatRef {
            data: kernel,
            rs: out_dim,
            cs: 1,
        };
        Dense {
            in_dim,
            out_dim,
            kernel: Kernel::F32(PackedB::new(isa, in_dim, out_dim, view)),
            bias,
        }
    }

    /// A dense layer whose `[in, out]` kernel is IEEE half precision (little-endian bytes,
    /// possibly borrowed from a memory map). Each forward call converts the blocks it packs,
    /// so the f32 kernel never exists in memory as a whole.
    pub fn new_f16(
        in_dim: usize,
        out_dim: usize,
        kernel: WeightBytes,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        Self::new_f16_with_isa(Isa::detect(), in_dim, out_dim, kernel, bias)
    }

    /// As [`Dense::new_f16`] with an explicit f32 micro-kernel (tests and benchmarks); an
    /// error if the CPU lacks it.
    pub fn new_f16_with_isa(
        isa: Isa,
        in_dim: usize,
        out_dim: usize,
        kernel: WeightBytes,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        if !isa.available() {
            return Err(Error::Unsupported(format!(
                "{isa:?} kernels: this CPU lacks them"
            )));
        }
        let want = in_dim
            .checked_mul(out_dim)
            .and_then(|x| x.checked_mul(2))
            .ok_or_else(|| Error::Shape(format!("f16 kernel [{in_dim}, {out_dim}] too large")))?;
        if kernel.len() != want {
            return Err(Error::Shape(format!(
                "f16 kernel [{in_dim}, {out_dim}]: {} bytes, expected {want}",
                kernel.len()
            )));
        }
        check_bias(out_dim, &bias)?;
        Ok(Dense {
            in_dim,
            out_dim,
            kernel: Kernel::F16 { bytes: kernel, isa },
            bias,
        })
    }

    /// An int8 dense layer from a quantized kernel, packed once for every int8 code path
    /// (the best one this CPU has runs it; see [`crate::backend::int8`] for the numerics).
    ///
    /// Panics only on programmer error (lengths inconsistent with the kernel's dimensions).
    pub fn new_int8(q: &QuantizedKernel, bias: Vec<f32>) -> Dense {
        assert_eq!(bias.len(), q.out_dim, "Dense bias length");
        Dense {
            in_dim: q.in_dim,
            out_dim: q.out_dim,
            kernel: Kernel::Int8(Int8Weights::new(q, Int8Path::detect())),
            bias,
        }
    }

    /// As [`Dense::new_int8`] on a forced code path (tests and benchmarks); an error if the
    /// CPU or build lacks it.
    pub fn new_int8_with_path(
        q: &QuantizedKernel,
        bias: Vec<f32>,
        path: Int8Path,
    ) -> Result<Dense> {
        check_path(path)?;
        check_bias(q.out_dim, &bias)?;
        if q.values.len() != q.in_dim * q.out_dim || q.scales.len() != q.out_dim {
            return Err(Error::Shape(format!(
                "int8 kernel [{}, {}]: {} values, {} scales",
                q.in_dim,
                q.out_dim,
                q.values.len(),
                q.scales.len()
            )));
        }
        Ok(Dense {
            in_dim: q.in_dim,
            out_dim: q.out_dim,
            kernel: Kernel::Int8(Int8Weights::new(q, path)),
            bias,
        })
    }

    /// An int8 dense layer from weights already in the packed layout
    /// ([`crate::backend::int8::INT8_LAYOUT_VERSION`], e.g. borrowed from a `.bert` file): no
    /// repacking, and no weight is read until the first forward call. Checks the lengths of
    /// `packed` ([`crate::backend::int8::packed_len`]), `scales` and `bias`; any alignment works.
    pub fn from_int8_packed(
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Dense> {
        Self::from_int8_packed_with_path(in_dim, out_dim, packed, scales, bias, Int8Path::detect())
    }

    /// As [`Dense::from_int8_packed`] on a forced code path (tests and benchmarks).
    pub fn from_int8_packed_with_path(
        in_dim: usize,
        out_dim: usize,
        packed: WeightBytes,
        scales: Vec<f32>,
        bias: Vec<f32>,
        path: Int8Path,
    ) -> Result<Dense> {
        check_path(path)?;
        check_bias(out_dim, &bias)?;
        Ok(Dense {
            in_dim,
            out_dim,
            kernel: Kernel::Int8(Int8Weights::from_packed(
                in_dim, out_dim, packed, scales, path,
            )?),
            bias,
        })
    }

    /// The packed int8 kernel bytes (what a file stores), if this layer is int8.
    pub fn int8_packed_bytes(&self) -> Option<&[u8]> {
        match &self.kernel {
            Kernel::Int8(w) => Some(w.packed.as_bytes()),
            _ => None,
        }
    }

    /// The per-output-channel int8 scales `[out]`, if this layer is int8.
    pub fn int8_scales(&self) -> Option<&[f32]> {
        match &self.kernel {
            Kernel::Int8(w) => Some(&w.scales),
            _ => None,
        }
    }

    /// The int8 code path this layer runs, if it is int8.
    pub fn int8_path(&self) -> Option<Int8Path> {
        match &self.kernel {
            Kernel::Int8(w) => Some(w.path),
            _ => None,
        }
    }

    /// Which storage the kernel has.
    pub fn dtype(&self) -> DType {
        match &self.kernel {
            Kernel::F32(_) => DType::F32,
            Kernel::F16 { .. } => DType::F16,
            Kernel::Int8(_) => DType::Int8,
        }
    }

    /// The bias `[out]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The f32 micro-kernel the layer runs (f32 and f16 storage; for int8, the one this CPU
    /// would use).
    pub fn isa(&self) -> Isa {
        match &self.kernel {
            Kernel::F32(p) => p.isa,
            Kernel::F16 { isa, .. } => *isa,
            Kernel::Int8(_) => Isa::detect(),
        }
    }

    /// x: `[rows, in]` -> out: `[rows, out]`.
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], pool: &Pool) {
        self.forward_act(x, rows, out, Activation::Identity, pool)
    }

    /// x: `[rows, in]` -> out: `[rows, out]` = `act(x @ kernel + bias)`, the activation fused
    /// into the GEMM epilogue (`modeling.py`'s `intermediate` dense layer with `gelu`, the
    /// pooler with `tanh`).
    pub fn forward_act(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        act: Activation,
        pool: &Pool,
    ) {
        let bias = (!self.bias.is_empty()).then_some(&self.bias[..]);
        self.forward_with(x, rows, out, bias, act, pool)
    }

    /// [`Dense::forward_act`] with `bias` in place of the layer's own (the model keeps its
    /// biases as parameters beside a kernel prepared without one).
    pub(crate) fn forward_with(
        &self,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
        bias: Option<&[f32]>,
        act: Activation,
        pool: &Pool,
    ) {
        let (k, n) = (self.in_dim, self.out_dim);
        assert!(x.len() >= rows * k, "Dense: x too short");
        assert!(out.len() >= rows * n, "Dense: out too short");
        assert!(bias.map_or(true, |b| b.len() == n), "Dense: bias length");
        let (isa, b) = match &self.kernel {
            Kernel::F32(p) => (p.isa, BSrc::Packed(p)),
            Kernel::F16 { bytes, isa } => (*isa, BSrc::F16(bytes.as_bytes())),
            Kernel::Int8(w) => {
                let zeros;
                let bias = match bias {
                    Some(b) => b,
                    None => {
                        zeros = vec![0.0; n];
                        &zeros
                    }
                };
                w.forward(x, rows, out, bias, act, pool);
                return;
            }
        };
        let c = CMut {
            ptr: out.as_mut_ptr(),
            rs: n as isize,
            cs: 1,
        };
        // SAFETY: `out` holds `rows * n` floats (asserted) and stays mutably borrowed for the
        // call; `x` holds `[rows, k]` (asserted); `bias` has `n` floats (asserted) and an f16
        // kernel `k * n * 2` bytes (checked in the constructors); the constructors checked
        // the ISA.
        unsafe {
            gemm::gemm(
                isa,
                rows,
                k,
                n,
                1.0,
                MatRef {
                    data: x,
                    rs: k,
                    cs: 1,
                },
                b,
                0.0,
                c,
                bias,
                act,
                pool,
            )
        }
    }

    /// A kernel `[in, out]` from a loader's weights, on their own storage (f32 is packed
    /// for this CPU's micro-kernel, f16 and int8 kept as they are stored), with no bias of
    /// its own: what [`crate::backend::Cpu`] prepares for the model, which passes the bias.
    pub(crate) fn from_source(
        src: MatrixSource<'_>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<Dense> {
        let shape_err =
            |got: Vec<usize>| Error::Shape(format!("kernel {got:?} is not [{in_dim}, {out_dim}]"));
        let plain;
        let src = match src {
            // Panels in this CPU's layout run from the map as they are; others are unpacked
            // and packed again (what loading a plain f32 file costs).
            MatrixSource::Quantized(QuantizedTensor::F32Packed {
                in_dim: k,
                out_dim: n,
                nr,
                kc,
                bytes,
            }) if (*k, *n) == (in_dim, out_dim) => {
                if let Some(p) = PackedB::from_bytes(Isa::detect(), *k, *n, (*nr, *kc), bytes) {
                    return Ok(Self::with_kernel(in_dim, out_dim, Kernel::F32(p)));
                }
                plain = src_values(src)?;
                MatrixSource::F32(&plain, Layout::InOut)
            }
            MatrixSource::Quantized(q @ QuantizedTensor::F32Rows { bytes, .. })
                if q.shape() == [in_dim, out_dim] =>
            {
                plain = bytes.to_f32();
                MatrixSource::F32(&plain, Layout::InOut)
            }
            other => other,
        };
        match src {
            MatrixSource::F32(values, layout) => {
                if in_dim.checked_mul(out_dim) != Some(values.len()) {
                    return Err(shape_err(vec![values.len()]));
                }
                let view = match layout {
                    Layout::InOut => MatRef {
                        data: values,
                        rs: out_dim,
                        cs: 1,
                    },
                    Layout::OutIn => MatRef {
                        data: values,
                        rs: 1,
                        cs: in_dim,
                    },
                };
                let packed = PackedB::new(Isa::detect(), in_dim, out_dim, view);
                Ok(Self::with_kernel(in_dim, out_dim, Kernel::F32(packed)))
            }
            MatrixSource::Quantized(q) if q.shape() != [in_dim, out_dim] => {
                Err(shape_err(q.shape()))
            }
            MatrixSource::Quantized(q) => match q {
                QuantizedTensor::F16 { bytes, .. } => {
                    Self::new_f16(in_dim, out_dim, bytes.clone(), Vec::new())
                }
                QuantizedTensor::Int8 { values, scales, .. } => {
                    let (values, scales) = (values.clone(), scales.clone());
                    let q = QuantizedKernel {
                        in_dim,
                        out_dim,
                        values,
                        scales,
                    };
                    Self::new_int8_with_path(&q, Vec::new(), Int8Path::detect())
                }
                QuantizedTensor::Int8Packed { packed, scales, .. } => Self::from_int8_packed(
                    in_dim,
                    out_dim,
                    packed.clone(),
                    scales.clone(),
                    Vec::new(),
                ),
                QuantizedTensor::Int8Rows { .. } => Err(Error::Shape(
                    "an int8 table with per-row scales is not a dense kernel".into(),
                )),
                // Taken above when the shape fits.
                QuantizedTensor::F32Packed { .. } | QuantizedTensor::F32Rows { .. } => {
                    Err(shape_err(q.shape()))
                }
            },
        }
    }

    fn with_kernel(in_dim: usize, out_dim: usize, kernel: Kernel) -> Dense {
        Dense {
            in_dim,
            out_dim,
            kernel,
            bias: Vec::new(),
        }
    }
}

/// The values of an f32 source that cannot be used in place, as a `[in, out]` matrix.
fn src_values(src: MatrixSource<'_>) -> Result<std::borrow::Cow<'_, [f32]>> {
    match src {
        MatrixSource::Quantized(q) => Ok(std::borrow::Cow::Owned(q.to_f32()?)),
        MatrixSource::F32(v, _) => Ok(std::borrow::Cow::Borrowed(v)),
    }
}

/// A bias has `out_dim` values, or none (the model passes its own at each call).
fn check_bias(out_dim: usize, bias: &[f32]) -> Result<()> {
    if bias.len() != out_dim && !bias.is_empty() {
        return Err(Error::Shape(format!(
            "dense bias: {} values, expected {out_dim}",
            bias.len()
        )));
    }
    Ok(())
}

fn check_path(path: Int8Path) -> Result<()> {
    if !path.available() {
        return Err(Error::Unsupported(format!(
            "int8 path {path:?}: this CPU or build lacks it"
        )));
    }
    Ok(())
}
