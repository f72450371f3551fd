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
//! feed-forward MatMuls (Erf → [`Activation::GeluErf`], Tanh → [`Activation::GeluTanh`], Relu),
//! the LayerNorm ε from `LayerNormalization`'s attribute or the decomposed pattern's Add
//! constant (ReduceMean, Sub, Pow, ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β).
//!
//! Ops that only compute shapes (`Shape` and what reads it) are ignored. Anything that does
//! not fit is an [`Error::Format`] naming the file and the node or tensor involved.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tract_onnx::pb::{self, NodeProto, TensorProto};
use tract_onnx::prelude::Framework;

use super::{num_elements, transpose, Tensor, Weights};
use crate::config::{Activation, BertConfig};
use crate::{Error, Result};

/// ONNX `TensorProto.DataType` values we read.
mod dtype {
    pub const FLOAT: i32 = 1;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
}

/// Largest number of nodes walked between two MatMuls when looking at an activation.
const MAX_ACTIVATION_NODES: usize = 64;

/// Loads an ONNX BERT export: the config inferred from the graph and Google-named weights.
pub fn load(path: impl AsRef<Path>) -> Result<(BertConfig, Weights)> {
    let path = path.as_ref();
    // An unreadable file is an I/O error, not a malformed one.
    std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let model = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| Error::format(path, None, format!("not an ONNX model: {e}")))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::format(path, None, "ONNX model has no graph"))?;
    Graph::new(path, graph)?.map()
}

/// A dense layer found in the graph: `x · kernel + bias`, kernel `[in, out]`.
struct Dense {
    kernel: Tensor,
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
    nodes: &'a [NodeProto],
    /// Value name -> index of the node writing it.
    producer: HashMap<&'a str, usize>,
    /// Value name -> indices of the nodes reading it, `Shape` nodes left out.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// Initializers and `Constant` node values.
    constants: HashMap<&'a str, &'a TensorProto>,
    inputs: Vec<&'a str>,
}

impl<'a> Graph<'a> {
    fn new(path: &'a Path, g: &'a pb::GraphProto) -> Result<Graph<'a>> {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut constants = HashMap::new();
        for t in &g.initializer {
            constants.insert(t.name.as_str(), t);
        }
        for (i, n) in g.node.iter().enumerate() {
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
            nodes: &g.node,
            producer,
            consumers,
            constants,
            inputs,
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
        self.constants.contains_key(value)
    }

