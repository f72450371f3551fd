//! modeling.py: `transformer_model`: the stack of layers, forward and backward, with the
//! record a training pass keeps (every layer's activations, or under gradient checkpointing
//! only each layer's input, the layer being recomputed in the backward pass).

use super::layer::{Layer, LayerActs, LayerDrops, LayerGrads};
use crate::backend::{Backend, Dropout, NormRecord, Queries, Rows};
use crate::config::BertConfig;
use crate::weights::Weights;
use crate::Result;

/// `bert/encoder/layer_0 .. layer_{L-1}`.
pub struct Encoder<B: Backend> {
    pub(crate) layers: Vec<Layer<B>>,
}

super::param::params!(Encoder { "" => layers });

impl<B: Backend> Encoder<B> {
    pub fn load(b: &B, w: &Weights, c: &BertConfig, trainable: bool) -> Result<Self> {
        let layers = (0..c.num_hidden_layers)
            .map(|l| Layer::load(b, w, c, l, trainable))
            .collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }
}

/// Where a training pass drops units: after the embeddings, and in every layer. Drawn by the
/// trainer (`train::dropout`) in this order, so a run is reproducible for a seed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drops {
    pub embeddings: Option<Dropout>,
    pub layers: Vec<LayerDrops>,
}

/// What a training forward pass keeps for its backward pass, reused from step to step (a
/// steady run allocates nothing).
pub struct Tape<B: Backend> {
    checkpointing: bool,
    pub(crate) drops: Drops,
    pub(crate) emb_norm: NormRecord<B>,
    /// `[L + 1]`: the input of every layer `[R, h]`, then the last layer's output `[Rq, h]`.
    pub(crate) hidden: Vec<B::Buf>,
    /// One per layer, or a single reused one under checkpointing.
    acts: Vec<LayerActs<B>>,
    grads: LayerGrads<B>,
    dy: B::Buf,
    dx: B::Buf,
}

impl<B: Backend> std::fmt::Debug for Tape<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tape(checkpointing: {})", self.checkpointing)
    }
}

impl<B: Backend> Tape<B> {
    /// An empty tape; with `checkpointing`, only each layer's input is kept and the layer
    /// recomputed in the backward pass (same gradients: the recomputation repeats the same
    /// operations with the same dropout masks; activation memory drops from every layer's to
    /// one layer's, for about one more forward pass of compute).
    pub fn new(checkpointing: bool) -> Tape<B> {
        Tape {
            checkpointing,
            drops: Drops::default(),
            emb_norm: NormRecord::default(),
            hidden: Vec::new(),
            acts: Vec::new(),
            grads: LayerGrads::default(),
            dy: B::Buf::default(),
            dx: B::Buf::default(),
        }
    }

    pub fn checkpointing(&self) -> bool {
        self.checkpointing
    }

    /// The last layer's output rows `[Rq, h]` of the last forward pass.
    pub fn last(&self) -> &B::Buf {
        self.hidden.last().expect("a forward pass ran")
    }

    fn prepare(&mut self, layers: usize) {
        let sets = if self.checkpointing { 1 } else { layers.max(1) };
        self.acts.truncate(sets);
        self.acts.resize_with(sets, LayerActs::default);
        self.hidden.resize_with(layers + 1, B::Buf::default);
        self.drops.layers.resize(layers, LayerDrops::default());
    }

    fn acts_index(&self, l: usize) -> usize {
        if self.checkpointing {
            0
        } else {
            l
        }
    }
}

/// `(&v[src], &mut v[dst])` for `src != dst`.
pub(crate) fn pair_mut<T>(v: &mut [T], src: usize, dst: usize) -> (&T, &mut T) {
    if src < dst {
        let (a, b) = v.split_at_mut(dst);
        (&a[src], &mut b[0])
    } else {
        let (a, b) = v.split_at_mut(src);
        (&b[0], &mut a[dst])
    }
}

impl<B: Backend> super::BertModel<B> {
    /// Training forward pass of the embeddings and the encoder over `rows`, with the dropout
    /// masks of `tape.drops`, keeping what [`Self::backward`] reads; the last layer
    /// computes only `queries` (the rows its head reads), left in [`Tape::last`].
    pub(crate) fn forward_train(
        &self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        tape: &mut Tape<B>,
    ) {
        let layers = &self.encoder.layers;
        let n = layers.len();
        tape.prepare(n);
        let h = self.config.hidden_size;
        let (drop, norm) = (tape.drops.embeddings, &mut tape.emb_norm);
        self.embeddings
            .forward(ex, rows, &mut tape.hidden[0], Some(norm), drop);
        for (l, layer) in layers.iter().enumerate() {
            let q = if l + 1 == n { queries } else { None };
            let i = tape.acts_index(l);
            let (x, out) = pair_mut(&mut tape.hidden, l, l + 1);
            let drops = &tape.drops.layers[l];
            layer.forward(ex, (rows, q), x, &mut tape.acts[i], Some(drops), out);
        }
        if let (0, Some(qs)) = (n, queries) {
            // No layer: the head reads its rows of the embedding output.
            let mut last = B::Buf::default();
            B::gather(ex, &tape.hidden[0], h, &qs.rows, &mut last);
            tape.hidden.push(last);
        }
    }

    /// Backward pass of [`Self::forward_train`] from `dlast` (the gradient of
    /// [`Tape::last`]): adds every parameter's gradient.
    pub(crate) fn backward(
        &mut self,
        ex: &mut B::Exec,
        (rows, queries): (&Rows, Option<&Queries>),
        tape: &mut Tape<B>,
        dlast: &B::Buf,
    ) {
        let h = self.config.hidden_size;
        let n = self.encoder.layers.len();
        let Tape {
            checkpointing,
            drops,
            emb_norm,
            hidden,
            acts,
            grads,
            dy,
            dx,
        } = tape;
        for l in (0..n).rev() {
            let layer = &mut self.encoder.layers[l];
            let q = if l + 1 == n { queries } else { None };
            let i = if *checkpointing { 0 } else { l };
            if *checkpointing && l + 1 != n {
                // Recompute the layer's activations from its input (same masks); its output,
                // already known, goes to `dx`, which the backward pass then overwrites.
                layer.forward(
                    ex,
                    (rows, q),
                    &hidden[l],
                    &mut acts[0],
                    Some(&drops.layers[l]),
                    dx,
                );
            }
            let d = drops.layers[l];
            let src: &B::Buf = if l + 1 == n { dlast } else { dy };
            layer.backward(ex, (rows, q), &hidden[l], &mut acts[i], &d, src, dx, grads);
            std::mem::swap(dx, dy);
        }
        if n == 0 {
            // No layer: the head's rows of the embedding output.
            let all: Vec<u32>;
            let idx = match queries {
                Some(qs) => &qs.rows,
                None => {
                    all = (0..rows.len() as u32).collect();
                    &all
                }
            };
            B::fill(ex, dy, rows.len() * h, 0.0);
            B::scatter_add(ex, dlast, h, idx, dy);
        }
        self.embeddings
            .backward(ex, rows, dy, emb_norm, drops.embeddings, dx);
    }
}
