//! The per-thread side of inference: a [`Context`] owns the back end's executor (threads,
//! scratch) and every buffer a forward pass writes, reused across calls, so steady-state
//! calls of the same or smaller shape allocate nothing; [`Outputs`] views them.

use std::borrow::Cow;

use super::layer::LayerActs;
use crate::backend::{Backend, Cpu, Queries, Rows};

/// Asked between encoder layers whether to stop: returning true ends the pass with
/// [`crate::Error::Cancelled`] (see [`Context::set_abort`]).
pub type AbortHook = Box<dyn FnMut() -> bool + Send>;

/// The optional hook, with a `Debug` that does not try to print a closure.
#[derive(Default)]
pub(crate) struct Abort(Option<AbortHook>);

impl Abort {
    /// Whether the hook asks to stop now.
    pub(crate) fn asks_to_stop(&mut self) -> bool {
        self.0.as_mut().is_some_and(|hook| hook())
    }
}

impl std::fmt::Debug for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

/// Per-thread state: the executor (thread budget and scratch) and all buffers of a forward
/// pass. One context serves one call at a time; create one per thread. Outputs of a call are
/// views into the context, valid until its next call.
pub struct Context<B: Backend = Cpu> {
    pub(crate) exec: B::Exec,
    pub(crate) abort: Abort,
    pub(crate) rows: Rows,
    pub(crate) queries: Queries,
    /// One layer's activations, reused by every layer.
    pub(crate) acts: LayerActs<B>,
    /// Hidden states: `[embedding, layer_0, …]` when all layers are kept, else two buffers
    /// used alternately.
    pub(crate) hidden: Vec<B::Buf>,
    pub(crate) first: B::Buf,
    pub(crate) pooled: B::Buf,
    pub(crate) sentence: B::Buf,
}

impl<B: Backend> std::fmt::Debug for Context<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("exec", &self.exec)
            .field("abort", &self.abort)
            .finish_non_exhaustive()
    }
}

impl Context<Cpu> {
    /// A CPU context whose kernels use `threads` threads (the caller's included); 0 means
    /// all cores. The library never reads environment variables for this.
    pub fn new(threads: usize) -> Context<Cpu> {
        Context::on(&Cpu, threads)
    }
}

impl Default for Context<Cpu> {
    /// All cores.
    fn default() -> Self {
        Context::new(0)
    }
}

impl<B: Backend> Context<B> {
    /// A context on `backend` (its executor with `threads` threads where that applies).
    pub fn on(backend: &B, threads: usize) -> Context<B> {
        Context {
            exec: backend.exec(threads),
            abort: Abort::default(),
            rows: Rows::default(),
            queries: Queries::default(),
            acts: LayerActs::default(),
            hidden: Vec::new(),
            first: B::Buf::default(),
            pooled: B::Buf::default(),
            sentence: B::Buf::default(),
        }
    }

    /// Number of threads the context's kernels use.
    pub fn threads(&self) -> usize {
        B::threads(&self.exec)
    }

    /// Sets (or with `None` removes) the hook the forward pass asks before each encoder
    /// layer whether to stop: a long batch can be abandoned within one layer's time.
    pub fn set_abort(&mut self, hook: Option<AbortHook>) {
        self.abort = Abort(hook);
    }

    /// The executor, for callers that run ops themselves (heads, benchmarks).
    pub fn exec(&mut self) -> &mut B::Exec {
        &mut self.exec
    }
}

/// Results of [`super::BertModel::forward`], borrowed from the context.
#[derive(Debug)]
pub struct Outputs<'a, B: Backend = Cpu> {
    pub(crate) exec: &'a B::Exec,
    pub(crate) batch: usize,
    pub(crate) seq: usize,
    pub(crate) hidden_size: usize,
    pub(crate) num_layers: usize,
    pub(crate) all_layers: bool,
    pub(crate) hidden: &'a [B::Buf],
    pub(crate) pooled: Option<&'a B::Buf>,
}

impl<'a, B: Backend> Outputs<'a, B> {
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn seq(&self) -> usize {
        self.seq
    }
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    fn len(&self) -> usize {
        self.batch * self.seq * self.hidden_size
    }

    fn last_index(&self) -> usize {
        if self.all_layers {
            self.num_layers
        } else {
            self.num_layers % 2
        }
    }
}

impl<'a, B: Backend> Outputs<'a, B> {
    /// [`Outputs::embedding_output`] on any back end (a copy from a device's memory).
    pub fn read_embedding_output(&self) -> Option<Cow<'a, [f32]>> {
        let len = self.len();
        self.all_layers
            .then(|| B::read(self.exec, &self.hidden[0], len))
    }

    /// [`Outputs::encoder_layer`] on any back end.
    pub fn read_encoder_layer(&self, layer: usize) -> Option<Cow<'a, [f32]>> {
        if layer + 1 == self.num_layers {
            return Some(self.read_sequence_output());
        }
        (self.all_layers && layer < self.num_layers)
            .then(|| B::read(self.exec, &self.hidden[layer + 1], self.len()))
    }

    /// [`Outputs::sequence_output`] on any back end.
    pub fn read_sequence_output(&self) -> Cow<'a, [f32]> {
        B::read(self.exec, &self.hidden[self.last_index()], self.len())
    }

    /// [`Outputs::pooled_output`] on any back end.
    pub fn read_pooled_output(&self) -> Option<Cow<'a, [f32]>> {
        let n = self.batch * self.hidden_size;
        self.pooled.map(|p| B::read(self.exec, p, n))
    }
}

impl<'a> Outputs<'a, Cpu> {
    /// `get_embedding_output()`: `[batch, seq, hidden]`; `None` unless all layers were kept.
    pub fn embedding_output(&self) -> Option<&'a [f32]> {
        let len = self.len();
        self.all_layers.then(|| &self.hidden[0][..len])
    }

    /// `get_all_encoder_layers()[layer]`: `[batch, seq, hidden]`; `None` unless all layers
    /// were kept (the last one is always available as [`Outputs::sequence_output`]).
    pub fn encoder_layer(&self, layer: usize) -> Option<&'a [f32]> {
        let len = self.len();
        if layer + 1 == self.num_layers {
            return Some(self.sequence_output());
        }
        (self.all_layers && layer < self.num_layers).then(|| &self.hidden[layer + 1][..len])
    }

    /// `get_sequence_output()`: the last layer, `[batch, seq, hidden]`.
    pub fn sequence_output(&self) -> &'a [f32] {
        &self.hidden[self.last_index()][..self.len()]
    }

    /// `get_pooled_output()`: `[batch, hidden]`; `None` when the checkpoint has no pooler.
    pub fn pooled_output(&self) -> Option<&'a [f32]> {
        self.pooled.map(|p| &p[..self.batch * self.hidden_size])
    }
}
