//! [`Vulkan`]'s implementation of [`Backend`]: storage, and each op handed to its kernel
//! family's module. An op that fails keeps its error in the executor
//! ([`Backend::status`]); ops after it still record, and a read after a failure gives NaN.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use super::buffer::VkBuf;
use super::dense::{KernelView, VkMatrix};
use super::exec::VulkanExec;
use super::{attention, attention_train, dense, grads, loss, norm, optim, rows, Vulkan};
use crate::backend::cpu::Table;
use crate::backend::{
    Activation, AdamStep, Backend, Dropout, Heads, Layout, MatrixSource, Norm, NormRecord, Queries,
    Reduce, Rows, TableRef, TableSource, View, Weight,
};
use crate::weights::{DType, QuantizedTensor};
use crate::{Error, Result};

/// The word embeddings on the device `[rows, width]`, in chunks of consecutive rows that each
/// fit one shader binding (`maxStorageBufferRange` is 128 MiB on some devices: a large
/// vocabulary exceeds it). f32 values, or for an f16 table its halves, two per 32-bit word
/// as the dense kernels hold theirs (half the memory; the lookup shader widens the row it
/// reads); an int8 table is widened to f32 while uploading.
#[derive(Clone, Debug)]
pub struct VkTable {
    /// `(first row, rows, values)` per chunk.
    chunks: Vec<(usize, usize, VkBuf)>,
    f16: bool,
    /// An f16 table widened to f32 for [`Backend::table_values`] (the masked LM's output
    /// layer reads the table whole as f32): made on first use, then kept.
    widened: Arc<OnceLock<VkBuf>>,
}

impl VkTable {
    /// How the device holds the values: [`DType::F16`] (halves) or [`DType::F32`].
    pub fn dtype(&self) -> DType {
        if self.f16 {
            DType::F16
        } else {
            DType::F32
        }
    }

    /// Bytes of device memory the table's values take.
    pub fn device_bytes(&self) -> usize {
        self.chunks.iter().map(|(_, _, b)| 4 * b.len).sum()
    }
}

/// IEEE halves (little-endian bytes) as 32-bit words of two, element 2k in the low half, an
/// odd count's last word padded with a zero half. The bits travel untouched (a copy, never
/// arithmetic) in an f32 buffer, which the shaders read as `u32`.
fn halves_as_words(b: &[u8]) -> Vec<f32> {
    b.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            f32::from_bits(u32::from_le_bytes(w))
        })
        .collect()
}

impl Backend for Vulkan {
    type Buf = VkBuf;
    type Matrix = VkMatrix;
    type Table = VkTable;
    type Exec = VulkanExec;

    fn describe(&self) -> String {
        format!("vulkan ({})", self.gpu.name)
    }

    fn exec(&self, _threads: usize) -> VulkanExec {
        VulkanExec::new(self.gpu.clone())
    }

    fn threads(_: &VulkanExec) -> usize {
        1
    }

    fn status(ex: &VulkanExec) -> Result<()> {
        super::status(ex)
    }

    fn matrix(&self, src: MatrixSource<'_>, in_dim: usize, out_dim: usize) -> Result<VkMatrix> {
        let n = in_dim * out_dim;
        if let MatrixSource::Quantized(q @ QuantizedTensor::F16 { bytes, .. }) = src {
            // Kept as halves, two per word (little-endian: element 2k in the low half).
            let b = bytes.as_bytes();
            if b.len() != 2 * n {
                return Err(Error::Shape(format!(
                    "an f16 kernel of {} bytes for [{in_dim}, {out_dim}]",
                    b.len()
                )));
            }
            return Ok(VkMatrix {
                values: self.gpu.upload_now(&halves_as_words(b))?,
                f16: true,
                source: q.dtype(),
            });
        }
        let (values, source) = match src {
            MatrixSource::F32(v, Layout::InOut) => (Cow::Borrowed(v), DType::F32),
            MatrixSource::F32(v, Layout::OutIn) => {
                let mut t = vec![0.0; v.len()];
                for (o, row) in v.chunks_exact(in_dim.max(1)).enumerate() {
                    for (i, &x) in row.iter().enumerate() {
                        t[i * out_dim + o] = x;
                    }
                }
                (Cow::Owned(t), DType::F32)
            }
            MatrixSource::Quantized(q) => (Cow::Owned(q.to_f32()?), q.dtype()),
        };
        if values.len() != n {
            return Err(Error::Shape(format!(
                "a kernel of {} values for [{in_dim}, {out_dim}]",
                values.len()
            )));
        }
        Ok(VkMatrix {
            values: self.gpu.upload_now(&values)?,
            f16: false,
            source,
        })
    }

