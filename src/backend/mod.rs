//! Back ends: where BERT's arithmetic runs.
//!
//! The model (`src/model`, `src/heads`) never does arithmetic itself: it calls the ops of a
//! [`Backend`], over buffers that live on that back end's device. [`Cpu`] is the f32
//! reference every other path is checked against (with f16 and int8 weight storage); a GPU
//! back end implements the same trait with its own buffers and keeps activations resident
//! on its device from the embedding lookup to the head.
//!
//! What a back end provides:
//! - storage: [`Backend::Buf`] (f32 activations, gradients, trainable parameters),
//!   [`Backend::Matrix`] (a dense kernel prepared for its products from the loaders'
//!   back-end-neutral weights: f32, f16 or int8 values + scales), [`Backend::Table`] (the
//!   word embeddings), and [`Backend::Exec`], the per-context executor (threads and scratch
//!   on the CPU), which owns every piece of per-call scratch;
//! - the forward ops of the encoder and the heads (embedding lookup, dense with fused bias
//!   and activation, attention, residual add + LayerNorm, gathers, poolings, L2 norm, soft-max
//!   cross-entropy), each able to record what its backward pass needs;
//! - their backward ops and the optimizer update, so a model trains where it runs.
//!
//! Shapes are row-major; "rows" are those of [`Rows`] (all sequences of a batch end to end)
//! or of [`Queries`]. The arguments' meaning is in [`ops`].

pub mod cpu;
pub mod int8;
pub mod ops;
mod pool;
mod storage;
#[cfg(feature = "vulkan")]
pub mod vulkan;

use std::borrow::Cow;
use std::fmt::Debug;

pub use cpu::Cpu;
pub use ops::{
    Activation, AdamStep, Dropout, Heads, Layout, Norm, NormRecord, Queries, Reduce, Rows, Span,
    View, Weight,
};
pub use pool::Pool;
pub use storage::WeightBytes;
#[cfg(feature = "vulkan")]
pub use vulkan::Vulkan;

use crate::weights::QuantizedTensor;
use crate::Result;

