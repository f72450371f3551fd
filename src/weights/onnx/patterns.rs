//! Graph patterns shared by BERT's parts: dense layers, LayerNorm, residual Adds, the paths
//! through Reshape/Transpose to a MatMul, the activation between the feed-forward MatMuls.

use std::collections::HashSet;

use super::{Dense, Graph, Kernel, Norm, Tensor, MAX_ACTIVATION_NODES};
use crate::config::Activation;
use crate::Result;

impl<'a> Graph<'a> {
    /// MatMul nodes reading `x` as their left operand with a constant 2-D right operand.
    pub(super) fn dense_matmuls(&self, x: &str) -> Vec<usize> {
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
    pub(super) fn dense(&self, node: usize, what: &str) -> Result<Dense> {
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
            let kernel = self.kernel(w, self.attr_i(node, "transB", 0) != 0)?;
            let b = self
                .input(node, 2)
                .ok_or_else(|| self.err(&label, format!("{what}: Gemm without bias")))?;
            let bias = self.const_rank(b, 1, "bias")?;
            return self.checked_dense(kernel, bias, self.output(node)?.to_string(), w, what);
        }
        let kernel = self.kernel(w, false)?;
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

    pub(super) fn checked_dense(
        &self,
        kernel: Kernel,
        bias: Tensor,
        output: String,
        w: &str,
        what: &str,
    ) -> Result<Dense> {
        if bias.shape[0] != kernel.shape()[1] {
            return Err(self.err(
                w,
                format!(
                    "{what}: kernel {:?} and bias {:?} disagree",
                    kernel.shape(),
                    bias.shape
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
    pub(super) fn layer_norm(&self, x: &str, what: &str) -> Result<Norm> {
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

    pub(super) fn checked_norm(
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
    pub(super) fn residual(&self, a: &str, b: &str, what: &str) -> Result<String> {
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
    pub(super) fn follow_to_matmul<'s>(
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

    /// `probs`, or the `Where(IsNaN(probs), c, probs)` that guards it: PyTorch's dynamo
    /// exporter writes scaled_dot_product_attention's softmax so, to zero the rows of fully
    /// masked queries (for which Google's −10000 mask gives uniform weights instead; such rows
    /// never occur for a real token, since each attends at least to itself).
    pub(super) fn skip_nan_guard(&self, probs: &'a str) -> &'a str {
        let users = self.consumers(probs);
        let is_nan = users
            .iter()
            .find(|&&c| self.op(c) == "IsNaN")
            .and_then(|&c| self.output(c).ok());
        let guard = users.iter().copied().find(|&c| {
            self.op(c) == "Where"
                && is_nan.is_some()
                && self.input(c, 0) == is_nan
                && self.input(c, 2) == Some(probs)
        });
        match guard.map(|g| self.output(g)) {
            Some(Ok(out)) if users.len() == 2 => out,
            _ => probs,
        }
    }

    /// The factor a scalar `Mul`/`Div` node applies to `value`.
    pub(super) fn scale_factor(&self, node: usize, value: &str) -> Result<f32> {
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
    pub(super) fn heads_from_reshape(&self, reshape: usize, hidden: usize) -> Option<usize> {
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
    pub(super) fn activation(&self, h: &str, what: &str) -> Result<(Activation, usize)> {
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
}