    fn table(&self, src: TableSource<'_>, rows: usize, width: usize) -> Result<VkTable> {
        let w = width.max(1);
        if let TableSource::Quantized(QuantizedTensor::F16 { bytes, .. }) = src {
            let b = bytes.as_bytes();
            if b.len() != 2 * rows * width {
                return Err(Error::Shape(format!(
                    "an f16 table of {} bytes for [{rows}, {width}]",
                    b.len()
                )));
            }
            // Chunks of whole rows, each packed from its own first half.
            let max_rows = (self.binding_limit() / 2 / w as u64).max(1) as usize;
            let chunks = b
                .chunks(2 * max_rows * w)
                .enumerate()
                .map(|(i, part)| {
                    let buf = self.gpu.upload_now(&halves_as_words(part))?;
                    Ok((i * max_rows, part.len() / 2 / w, buf))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(VkTable {
                chunks,
                f16: true,
                widened: Arc::default(),
            });
        }
        // The CPU table decodes int8 rows to f32 rows.
        let values = match src {
            TableSource::F32(v) => Cow::Borrowed(v),
            TableSource::Quantized(q) => {
                Cow::Owned(Table::new(None, Some(q), rows, width)?.values(width))
            }
        };
        if values.len() != rows * width {
            return Err(Error::Shape(format!(
                "a table of {} values for [{rows}, {width}]",
                values.len()
            )));
        }
        let max_rows = (self.binding_limit() / 4 / w as u64).max(1) as usize;
        let chunks = values
            .chunks(max_rows * w)
            .enumerate()
            .map(|(i, part)| Ok((i * max_rows, part.len() / w, self.gpu.upload_now(part)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(VkTable {
            chunks,
            f16: false,
            widened: Arc::default(),
        })
    }

    fn table_values(&self, table: &VkTable, width: usize) -> Result<VkBuf> {
        let [(_, rows, whole)] = table.chunks.as_slice() else {
            return Err(Error::Unsupported(
                "vulkan: the word embeddings exceed one buffer binding: a masked LM head over \
                 them is not supported on this device"
                    .into(),
            ));
        };
        if !table.f16 {
            return Ok(whole.clone());
        }
        if let Some(b) = table.widened.get() {
            return Ok(b.clone());
        }
        let n = rows * width;
        if 4 * n as u64 > self.binding_limit() {
            return Err(Error::Unsupported(
                "vulkan: the f16 word embeddings widened to f32 exceed one buffer binding: a \
                 masked LM head over them is not supported on this device"
                    .into(),
            ));
        }
        // Read back once and widened on the host: a pre-training head's first forward pass.
        let ex = self.exec(1);
        let words = Vulkan::read(&ex, whole, whole.len);
        let values: Vec<f32> = words
            .iter()
            .flat_map(|w| {
                let bits = w.to_bits();
                [bits as u16, (bits >> 16) as u16].map(|h| half::f16::from_bits(h).to_f32())
            })
            .take(n)
            .collect();
        super::status(&ex)?;
        let buf = self.gpu.upload_now(&values)?;
        Ok(table.widened.get_or_init(|| buf).clone())
    }

    fn matrix_dtype(m: &VkMatrix) -> DType {
        m.source
    }

    fn upload(&self, values: &[f32]) -> VkBuf {
        // No error path here: a failed upload leaves an empty buffer, which the first op
        // that reads it reports.
        self.gpu.upload_now(values).unwrap_or_default()
    }

    fn len(buf: &VkBuf) -> usize {
        buf.len
    }

    fn read<'b>(ex: &VulkanExec, buf: &'b VkBuf, n: usize) -> Cow<'b, [f32]> {
        let values = (|| -> Result<Vec<f32>> {
            if n == 0 {
                return Ok(Vec::new());
            }
            let src = ex.input(buf, n, "the buffer read")?;
            let host = ex.gpu.readback_buffer(n)?;
            ex.copy(src.slice(0..n as u64), host.clone());
            ex.flush()?;
            let guard = host
                .read()
                .map_err(|e| super::device::vk_error("reading back", e))?;
            Ok(guard[..n].to_vec())
        })();
        match values {
            Ok(v) if !ex.failed() => Cow::Owned(v),
            Ok(_) => Cow::Owned(vec![f32::NAN; n]),
            Err(e) => {
                ex.fail(e);
                Cow::Owned(vec![f32::NAN; n])
            }
        }
    }

    fn write(ex: &mut VulkanExec, buf: &mut VkBuf, values: &[f32]) {
        ex.attempt(|| {
            let dst = ex.grow(buf, values.len())?;
            buf.len = values.len();
            if values.is_empty() {
                return Ok(());
            }
            let src = ex.gpu.host_buffer(values, 0.0)?;
            ex.copy(src, dst.slice(0..values.len() as u64));
            Ok(())
        });
    }

    fn fill(ex: &mut VulkanExec, buf: &mut VkBuf, n: usize, value: f32) {
        ex.attempt(|| {
            rows::fill(ex, buf, n, value)?;
            buf.len = n;
            Ok(())
        });
    }

    fn embed(
        ex: &mut VulkanExec,
        word: TableRef<'_, Vulkan>,
        token_type: &VkBuf,
        position: &VkBuf,
        r: &Rows,
        width: usize,
        out: &mut VkBuf,
    ) {
        ex.attempt(|| match word {
            TableRef::Prepared(t) => {
                let chunks: Vec<(usize, usize, &VkBuf)> =
                    t.chunks.iter().map(|(s, n, b)| (*s, *n, b)).collect();
                let word = rows::Words {
                    chunks: &chunks,
                    f16: t.f16,
                };
                rows::embed(ex, (word, token_type, position), r, width, out)
            }
            TableRef::Plain(b) => {
                let word = rows::Words {
                    chunks: &[(0, b.len / width.max(1), b)],
                    f16: false,
                };
                rows::embed(ex, (word, token_type, position), r, width, out)
            }
        });
    }

    fn dense(
        ex: &mut VulkanExec,
        w: Weight<'_, Vulkan>,
        in_dim: usize,
        out_dim: usize,
        bias: Option<&VkBuf>,
        x: View<'_, Vulkan>,
        rows: usize,
        out: &mut VkBuf,
        act: Activation,
    ) {
        ex.attempt(|| {
            let dims = (in_dim, out_dim);
            let kernel = match w {
                Weight::Prepared(m) => KernelView::prepared(ex, m, dims)?,
                Weight::Plain(b, layout) => KernelView::new(ex, b, layout, dims)?,
            };
            dense::dense(ex, kernel, dims, bias, x, rows, out, act)
        });
    }

    fn activate(ex: &mut VulkanExec, x: &VkBuf, n: usize, act: Activation, out: &mut VkBuf) {
        ex.attempt(|| rows::activate(ex, x, n, act, out));
    }

    fn dropout(ex: &mut VulkanExec, x: &mut VkBuf, n: usize, mask: Dropout) {
        ex.attempt(|| grads::dropout(ex, x, n, mask));
    }

    fn layer_norm(
        ex: &mut VulkanExec,
        x: &mut VkBuf,
        rows: usize,
        width: usize,
        residual: Option<&VkBuf>,
        drop: Option<Dropout>,
        n: Norm<'_, Vulkan>,
        record: Option<&mut NormRecord<Vulkan>>,
    ) {
        let params = (n.gamma, n.beta, n.eps);
        ex.attempt(|| match (record, drop) {
            (None, None) => norm::layer_norm(ex, x, (rows, width), residual, params),
            (record, drop) => {
                // Dropout without a record (not what the trainer asks) records into scratch.
                let mut scratch = NormRecord::default();
                let r = record.unwrap_or(&mut scratch);
                let rec = (&mut r.xhat, &mut r.rstd);
                norm::layer_norm_train(ex, x, (rows, width), (residual, drop), params, rec)
            }
        });
    }

    fn attention(
        ex: &mut VulkanExec,
        q: View<'_, Vulkan>,
        k: View<'_, Vulkan>,
        v: View<'_, Vulkan>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        out: &mut VkBuf,
        record: Option<&mut VkBuf>,
        drop: Option<Dropout>,
    ) {
        ex.attempt(|| match (record, drop) {
            (None, None) => attention::attention(ex, (q, k, v), rows, queries, heads, out),
            (record, drop) => {
                let mut scratch = VkBuf::default();
                let rec = record.unwrap_or(&mut scratch);
                attention_train::forward(ex, (q, k, v), rows, queries, heads, out, rec, drop)
            }
        });
    }

    fn gather(ex: &mut VulkanExec, x: &VkBuf, width: usize, r: &[u32], out: &mut VkBuf) {
        ex.attempt(|| rows::gather(ex, x, width, r, out));
    }

    fn transpose(ex: &mut VulkanExec, x: &VkBuf, r: usize, cols: usize, out: &mut VkBuf) {
        ex.attempt(|| rows::transpose(ex, x, r, cols, out));
    }

    fn reduce(
        ex: &mut VulkanExec,
        x: &VkBuf,
        r: &Rows,
        width: usize,
        how: Reduce,
        out: &mut VkBuf,
    ) {
        ex.attempt(|| rows::reduce(ex, x, r, width, how, out));
    }

    fn l2_normalize(ex: &mut VulkanExec, x: &mut VkBuf, r: usize, width: usize) {
        ex.attempt(|| rows::l2_normalize(ex, x, r, width));
    }

    fn softmax_cross_entropy(
        ex: &mut VulkanExec,
        logits: &VkBuf,
        width: usize,
        labels: &[u32],
        log_probs: Option<&mut VkBuf>,
        dlogits: Option<(&mut VkBuf, &[f32])>,
    ) -> Vec<f64> {
        loss::softmax_cross_entropy(ex, logits, width, labels, log_probs, dlogits).unwrap_or_else(
            |e| {
                ex.fail(e);
                vec![f64::NAN; labels.len()]
            },
        )
    }

    fn dense_weight_grad(
        ex: &mut VulkanExec,
        x: View<'_, Vulkan>,
        dy: View<'_, Vulkan>,
        rows: usize,
        in_dim: usize,
        out_dim: usize,
        layout: Layout,
        dw: &mut VkBuf,
    ) {
        let dims = (rows, in_dim, out_dim);
        ex.attempt(|| grads::dense_weight_grad(ex, x, dy, dims, layout, dw));
    }

    fn dense_input_grad(
        ex: &mut VulkanExec,
        w: &VkBuf,
        layout: Layout,
        in_dim: usize,
        out_dim: usize,
        dy: View<'_, Vulkan>,
        rows: usize,
        dx: &mut VkBuf,
        accumulate: bool,
    ) {
        let dims = (in_dim, out_dim);
        ex.attempt(|| grads::dense_input_grad(ex, w, layout, dims, dy, rows, dx, accumulate));
    }

    fn column_sums(
        ex: &mut VulkanExec,
        dy: View<'_, Vulkan>,
        rows: usize,
        width: usize,
        db: &mut VkBuf,
    ) {
        ex.attempt(|| grads::column_sums(ex, dy, None, (rows, width), db));
    }

    fn activation_backward(
        ex: &mut VulkanExec,
        x: &VkBuf,
        n: usize,
        act: Activation,
        d: &mut VkBuf,
    ) {
        ex.attempt(|| grads::activation_backward(ex, x, n, act, d));
    }

    fn layer_norm_backward(
        ex: &mut VulkanExec,
        dy: &VkBuf,
        rows: usize,
        width: usize,
        record: &NormRecord<Vulkan>,
        gamma: &VkBuf,
        dgamma: &mut VkBuf,
        dbeta: &mut VkBuf,
        dsum: &mut VkBuf,
        branch: Option<(Option<Dropout>, &mut VkBuf)>,
    ) {
        let saved = (&record.xhat, &record.rstd, gamma);
        ex.attempt(|| {
            let dims = (rows, width);
            norm::layer_norm_backward(ex, dy, dims, saved, (dgamma, dbeta), dsum, branch)
        });
    }

    fn attention_backward(
        ex: &mut VulkanExec,
        q: View<'_, Vulkan>,
        k: View<'_, Vulkan>,
        v: View<'_, Vulkan>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        record: &VkBuf,
        drop: Option<Dropout>,
        dout: &VkBuf,
        dq: &mut VkBuf,
        dk: &mut VkBuf,
        dv: &mut VkBuf,
    ) {
        ex.attempt(|| {
            let grads = (dq, dk, dv);
            let qkv = (q, k, v);
            attention_train::backward(ex, qkv, rows, queries, heads, record, drop, dout, grads)
        });
    }

    fn scatter_add(ex: &mut VulkanExec, d: &VkBuf, width: usize, r: &[u32], dx: &mut VkBuf) {
        ex.attempt(|| {
            let src = ex.input(d, r.len() * width, "the scattered rows")?;
            grads::scatter_rows(ex, &src, width, r, dx)
        });
    }

    fn embed_backward(
        ex: &mut VulkanExec,
        dy: &VkBuf,
        rows: &Rows,
        width: usize,
        dword: &mut VkBuf,
        dtoken_type: &mut VkBuf,
        dposition: &mut VkBuf,
    ) -> f64 {
        let result = (|| {
            let n = rows.len();
            let src = ex.input(dy, n * width, "the embeddings' gradient")?;
            // A batch without segment ids is all segment 0, as on the CPU.
            let zeros;
            let segments = if rows.segments.len() == n {
                &rows.segments
            } else {
                zeros = vec![0; n];
                &zeros
            };
            grads::scatter_rows(ex, &src, width, &rows.ids, dword)?;
            grads::scatter_rows(ex, &src, width, segments, dtoken_type)?;
            grads::scatter_rows(ex, &src, width, &rows.positions, dposition)?;
            optim::scale_and_square_sum(ex, dy, n * width, 1.0)
        })();
        result.unwrap_or_else(|e| {
            ex.fail(e);
            f64::NAN
        })
    }

    fn scale_and_square_sum(ex: &mut VulkanExec, x: &mut VkBuf, alpha: f32) -> f64 {
        let n = x.len;
        optim::scale_and_square_sum(ex, x, n, alpha).unwrap_or_else(|e| {
            ex.fail(e);
            f64::NAN
        })
    }

    fn adamw(
        ex: &mut VulkanExec,
        value: &mut VkBuf,
        grad: &mut VkBuf,
        m: &mut VkBuf,
        v: &mut VkBuf,
        step: &AdamStep,
    ) {
        ex.attempt(|| optim::adamw(ex, (value, grad, m, v), step));
    }
}
