//! BERT's parts found in the graph: embeddings, encoder layers, pooler (see the module
//! documentation of [`super`] for what is matched).

use super::{int8, Dense, Graph, Kernel, Norm, QuantReport, Tensor, Weights};
use crate::config::{Activation, BertConfig};
use crate::Result;

impl<'a> Graph<'a> {
    /// The config and Google-named weights, with what happened to quantized weights.
    pub(super) fn map(&self) -> Result<(BertConfig, Weights, QuantReport)> {
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
        Ok((config, w, self.report.take()))
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
        let word_name = self.input(word, 0).unwrap_or_default();
        // A quantized word table stays int8 (one scale per row) where its values allow it.
        let word_table = match self.quantized.get(word_name).and_then(|q| q.table_rows()) {
            Some(t) => Err(t),
            None => Ok(self.const_rank(word_name, 2, "word")?),
        };
        let (vocab, hidden) = match &word_table {
            Ok(t) => (t.shape[0], t.shape[1]),
            Err(q) => (q.shape()[0], q.shape()[1]),
        };

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
        let name = "bert/embeddings/word_embeddings";
        match word_table {
            Ok(t) => w.insert(name, t),
            Err(q) => {
                w.insert_quantized(name, q)
                    .map_err(|e| self.err(word_name, e.to_string()))?;
                self.report
                    .borrow_mut()
                    .int8_tables
                    .push(word_name.to_string());
            }
        }
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
            if d.kernel.shape() != [hidden, hidden] {
                return Err(self.err(
                    &self.node_label(mm),
                    format!(
                        "{scope}: projection {:?}, expected [{hidden}, {hidden}]",
                        d.kernel.shape()
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
                    let probs = self.skip_nan_guard(self.output(c)?);
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
        let intermediate = inter.kernel.shape()[1];
        let (activation, out_mm) = self.activation(&inter.output, scope)?;
        let out = self.dense(out_mm, &format!("{scope}/output/dense"))?;
        if out.kernel.shape() != [intermediate, hidden] {
            return Err(self.err(
                &self.node_label(out_mm),
                format!(
                    "{scope}: output dense {:?}, expected [{intermediate}, {hidden}]",
                    out.kernel.shape()
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
                self.insert_dense(w, &format!("{scope}/attention/self/{name}"), d)?;
            }
        }
        self.insert_dense(w, &format!("{scope}/attention/output/dense"), attn_out)?;
        insert_norm(w, &format!("{scope}/attention/output/LayerNorm"), attn_norm);
        self.insert_dense(w, &format!("{scope}/intermediate/dense"), inter)?;
        self.insert_dense(w, &format!("{scope}/output/dense"), out)?;
        insert_norm(w, &format!("{scope}/output/LayerNorm"), out_norm);
        Ok(LayerFound {
            output,
            heads,
            activation,
            intermediate,
            eps,
        })
    }

    fn insert_dense(&self, w: &mut Weights, scope: &str, d: Dense) -> Result<()> {
        // ONNX MatMul kernels are already [in, out], Google's layout.
        let name = format!("{scope}/kernel");
        match d.kernel {
            Kernel::F32(t) => w.insert(name, t),
            Kernel::Int8(k) => {
                let import = k.import(&name);
                let source = import.source.clone();
                int8::insert_kernel(w, name, k).map_err(|e| self.err(&source, e.to_string()))?;
                self.report.borrow_mut().kernels.push(import);
            }
        }
        w.insert(format!("{scope}/bias"), d.bias);
        Ok(())
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
            if tanh && d.kernel.shape() == [hidden, hidden] {
                self.insert_dense(w, "bert/pooler/dense", d)?;
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

fn insert_norm(w: &mut Weights, scope: &str, n: Norm) {
    w.insert(format!("{scope}/gamma"), n.gamma);
    w.insert(format!("{scope}/beta"), n.beta);
}