    /// A constant as f32 (FLOAT, FLOAT16 or DOUBLE), with its shape.
    fn const_f32(&self, value: &str) -> Result<Tensor> {
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

    // ---------------------------------------------------------------- patterns

    /// MatMul nodes reading `x` as their left operand with a constant 2-D right operand.
    fn dense_matmuls(&self, x: &str) -> Vec<usize> {
        self.consumers(x)
            .iter()
            .copied()
            .filter(|&c| {
                self.op(c) == "MatMul"
                    && self.input(c, 0) == Some(x)
                    && self.input(c, 1).is_some_and(|w| self.is_constant(w))
            })
            .collect()
    }

    /// `MatMul(x, W)` followed by `Add(b)` (either operand order), or a `Gemm`.
    fn dense(&self, node: usize, what: &str) -> Result<Dense> {
        let label = self.node_label(node);
        let w = self
            .input(node, 1)
            .ok_or_else(|| self.err(&label, format!("{what}: no weight input")))?;
        if self.op(node) == "Gemm" {
            // Gemm(A, B, C) = alpha A op(B) + beta C; B is [in, out], or [out, in] when transB.
            let alpha = self.attr(node, "alpha").map_or(1.0, |a| a.f);
            let beta = self.attr(node, "beta").map_or(1.0, |a| a.f);
            if alpha != 1.0 || beta != 1.0 || self.attr_i(node, "transA", 0) != 0 {
                return Err(self.err(&label, format!("{what}: Gemm with alpha/beta/transA")));
            }
            let mut kernel = self.const_rank(w, 2, "kernel")?;
            if self.attr_i(node, "transB", 0) != 0 {
                let (o, i) = (kernel.shape[0], kernel.shape[1]);
                // [out, in] -> Google's [in, out].
                kernel = Tensor {
                    shape: vec![i, o],
                    data: transpose(&kernel.data, o, i),
                };
            }
            let b = self
                .input(node, 2)
                .ok_or_else(|| self.err(&label, format!("{what}: Gemm without bias")))?;
            let bias = self.const_rank(b, 1, "bias")?;
            return self.checked_dense(kernel, bias, self.output(node)?.to_string(), w, what);
        }
        let kernel = self.const_rank(w, 2, "kernel")?;
        let mm_out = self.output(node)?;
        let add = self.only_consumer(mm_out, &["Add"], &format!("{what} bias Add"))?;
        let bias_name = match (self.input(add, 0), self.input(add, 1)) {
            (Some(a), Some(b)) if a == mm_out && self.is_constant(b) => b,
            (Some(a), Some(b)) if b == mm_out && self.is_constant(a) => a,
            _ => {
                return Err(self.err(
                    &self.node_label(add),
                    format!("{what}: the Add after MatMul has no constant bias"),
                ))
            }
        };
        let bias = self.const_rank(bias_name, 1, "bias")?;
        self.checked_dense(kernel, bias, self.output(add)?.to_string(), w, what)
    }

    fn checked_dense(
        &self,
        kernel: Tensor,
        bias: Tensor,
        output: String,
        w: &str,
        what: &str,
    ) -> Result<Dense> {
        if bias.shape[0] != kernel.shape[1] {
            return Err(self.err(
                w,
                format!(
                    "{what}: kernel {:?} and bias {:?} disagree",
                    kernel.shape, bias.shape
                ),
            ));
        }
        Ok(Dense {
            kernel,
            bias,
            output,
        })
    }

    /// The LayerNorm reading `x`: one `LayerNormalization` node, or the decomposed pattern.
    fn layer_norm(&self, x: &str, what: &str) -> Result<Norm> {
        let consumers = self.consumers(x);
        if let Some(&ln) = consumers
            .iter()
            .find(|&&c| self.op(c) == "LayerNormalization" && self.input(c, 0) == Some(x))
        {
            let label = self.node_label(ln);
            let axis = self.attr_i(ln, "axis", -1);
            if axis != -1 && axis != 2 {
                return Err(self.err(&label, format!("{what}: axis {axis}, expected -1")));
            }
            let gamma = self.const_rank(
                self.input(ln, 1)
                    .ok_or_else(|| self.err(&label, "no scale input"))?,
                1,
                "LayerNorm scale",
            )?;
            let beta = match self.input(ln, 2) {
                Some(b) => self.const_rank(b, 1, "LayerNorm bias")?,
                None => Tensor {
                    shape: gamma.shape.clone(),
                    data: vec![0.0; gamma.data.len()],
                },
            };
            // The ONNX default epsilon is 1e-5.
            let eps = self.attr(ln, "epsilon").map_or(1e-5, |a| a.f);
            return self.checked_norm(gamma, beta, eps, self.output(ln)?.to_string(), &label);
        }
        // Decomposed: (x - mean) / sqrt(mean((x - mean)^2) + eps) * gamma + beta.
        let mean = consumers
            .iter()
            .copied()
            .find(|&c| self.op(c) == "ReduceMean")
            .ok_or_else(|| {
                self.err(
                    x,
                    format!("{what}: no LayerNormalization or ReduceMean reads it"),
                )
            })?;
        let mean_out = self.output(mean)?;
        let sub = self.only_consumer(mean_out, &["Sub"], &format!("{what} (x - mean)"))?;
        let d = self.output(sub)?;
        let d_users = self.consumers(d);
        let pow = d_users
            .iter()
            .copied()
            .find(|&c| self.op(c) == "Pow" || self.op(c) == "Mul")
            .ok_or_else(|| self.err(d, format!("{what}: no Pow reads x - mean")))?;
        let div = d_users
            .iter()
            .copied()
            .find(|&c| self.op(c) == "Div" && self.input(c, 0) == Some(d))
            .ok_or_else(|| self.err(d, format!("{what}: no Div reads x - mean")))?;
        let var = self.only_consumer(self.output(pow)?, &["ReduceMean"], what)?;
        let add_eps = self.only_consumer(self.output(var)?, &["Add"], &format!("{what} + eps"))?;
        let eps_name = (0..2)
            .filter_map(|s| self.input(add_eps, s))
            .find(|v| self.is_constant(v))
            .ok_or_else(|| self.err(&self.node_label(add_eps), "no constant epsilon"))?;
        let eps = self
            .scalar(eps_name)
            .ok_or_else(|| self.err(eps_name, "epsilon is not a scalar"))?;
        let sqrt = self.only_consumer(self.output(add_eps)?, &["Sqrt"], what)?;
        if self.input(div, 1) != Some(self.output(sqrt)?) {
            return Err(self.err(&self.node_label(div), format!("{what}: Div is not by Sqrt")));
        }
        let mul = self.only_consumer(self.output(div)?, &["Mul"], &format!("{what} * gamma"))?;
        let gamma_name = (0..2)
            .filter_map(|s| self.input(mul, s))
            .find(|v| self.is_constant(v))
            .ok_or_else(|| self.err(&self.node_label(mul), "no constant LayerNorm scale"))?;
        let add = self.only_consumer(self.output(mul)?, &["Add"], &format!("{what} + beta"))?;
        let beta_name = (0..2)
            .filter_map(|s| self.input(add, s))
            .find(|v| self.is_constant(v))
            .ok_or_else(|| self.err(&self.node_label(add), "no constant LayerNorm bias"))?;
        let gamma = self.const_rank(gamma_name, 1, "LayerNorm scale")?;
        let beta = self.const_rank(beta_name, 1, "LayerNorm bias")?;
        let label = self.node_label(mean);
        self.checked_norm(gamma, beta, eps, self.output(add)?.to_string(), &label)
    }

    fn checked_norm(
        &self,
        gamma: Tensor,
        beta: Tensor,
        eps: f32,
        output: String,
        label: &str,
    ) -> Result<Norm> {
        if gamma.shape != beta.shape {
            return Err(self.err(
                label,
                format!(
                    "LayerNorm scale {:?} and bias {:?}",
                    gamma.shape, beta.shape
                ),
            ));
        }
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(self.err(label, format!("LayerNorm epsilon {eps}")));
        }
        Ok(Norm {
            gamma,
            beta,
            eps,
            output,
        })
    }