/// A dense kernel `[in, out]` as a loader holds it, before a back end prepares it.
#[derive(Debug, Clone, Copy)]
pub enum MatrixSource<'a> {
    /// f32 values, `[in, out]` or `[out, in]`.
    F32(&'a [f32], Layout),
    /// f16 or int8 storage (`[in, out]`).
    Quantized(&'a QuantizedTensor),
}

/// The word-embedding table `[vocab, hidden]` as a loader holds it.
#[derive(Debug, Clone, Copy)]
pub enum TableSource<'a> {
    F32(&'a [f32]),
    /// f16 values or int8 rows with one scale per row.
    Quantized(&'a QuantizedTensor),
}

/// A word-embedding table as an op sees it.
pub enum TableRef<'a, B: Backend> {
    /// Prepared by the back end (f32, f16 or int8 rows): inference.
    Prepared(&'a B::Table),
    /// Plain f32 values `[vocab, hidden]`, as training keeps and updates them.
    Plain(&'a B::Buf),
}

/// The ops BERT runs, on one kind of device. See the module documentation.
///
/// Buffers passed as outputs are grown by the op as needed (their previous contents are
/// ignored unless the op says it accumulates). Ops may be asynchronous on a device: results
/// are complete when [`Backend::read`] returns them.
pub trait Backend: Clone + Debug + Send + Sync + 'static {
    /// f32 values on the device.
    type Buf: Debug + Default + Send + Sync;
    /// A dense kernel prepared for products.
    type Matrix: Debug + Send + Sync;
    /// A word-embedding table prepared for lookups.
    type Table: Debug + Send + Sync;
    /// Per-context execution state: threads, queues, scratch.
    type Exec: Debug + Send;

    /// What the back end runs on, for logs (`"cpu (AVX-512)"`).
    fn describe(&self) -> String;
    /// A context's executor using `threads` threads where that means something (0: all).
    fn exec(&self, threads: usize) -> Self::Exec;
    /// The threads an executor uses.
    fn threads(ex: &Self::Exec) -> usize;

    /// The first error the executor's ops met since the last call, after running every op
    /// recorded so far (ops return no errors: a device's may fail when they run, e.g. out of
    /// memory, or be missing there). The CPU's ops cannot fail: `Ok` always.
    fn status(ex: &Self::Exec) -> Result<()> {
        let _ = ex;
        Ok(())
    }

    // ---- Storage -------------------------------------------------------------------------

    /// A kernel `[in_dim, out_dim]` prepared for [`Weight::Prepared`] products.
    fn matrix(&self, src: MatrixSource<'_>, in_dim: usize, out_dim: usize) -> Result<Self::Matrix>;
    /// A word-embedding table `[rows, width]`.
    fn table(&self, src: TableSource<'_>, rows: usize, width: usize) -> Result<Self::Table>;
    /// The table's rows (of `width` values) as plain f32 (the masked LM's output layer
    /// reads it whole).
    fn table_values(&self, table: &Self::Table, width: usize) -> Result<Self::Buf>;
    /// Which storage a prepared kernel has.
    fn matrix_dtype(m: &Self::Matrix) -> crate::weights::DType;
    /// A buffer holding `values`.
    fn upload(&self, values: &[f32]) -> Self::Buf;
    /// Number of values a buffer holds.
    fn len(buf: &Self::Buf) -> usize;
    /// `buf[..n]` to the host (borrowed where the buffer is host memory). Takes the executor
    /// shared, so results can be read while a model or trainer is only borrowed.
    fn read<'b>(ex: &Self::Exec, buf: &'b Self::Buf, n: usize) -> Cow<'b, [f32]>;
    /// Replaces the contents with `values`.
    fn write(ex: &mut Self::Exec, buf: &mut Self::Buf, values: &[f32]);
    /// Makes `buf` hold `n` values, all `value`.
    fn fill(ex: &mut Self::Exec, buf: &mut Self::Buf, n: usize, value: f32);

    // ---- Forward ops ---------------------------------------------------------------------

    /// `out[r] = word[ids[r]] + token_type[segments[r]] + position[positions[r]]` for every
    /// row of `rows`: `[rows, width]` (`modeling.py: embedding_lookup` +
    /// `embedding_postprocessor` before its LayerNorm).
    fn embed(
        ex: &mut Self::Exec,
        word: TableRef<'_, Self>,
        token_type: &Self::Buf,
        position: &Self::Buf,
        rows: &Rows,
        width: usize,
        out: &mut Self::Buf,
    );

    /// `out[rows, out_dim] = act(x[rows, in_dim] · W + bias)`.
    #[allow(clippy::too_many_arguments)]
    fn dense(
        ex: &mut Self::Exec,
        w: Weight<'_, Self>,
        in_dim: usize,
        out_dim: usize,
        bias: Option<&Self::Buf>,
        x: View<'_, Self>,
        rows: usize,
        out: &mut Self::Buf,
        act: Activation,
    );

    /// `out = act(x)`, `[n]`.
    fn activate(ex: &mut Self::Exec, x: &Self::Buf, n: usize, act: Activation, out: &mut Self::Buf);

    /// `x *= mask` over `x[..n]` (mask element `i` for value `i`).
    fn dropout(ex: &mut Self::Exec, x: &mut Self::Buf, n: usize, mask: Dropout);

    /// Residual add + LayerNorm, in place over `x: [rows, width]`:
    /// `x = LayerNorm(drop(x) + residual) · gamma + beta` (`residual` `[rows, width]`, or
    /// none for the embeddings). Records `x̂` and `1/σ` when asked.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm(
        ex: &mut Self::Exec,
        x: &mut Self::Buf,
        rows: usize,
        width: usize,
        residual: Option<&Self::Buf>,
        drop: Option<Dropout>,
        norm: Norm<'_, Self>,
        record: Option<&mut NormRecord<Self>>,
    );

    /// Multi-head self-attention (`modeling.py: attention_layer`): per sequence and head,
    /// `softmax(q kᵀ / sqrt(size) + mask_bias[key]) · v` into `out: [queries, heads · size]`.
    /// `q` has one row per query row (every row of `rows`, or those of `queries`), `k` and `v`
    /// one per row of `rows`. With `record`, the soft-max outputs (before dropout) are kept
    /// for [`Backend::attention_backward`] in a layout of the back end's choosing; `drop`
    /// applies to the probabilities before the product with `v`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        ex: &mut Self::Exec,
        q: View<'_, Self>,
        k: View<'_, Self>,
        v: View<'_, Self>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        out: &mut Self::Buf,
        record: Option<&mut Self::Buf>,
        drop: Option<Dropout>,
    );

    /// `out[i] = x[rows[i]]`, rows of `width`.
    fn gather(ex: &mut Self::Exec, x: &Self::Buf, width: usize, rows: &[u32], out: &mut Self::Buf);

    /// `out[cols, rows] = x[rows, cols]ᵀ`.
    fn transpose(ex: &mut Self::Exec, x: &Self::Buf, rows: usize, cols: usize, out: &mut Self::Buf);

    /// One vector per sequence of `rows`: `out: [sequences, width]`.
    fn reduce(
        ex: &mut Self::Exec,
        x: &Self::Buf,
        rows: &Rows,
        width: usize,
        how: Reduce,
        out: &mut Self::Buf,
    );

    /// Scales each row of `x[..rows * width]` to unit L2 norm, `x / max(|x|, 1e-12)`.
    fn l2_normalize(ex: &mut Self::Exec, x: &mut Self::Buf, rows: usize, width: usize);

    /// Soft-max cross-entropy of each row of `logits: [labels.len(), width]` against its
    /// label: returns `−log_softmax(logits)[label]` per row (f64); writes the log-probabilities
    /// when asked, and `dlogits = (softmax − onehot(label)) · scales[row]` when asked.
    fn softmax_cross_entropy(
        ex: &mut Self::Exec,
        logits: &Self::Buf,
        width: usize,
        labels: &[u32],
        log_probs: Option<&mut Self::Buf>,
        dlogits: Option<(&mut Self::Buf, &[f32])>,
    ) -> Vec<f64>;

    // ---- Backward ops --------------------------------------------------------------------

    /// `dw += xᵀ · dy` for a plain kernel `dw` of `layout` (`[in, out]` or `[out, in]`), over
    /// `rows` rows of `x` (`in` values) and `dy` (`out` values).
    #[allow(clippy::too_many_arguments)]
    fn dense_weight_grad(
        ex: &mut Self::Exec,
        x: View<'_, Self>,
        dy: View<'_, Self>,
        rows: usize,
        in_dim: usize,
        out_dim: usize,
        layout: Layout,
        dw: &mut Self::Buf,
    );

    /// `dx[rows, in] = dy · wᵀ` (or `dx += …` when `accumulate`) for a plain kernel.
    #[allow(clippy::too_many_arguments)]
    fn dense_input_grad(
        ex: &mut Self::Exec,
        w: &Self::Buf,
        layout: Layout,
        in_dim: usize,
        out_dim: usize,
        dy: View<'_, Self>,
        rows: usize,
        dx: &mut Self::Buf,
        accumulate: bool,
    );

    /// `db += Σ_r dy[r]` over `rows` rows of `width` values.
    fn column_sums(
        ex: &mut Self::Exec,
        dy: View<'_, Self>,
        rows: usize,
        width: usize,
        db: &mut Self::Buf,
    );

    /// `d *= act'(x)` over `[n]`, `x` the activation's input (for [`Activation::Tanh`], its
    /// output).
    fn activation_backward(
        ex: &mut Self::Exec,
        x: &Self::Buf,
        n: usize,
        act: Activation,
        d: &mut Self::Buf,
    );

    /// Backward of [`Backend::layer_norm`] from `dy: [rows, width]` and its record:
    /// `dgamma += Σ dy·x̂`, `dbeta += Σ dy`, `dsum` = the gradient of the normalised sum
    /// (that of the residual); with `branch`, also the gradient of the dropped branch,
    /// `dsum · mask`, into `branch.1`.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        ex: &mut Self::Exec,
        dy: &Self::Buf,
        rows: usize,
        width: usize,
        record: &NormRecord<Self>,
        gamma: &Self::Buf,
        dgamma: &mut Self::Buf,
        dbeta: &mut Self::Buf,
        dsum: &mut Self::Buf,
        branch: Option<(Option<Dropout>, &mut Self::Buf)>,
    );

    /// Backward of [`Backend::attention`] (same arguments, and its record): writes
    /// `dq: [queries, h]`, `dk`, `dv`: `[rows, h]` from `dout: [queries, h]`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        ex: &mut Self::Exec,
        q: View<'_, Self>,
        k: View<'_, Self>,
        v: View<'_, Self>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        record: &Self::Buf,
        drop: Option<Dropout>,
        dout: &Self::Buf,
        dq: &mut Self::Buf,
        dk: &mut Self::Buf,
        dv: &mut Self::Buf,
    );

    /// `dx[rows[i]] += d[i]`, rows of `width`.
    fn scatter_add(
        ex: &mut Self::Exec,
        d: &Self::Buf,
        width: usize,
        rows: &[u32],
        dx: &mut Self::Buf,
    );

    /// Backward of [`Backend::embed`]: adds each row of `dy` into the three tables' gradients
    /// and returns `Σ_rows ‖dy[r]‖²` (f64), the word embeddings' share of the global norm as
    /// TensorFlow counts the `IndexedSlices` gradient of `tf.gather` (one row per occurrence).
    #[allow(clippy::too_many_arguments)]
    fn embed_backward(
        ex: &mut Self::Exec,
        dy: &Self::Buf,
        rows: &Rows,
        width: usize,
        dword: &mut Self::Buf,
        dtoken_type: &mut Self::Buf,
        dposition: &mut Self::Buf,
    ) -> f64;

    // ---- Optimizer -----------------------------------------------------------------------

    /// `x *= alpha`, then `Σ x²` in f64 (summed in an order that does not depend on the
    /// thread count).
    fn scale_and_square_sum(ex: &mut Self::Exec, x: &mut Self::Buf, alpha: f32) -> f64;

    /// One AdamW update of `value` from `grad` (times `step.grad_scale`), with its slots `m`
    /// and `v`; leaves `grad` zeroed for the next accumulation.
    fn adamw(
        ex: &mut Self::Exec,
        value: &mut Self::Buf,
        grad: &mut Self::Buf,
        m: &mut Self::Buf,
        v: &mut Self::Buf,
        step: &AdamStep,
    );
}