    /// The `Add(a, b)` reading `a` whose other operand is `b` (a residual connection).
    fn residual(&self, a: &str, b: &str, what: &str) -> Result<String> {
        let add = self.only_consumer(a, &["Add"], what)?;
        let other = if self.input(add, 0) == Some(a) {
            self.input(add, 1)
        } else {
            self.input(add, 0)
        };
        if other != Some(b) {
            return Err(self.err(
                &self.node_label(add),
                format!("{what}: adds {other:?}, expected {b}"),
            ));
        }
        Ok(self.output(add)?.to_string())
    }

    /// Follows `value` through Reshape/Transpose (and scalar Mul/Div, whose factor is
    /// multiplied into `scale`) to the MatMul it enters. Returns the MatMul, the operand slot
    /// `value` arrives at, and the Reshapes passed.
    fn follow_to_matmul<'s>(
        &'s self,
        mut value: &'s str,
        scale: &mut f32,
        what: &str,
    ) -> Result<(usize, usize, Vec<usize>)> {
        let mut reshapes = Vec::new();
        for _ in 0..16 {
            let c = self.only_consumer(
                value,
                &["Reshape", "Transpose", "Mul", "Div", "MatMul"],
                what,
            )?;
            match self.op(c) {
                "MatMul" => {
                    let slot = usize::from(self.input(c, 1) == Some(value));
                    return Ok((c, slot, reshapes));
                }
                "Mul" | "Div" => *scale *= self.scale_factor(c, value)?,
                "Reshape" => reshapes.push(c),
                _ => {}
            }
            value = self.output(c)?;
        }
        Err(self.err(value, format!("{what}: no MatMul within 16 nodes")))
    }

    /// The factor a scalar `Mul`/`Div` node applies to `value`.
    fn scale_factor(&self, node: usize, value: &str) -> Result<f32> {
        let other = if self.input(node, 0) == Some(value) {
            self.input(node, 1)
        } else {
            self.input(node, 0)
        };
        let c = other
            .and_then(|o| self.scalar(o))
            .ok_or_else(|| self.err(&self.node_label(node), "scaling by a non-constant"))?;
        match self.op(node) {
            "Div" if self.input(node, 0) == Some(value) => Ok(1.0 / c),
            "Mul" => Ok(c),
            _ => Err(self.err(&self.node_label(node), "unexpected division")),
        }
    }

    /// The head count from the Reshape that splits `[b, s, hidden]` into
    /// `[b, s, heads, head_size]`: its shape is a constant or a Concat of pieces.
    fn heads_from_reshape(&self, reshape: usize, hidden: usize) -> Option<usize> {
        let shape = self.input(reshape, 1)?;
        let dims: Vec<Option<i64>> = if let Ok(v) = self.const_i64(shape) {
            v.into_iter().map(Some).collect()
        } else {
            let concat = *self.producer.get(shape)?;
            if self.op(concat) != "Concat" {
                return None;
            }
            self.nodes[concat]
                .input
                .iter()
                .map(|i| match self.const_i64(i) {
                    Ok(v) if v.len() == 1 => Some(v[0]),
                    _ => None,
                })
                .collect()
        };
        let [_, _, heads, size] = dims[..] else {
            return None;
        };
        match (heads, size) {
            (Some(a), _) if a > 0 => Some(a as usize),
            (_, Some(d)) if d > 0 && hidden % d as usize == 0 => Some(hidden / d as usize),
            _ => None,
        }
    }

    /// The activation between the intermediate dense output `h` and the output MatMul: the
    /// ops of everything reachable from `h` before a MatMul. Returns it and the MatMul.
    fn activation(&self, h: &str, what: &str) -> Result<(Activation, usize)> {
        let mut seen = HashSet::new();
        let mut stack = vec![h];
        let mut ops = HashSet::new();
        let mut matmuls = HashSet::new();
        while let Some(v) = stack.pop() {
            for &c in self.consumers(v) {
                if !seen.insert(c) {
                    continue;
                }
                if seen.len() > MAX_ACTIVATION_NODES {
                    return Err(self.err(h, format!("{what}: no MatMul after the activation")));
                }
                if self.op(c) == "MatMul" {
                    matmuls.insert(c);
                    continue;
                }
                ops.insert(self.op(c));
                stack.extend(self.nodes[c].output.iter().map(String::as_str));
            }
        }
        let mm = match matmuls.into_iter().collect::<Vec<_>>()[..] {
            [m] => m,
            ref ms => {
                return Err(self.err(
                    h,
                    format!(
                        "{what}: {} MatMuls follow the activation, expected 1",
                        ms.len()
                    ),
                ))
            }
        };
        let gelu_tanh = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| seen.contains(i) && n.op_type == "Gelu")
            .any(|(i, _)| self.attr(i, "approximate").is_some_and(|a| a.s == b"tanh"));
        let act = if ops.contains("Erf") || (ops.contains("Gelu") && !gelu_tanh) {
            Activation::GeluErf
        } else if ops.contains("Tanh") || gelu_tanh {
            Activation::GeluTanh
        } else if ops.contains("Relu") {
            Activation::Relu
        } else {
            let mut found: Vec<&str> = ops.into_iter().collect();
            found.sort_unstable();
            return Err(self.err(
                h,
                format!(
                    "{what}: activation not recognised (ops {found:?}; expected Erf, Tanh, \
                     Gelu or Relu)"
                ),
            ));
        };
        Ok((act, mm))
    }

    // ---------------------------------------------------------------- BERT's parts

    fn map(&self) -> Result<(BertConfig, Weights)> {
        let mut w = Weights::new();
        let EmbeddingsFound {
            hidden,
            output: mut x,
            vocab,
            positions,
            types,
            eps,
        } = self.embeddings(&mut w)?;
        let mut layers = 0;
        let mut heads = None;
        let mut act = None;
        let mut intermediate = None;
        loop {
            let qkv = self.dense_matmuls(&x);
            if qkv.is_empty() {
                break;
            }
            let scope = format!("bert/encoder/layer_{layers}");
            let l = self.layer(&x, &qkv, &scope, hidden, &mut w)?;
            if heads.is_some_and(|h| h != l.heads) {
                return Err(self.err(&scope, "head count differs from layer 0"));
            }
            heads = Some(l.heads);
            if act.is_some_and(|a| a != l.activation) {
                return Err(self.err(&scope, "activation differs from layer 0"));
            }
            act = Some(l.activation);
            if intermediate.is_some_and(|i| i != l.intermediate) {
                return Err(self.err(&scope, "intermediate size differs from layer 0"));
            }
            intermediate = Some(l.intermediate);
            for e in l.eps {
                if e != eps {
                    return Err(self.err(
                        &scope,
                        format!("LayerNorm epsilon {e} differs from the embeddings' {eps}"),
                    ));
                }
            }
            x = l.output;
            layers += 1;
        }
        let (Some(heads), Some(hidden_act), Some(intermediate_size)) = (heads, act, intermediate)
        else {
            return Err(self.err(
                &x,
                "no encoder layer: no MatMul with a constant weight reads the embeddings",
            ));
        };
        self.pooler(&x, hidden, &mut w)?;
        let config = BertConfig {
            vocab_size: vocab,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size,
            hidden_act,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: positions,
            type_vocab_size: types,
            layer_norm_eps: eps,
            ..BertConfig::default()
        };
        config
            .validate()
            .map_err(|e| self.err("config", e.to_string()))?;
        Ok((config, w))
    }

    /// `bert/embeddings/*`.
    fn embeddings(&self, w: &mut Weights) -> Result<EmbeddingsFound> {
        let ids = if self.inputs.contains(&"input_ids") {
            "input_ids"
        } else {
            self.inputs
                .iter()
                .copied()
                .find(|i| {
                    self.consumers(i)
                        .iter()
                        .any(|&c| self.op(c) == "Gather" && self.input(c, 1) == Some(i))
                })
                .ok_or_else(|| self.err("input_ids", "no graph input feeds a Gather"))?
        };
        let word = self
            .consumers(ids)
            .iter()
            .copied()
            .find(|&c| {
                self.op(c) == "Gather"
                    && self.input(c, 1) == Some(ids)
                    && self.input(c, 0).is_some_and(|t| self.is_constant(t))
            })
            .ok_or_else(|| {
                self.err(
                    ids,
                    "no Gather of a constant table (word embeddings) reads it",
                )
            })?;
        let word_table = self.const_rank(self.input(word, 0).unwrap_or_default(), 2, "word")?;
        let (vocab, hidden) = (word_table.shape[0], word_table.shape[1]);

        // The Adds after the word Gather bring the other tables, then comes the LayerNorm.
        let mut sum = self.output(word)?;
        let mut others = Vec::new();
        while let [c] = self.consumers(sum) {
            if self.op(*c) != "Add" {
                break;
            }
            let other = if self.input(*c, 0) == Some(sum) {
                self.input(*c, 1)
            } else {
                self.input(*c, 0)
            };
            self.collect_gathers(other.unwrap_or_default(), &mut others)?;
            sum = self.output(*c)?;
        }
        let (mut position, mut token_type) = (None, None);
        let mut unknown = Vec::new();
        for g in others {
            let table = self.input(g, 0).unwrap_or_default();
            match self.embedding_kind(g, ids) {
                Some(true) => position = Some(table),
                Some(false) => token_type = Some(table),
                None => unknown.push(table),
            }
        }
        // Otherwise told apart by size: BERT has hundreds of positions and a handful of types.
        match (position, token_type, &unknown[..]) {
            (_, _, []) => {}
            (None, None, &[a, b]) => {
                let rows = |t: &str| self.const_f32(t).map(|t| t.shape.first().copied());
                let (pa, tb) = if rows(a)? >= rows(b)? { (a, b) } else { (b, a) };
                position = Some(pa);
                token_type = Some(tb);
            }
            (None, _, &[a]) => position = Some(a),
            (Some(_), None, &[a]) => token_type = Some(a),
            (_, _, tables) => {
                return Err(self.err(tables[0], "cannot tell position from token type embeddings"))
            }
        }
        let position = position.ok_or_else(|| {
            self.err(
                sum,
                "no position embeddings Gather is added to the word embeddings",
            )
        })?;
        let position = self.const_rank(position, 2, "position embeddings")?;
        // An export without token types behaves like a one-row table of zeros.
        let token_type = match token_type {
            Some(t) => self.const_rank(t, 2, "token type embeddings")?,
            None => Tensor {
                shape: vec![1, hidden],
                data: vec![0.0; hidden],
            },
        };
        for (name, t) in [("position", &position), ("token type", &token_type)] {
            if t.shape[1] != hidden {
                return Err(self.err(
                    name,
                    format!("{name} embeddings {:?}, hidden size {hidden}", t.shape),
                ));
            }
        }
        let norm = self.layer_norm(sum, "embeddings LayerNorm")?;
        let (positions, types) = (position.shape[0], token_type.shape[0]);
        w.insert("bert/embeddings/word_embeddings", word_table);
        w.insert("bert/embeddings/position_embeddings", position);
        w.insert("bert/embeddings/token_type_embeddings", token_type);
        let eps = norm.eps;
        let out = norm.output.clone();
        insert_norm(w, "bert/embeddings/LayerNorm", norm);
        Ok(EmbeddingsFound {
            hidden,
            output: out,
            vocab,
            positions,
            types,
            eps,
        })
    }

    /// Gathers of constant 2-D tables summed into `value`.
    fn collect_gathers(&self, value: &str, out: &mut Vec<usize>) -> Result<()> {
        let p = *self.producer.get(value).ok_or_else(|| {
            self.err(
                value,
                "added to the word embeddings but not an embedding Gather",
            )
        })?;
        match self.op(p) {
            "Gather" if self.input(p, 0).is_some_and(|t| self.is_constant(t)) => {
                out.push(p);
                Ok(())
            }
            "Add" => {
                for s in 0..2 {
                    self.collect_gathers(self.input(p, s).unwrap_or_default(), out)?;
                }
                Ok(())
            }
            op => Err(self.err(
                &self.node_label(p),
                format!("{op} added to the word embeddings, expected an embedding Gather"),
            )),
        }
    }

    /// Whether an embedding Gather is the position (`Some(true)`) or token-type
    /// (`Some(false)`) table: by the table's name, else by where its indices come from (a
    /// Range: positions; a graph input other than the ids: token types).
    fn embedding_kind(&self, gather: usize, ids: &str) -> Option<bool> {
        let table = self.input(gather, 0)?;
        if table.contains("position") {
            return Some(true);
        }
        if table.contains("token_type") || table.contains("segment") {
            return Some(false);
        }
        let mut v = self.input(gather, 1)?;
        for _ in 0..16 {
            if self.inputs.contains(&v) {
                return (v != ids).then_some(false);
            }
            let p = *self.producer.get(v)?;
            if self.op(p) == "Range" {
                return Some(true);
            }
            v = self.input(p, 0)?;
        }
        None
    }

    /// One encoder layer reading `x`, whose three query/key/value MatMuls are `qkv`.
    fn layer(
        &self,
        x: &str,
        qkv: &[usize],
        scope: &str,
        hidden: usize,
        w: &mut Weights,
    ) -> Result<LayerFound> {
        let [a, b, c] = qkv[..] else {
            return Err(self.err(
                x,
                format!(
                    "{scope}: {} MatMuls read the layer input, expected 3 (query, key, value)",
                    qkv.len()
                ),
            ));
        };
        let mut found = Vec::new();
        let mut scale = 1.0f32;
        for mm in [a, b, c] {
            let d = self.dense(mm, &format!("{scope} attention projection"))?;
            if d.kernel.shape != [hidden, hidden] {
                return Err(self.err(
                    &self.node_label(mm),
                    format!(
                        "{scope}: projection {:?}, expected [{hidden}, {hidden}]",
                        d.kernel.shape
                    ),
                ));
            }
            let mut s = 1.0;
            let (target, slot, reshapes) =
                self.follow_to_matmul(&d.output, &mut s, &format!("{scope} attention"))?;
            found.push((d, target, slot, reshapes, s));
        }
        // Query and key meet in the scores MatMul (query first); the value enters another
        // MatMul second.
        let scores_mm = found
            .iter()
            .find(|f| f.2 == 0)
            .map(|f| f.1)
            .ok_or_else(|| self.err(scope, "no projection enters a MatMul first (query)"))?;
        let pick = |slot: usize, same: bool| {
            found
                .iter()
                .position(|f| f.2 == slot && (f.1 == scores_mm) == same)
        };
        let (Some(qi), Some(ki), Some(vi)) = (pick(0, true), pick(1, true), pick(1, false)) else {
            return Err(self.err(
                &self.node_label(scores_mm),
                format!("{scope}: query/key/value do not form QKᵀ and probs·V"),
            ));
        };
        // Scaling on the query or key path counts toward the score scale.
        scale *= found[qi].4 * found[ki].4;
        if found[vi].4 != 1.0 {
            return Err(self.err(scope, "the value path is scaled"));
        }
        let context_mm = found[vi].1;

        // scores -> scale -> + mask -> Softmax -> probs, the left operand of probs·V.
        let mut v = self.output(scores_mm)?;
        loop {
            let c = self.only_consumer(
                v,
                &["Mul", "Div", "Add", "Softmax"],
                &format!("{scope} attention scores"),
            )?;
            match self.op(c) {
                "Mul" | "Div" => scale *= self.scale_factor(c, v)?,
                "Softmax" => {
                    let axis = self.attr_i(c, "axis", -1);
                    if axis != -1 && axis != 3 {
                        return Err(self.err(&self.node_label(c), "Softmax not over the keys"));
                    }
                    let probs = self.output(c)?;
                    if self.input(context_mm, 0) != Some(probs) {
                        return Err(self.err(
                            &self.node_label(context_mm),
                            format!("{scope}: probs·V does not read the Softmax"),
                        ));
                    }
                    break;
                }
                _ => {} // the attention mask Add
            }
            v = self.output(c)?;
        }
        let heads = found[qi]
            .3
            .iter()
            .chain(&found[ki].3)
            .find_map(|&r| self.heads_from_reshape(r, hidden))
            .or_else(|| {
                // From the scale 1/sqrt(head_size).
                let d = (1.0 / (scale * scale)).round() as usize;
                (d > 0 && hidden % d == 0).then(|| hidden / d)
            })
            .ok_or_else(|| self.err(scope, "cannot tell the number of attention heads"))?;
        if heads == 0 || hidden % heads != 0 {
            return Err(self.err(scope, format!("{heads} heads do not divide {hidden}")));
        }
        let head_size = (hidden / heads) as f32;
        if (scale * head_size.sqrt() - 1.0).abs() > 1e-4 {
            return Err(self.err(
                scope,
                format!("attention scale {scale} is not 1/sqrt(head size {head_size})"),
            ));
        }

        // context -> Transpose/Reshape -> attention output dense -> + x -> LayerNorm.
        let mut s = 1.0;
        let (out_mm, slot, _) = self.follow_to_matmul(
            self.output(context_mm)?,
            &mut s,
            &format!("{scope} context"),
        )?;
        if slot != 0 || s != 1.0 {
            return Err(self.err(&self.node_label(out_mm), "unexpected attention output"));
        }
        let attn_out = self.dense(out_mm, &format!("{scope}/attention/output/dense"))?;
        let sum = self.residual(&attn_out.output, x, &format!("{scope} attention residual"))?;
        let attn_norm = self.layer_norm(&sum, &format!("{scope}/attention/output/LayerNorm"))?;
        let y = attn_norm.output.clone();

        // y -> intermediate dense -> activation -> output dense -> + y -> LayerNorm.
        let inter_mm = match self.dense_matmuls(&y)[..] {
            [m] => m,
            ref ms => {
                return Err(self.err(
                    &y,
                    format!(
                        "{scope}: {} MatMuls read the attention output, expected 1 \
                         (intermediate dense)",
                        ms.len()
                    ),
                ))
            }
        };
        let inter = self.dense(inter_mm, &format!("{scope}/intermediate/dense"))?;
        let intermediate = inter.kernel.shape[1];
        let (activation, out_mm) = self.activation(&inter.output, scope)?;
        let out = self.dense(out_mm, &format!("{scope}/output/dense"))?;
        if out.kernel.shape != [intermediate, hidden] {
            return Err(self.err(
                &self.node_label(out_mm),
                format!(
                    "{scope}: output dense {:?}, expected [{intermediate}, {hidden}]",
                    out.kernel.shape
                ),
            ));
        }
        let sum = self.residual(&out.output, &y, &format!("{scope} output residual"))?;
        let out_norm = self.layer_norm(&sum, &format!("{scope}/output/LayerNorm"))?;
        let output = out_norm.output.clone();
        let eps = vec![attn_norm.eps, out_norm.eps];

        let mut qkv_found = found.into_iter().map(|f| f.0).map(Some).collect::<Vec<_>>();
        for (name, i) in [("query", qi), ("key", ki), ("value", vi)] {
            if let Some(d) = qkv_found[i].take() {
                insert_dense(w, &format!("{scope}/attention/self/{name}"), d);
            }
        }
        insert_dense(w, &format!("{scope}/attention/output/dense"), attn_out);
        insert_norm(w, &format!("{scope}/attention/output/LayerNorm"), attn_norm);
        insert_dense(w, &format!("{scope}/intermediate/dense"), inter);
        insert_dense(w, &format!("{scope}/output/dense"), out);
        insert_norm(w, &format!("{scope}/output/LayerNorm"), out_norm);
        Ok(LayerFound {
            output,
            heads,
            activation,
            intermediate,
            eps,
        })
    }

    /// `bert/pooler/dense`, when the sequence output goes through
    /// `Gather(index 0, axis 1)` → dense → Tanh. Anything else: no pooler.
    fn pooler(&self, x: &str, hidden: usize, w: &mut Weights) -> Result<()> {
        for &g in self.consumers(x) {
            let first_token = self.op(g) == "Gather"
                && self.attr_i(g, "axis", 0) == 1
                && self
                    .input(g, 1)
                    .is_some_and(|i| self.const_i64(i).is_ok_and(|v| v == [0]));
            if !first_token {
                continue;
            }
            let first = self.output(g)?;
            let Some(&dense) = self.consumers(first).iter().find(|&&c| {
                (self.op(c) == "Gemm" || self.op(c) == "MatMul")
                    && self.input(c, 1).is_some_and(|w| self.is_constant(w))
            }) else {
                continue;
            };
            let d = self.dense(dense, "bert/pooler/dense")?;
            let tanh = self
                .consumers(&d.output)
                .iter()
                .any(|&c| self.op(c) == "Tanh");
            if tanh && d.kernel.shape == [hidden, hidden] {
                insert_dense(w, "bert/pooler/dense", d);
                return Ok(());
            }
        }
        Ok(())
    }
}

/// What the embeddings told about the config.
struct EmbeddingsFound {
    hidden: usize,
    /// The LayerNorm output, the first layer's input.
    output: String,
    vocab: usize,
    positions: usize,
    types: usize,
    eps: f32,
}

/// What one layer told about the config.
struct LayerFound {
    output: String,
    heads: usize,
    activation: Activation,
    intermediate: usize,
    eps: Vec<f32>,
}

fn insert_dense(w: &mut Weights, scope: &str, d: Dense) {
    // ONNX MatMul kernels are already [in, out], Google's layout.
    w.insert(format!("{scope}/kernel"), d.kernel);
    w.insert(format!("{scope}/bias"), d.bias);
}

fn insert_norm(w: &mut Weights, scope: &str, n: Norm) {
    w.insert(format!("{scope}/gamma"), n.gamma);
    w.insert(format!("{scope}/beta"), n.beta);
}

/// `raw` in `width`-byte pieces (a trailing partial piece is dropped; the caller compares the
/// count with the shape).
fn raw_values(raw: &[u8], width: usize) -> impl Iterator<Item = &[u8]> {
    raw.chunks_exact(width)
}
