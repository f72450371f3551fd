//! [`Cpu`]: the CPU's implementation of [`Backend`], over host `Vec<f32>` buffers.

use std::borrow::Cow;

use super::attention::{self, Strided};
use super::dense::Dense;
use super::par::{grow, Partials};
use super::rows::{self, Table, Words};
use super::{elementwise, loss, norm, optim, Isa};
use crate::backend::{
    Activation, AdamStep, Backend, Dropout, Heads, Layout, MatrixSource, Norm, NormRecord, Pool,
    Queries, Reduce, Rows, TableRef, TableSource, View, Weight,
};
use crate::weights::DType;
use crate::Result;

/// The CPU back end: the f32 reference, with f16 and int8 weight storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu;

/// A context's CPU executor: its thread pool, and the scratch of the ops that reduce over
/// rows.
#[derive(Debug)]
pub struct CpuExec {
    pub(crate) pool: Pool,
    partials: Vec<f32>,
}

impl CpuExec {
    /// The executor's threads.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// `(&x[..n], …)` of a buffer's rows, for a view.
fn strided<'a>(v: View<'a, Cpu>) -> Strided<'a> {
    Strided {
        data: v.buf,
        col: v.col,
        stride: v.stride,
    }
}

/// Strides of a plain kernel read as `[in, out]`.
fn kernel_strides(layout: Layout, in_dim: usize, out_dim: usize) -> (isize, isize) {
    match layout {
        Layout::InOut => (out_dim as isize, 1),
        Layout::OutIn => (1, in_dim as isize),
    }
}

impl Backend for Cpu {
    type Buf = Vec<f32>;
    type Matrix = Dense;
    type Table = Table;
    type Exec = CpuExec;

    fn describe(&self) -> String {
        format!("cpu ({:?})", Isa::detect())
    }

    fn exec(&self, threads: usize) -> CpuExec {
        CpuExec {
            pool: Pool::new(threads),
            partials: Vec::new(),
        }
    }

    fn threads(ex: &CpuExec) -> usize {
        ex.pool.threads()
    }

    fn matrix(&self, src: MatrixSource<'_>, in_dim: usize, out_dim: usize) -> Result<Dense> {
        Dense::from_source(src, in_dim, out_dim)
    }

    fn table(&self, src: TableSource<'_>, rows: usize, width: usize) -> Result<Table> {
        match src {
            TableSource::F32(v) => Table::new(Some(v), None, rows, width),
            TableSource::Quantized(q) => Table::new(None, Some(q), rows, width),
        }
    }

    fn table_values(&self, table: &Table, width: usize) -> Result<Vec<f32>> {
        Ok(table.values(width))
    }

    fn matrix_dtype(m: &Dense) -> DType {
        m.dtype()
    }

    fn upload(&self, values: &[f32]) -> Vec<f32> {
        values.to_vec()
    }

    fn len(buf: &Vec<f32>) -> usize {
        buf.len()
    }

    fn read<'b>(_: &CpuExec, buf: &'b Vec<f32>, n: usize) -> Cow<'b, [f32]> {
        Cow::Borrowed(&buf[..n])
    }

    fn write(_: &mut CpuExec, buf: &mut Vec<f32>, values: &[f32]) {
        buf.clear();
        buf.extend_from_slice(values);
    }

    fn fill(_: &mut CpuExec, buf: &mut Vec<f32>, n: usize, value: f32) {
        buf.clear();
        buf.resize(n, value);
    }

    fn embed(
        ex: &mut CpuExec,
        word: TableRef<'_, Cpu>,
        token_type: &Vec<f32>,
        position: &Vec<f32>,
        rows: &Rows,
        width: usize,
        out: &mut Vec<f32>,
    ) {
        let words = match word {
            TableRef::Prepared(t) => Words::Table(t),
            TableRef::Plain(w) => Words::Plain(w),
        };
        let out = grow(out, rows.len() * width);
        rows::embed(&ex.pool, words, token_type, position, rows, width, out);
    }

    fn dense(
        ex: &mut CpuExec,
        w: Weight<'_, Cpu>,
        in_dim: usize,
        out_dim: usize,
        bias: Option<&Vec<f32>>,
        x: View<'_, Cpu>,
        rows: usize,
        out: &mut Vec<f32>,
        act: Activation,
    ) {
        let out = grow(out, rows * out_dim);
        let bias = bias.map(|b| &b[..out_dim]);
        match w {
            Weight::Prepared(m) if x.col == 0 && x.stride == in_dim => {
                m.forward_with(x.buf, rows, out, bias, act, &ex.pool)
            }
            Weight::Prepared(m) => {
                // A prepared kernel reads its rows contiguous: copy a strided input.
                let xs: Vec<f32> = (0..rows)
                    .flat_map(|r| x.buf[x.col + r * x.stride..][..in_dim].iter().copied())
                    .collect();
                m.forward_with(&xs, rows, out, bias, act, &ex.pool)
            }
            Weight::Plain(values, layout) => super::product(
                Isa::detect(),
                (rows, in_dim, out_dim),
                1.0,
                (&x.buf[x.col..], (x.stride as isize, 1)),
                (values, kernel_strides(layout, in_dim, out_dim)),
                0.0,
                (out, (out_dim as isize, 1)),
                bias,
                act,
                &ex.pool,
            ),
        }
    }

    fn activate(ex: &mut CpuExec, x: &Vec<f32>, n: usize, act: Activation, out: &mut Vec<f32>) {
        elementwise::activate(&ex.pool, &x[..n], act, grow(out, n));
    }

    fn dropout(ex: &mut CpuExec, x: &mut Vec<f32>, n: usize, mask: Dropout) {
        elementwise::dropout(&ex.pool, &mut x[..n], mask);
    }

    fn layer_norm(
        ex: &mut CpuExec,
        x: &mut Vec<f32>,
        rows: usize,
        width: usize,
        residual: Option<&Vec<f32>>,
        drop: Option<Dropout>,
        n: Norm<'_, Cpu>,
        record: Option<&mut NormRecord<Cpu>>,
    ) {
        let args = norm::NormArgs {
            width,
            residual: residual.map(|r| &r[..rows * width]),
            drop,
            gamma: n.gamma,
            beta: n.beta,
            eps: n.eps,
        };
        let record = record.map(|r| (grow(&mut r.xhat, rows * width), grow(&mut r.rstd, rows)));
        norm::layer_norm(&ex.pool, &mut x[..rows * width], &args, record);
    }

    fn attention(
        ex: &mut CpuExec,
        q: View<'_, Cpu>,
        k: View<'_, Cpu>,
        v: View<'_, Cpu>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        out: &mut Vec<f32>,
        record: Option<&mut Vec<f32>>,
        drop: Option<Dropout>,
    ) {
        let nq = queries.map_or(rows.len(), Queries::len);
        let out = grow(out, nq * heads.n * heads.size);
        let views = (strided(q), strided(k), strided(v));
        attention::forward(&ex.pool, views, rows, queries, heads, out, record, drop);
    }

    fn gather(_: &mut CpuExec, x: &Vec<f32>, width: usize, rows: &[u32], out: &mut Vec<f32>) {
        rows::gather(x, width, rows, grow(out, rows.len() * width));
    }

    fn transpose(_: &mut CpuExec, x: &Vec<f32>, rows: usize, cols: usize, out: &mut Vec<f32>) {
        let out = grow(out, rows * cols);
        for (r, row) in x[..rows * cols].chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                out[c * rows + r] = v;
            }
        }
    }

    fn reduce(
        _: &mut CpuExec,
        x: &Vec<f32>,
        rows: &Rows,
        width: usize,
        how: Reduce,
        out: &mut Vec<f32>,
    ) {
        rows::reduce(x, rows, width, how, grow(out, rows.seqs.len() * width));
    }

    fn l2_normalize(_: &mut CpuExec, x: &mut Vec<f32>, rows: usize, width: usize) {
        rows::l2_normalize(&mut x[..rows * width], width);
    }

    fn softmax_cross_entropy(
        _: &mut CpuExec,
        logits: &Vec<f32>,
        width: usize,
        labels: &[u32],
        log_probs: Option<&mut Vec<f32>>,
        dlogits: Option<(&mut Vec<f32>, &[f32])>,
    ) -> Vec<f64> {
        let n = labels.len() * width;
        let log_probs = log_probs.map(|l| grow(l, n));
        let dlogits = dlogits.map(|(d, s)| (grow(d, n), s));
        loss::softmax_cross_entropy(logits, width, labels, log_probs, dlogits)
    }

    fn dense_weight_grad(
        ex: &mut CpuExec,
        x: View<'_, Cpu>,
        dy: View<'_, Cpu>,
        rows: usize,
        in_dim: usize,
        out_dim: usize,
        layout: Layout,
        dw: &mut Vec<f32>,
    ) {
        // `dw[in, out] += xᵀ dy`, or `dw[out, in] += dyᵀ x`.
        let (xs, ds) = (x.stride as isize, dy.stride as isize);
        let (x, dy) = (&x.buf[x.col..], &dy.buf[dy.col..]);
        let (m, n, a, b) = match layout {
            Layout::InOut => (in_dim, out_dim, (x, (1, xs)), (dy, (ds, 1))),
            Layout::OutIn => (out_dim, in_dim, (dy, (1, ds)), (x, (xs, 1))),
        };
        let c = (&mut dw[..m * n], (n as isize, 1));
        let isa = Isa::detect();
        super::product(
            isa,
            (m, rows, n),
            1.0,
            a,
            b,
            1.0,
            c,
            None,
            Activation::Identity,
            &ex.pool,
        );
    }

    fn dense_input_grad(
        ex: &mut CpuExec,
        w: &Vec<f32>,
        layout: Layout,
        in_dim: usize,
        out_dim: usize,
        dy: View<'_, Cpu>,
        rows: usize,
        dx: &mut Vec<f32>,
        accumulate: bool,
    ) {
        // `dx[rows, in] = dy[rows, out] · wᵀ`: the kernel read as `[out, in]`.
        let (rs, cs) = kernel_strides(layout, in_dim, out_dim);
        let dx = grow(dx, rows * in_dim);
        let beta = if accumulate { 1.0 } else { 0.0 };
        super::product(
            Isa::detect(),
            (rows, out_dim, in_dim),
            1.0,
            (&dy.buf[dy.col..], (dy.stride as isize, 1)),
            (w, (cs, rs)),
            beta,
            (dx, (in_dim as isize, 1)),
            None,
            Activation::Identity,
            &ex.pool,
        );
    }

    fn column_sums(
        ex: &mut CpuExec,
        dy: View<'_, Cpu>,
        rows: usize,
        width: usize,
        db: &mut Vec<f32>,
    ) {
        let parts = Partials::new(&mut ex.partials, rows, width, 1);
        norm::column_sums(&ex.pool, rows, dy.buf, (dy.stride, dy.col), &parts, 0);
        parts.add_into(0, &mut db[..width]);
    }

    fn activation_backward(
        ex: &mut CpuExec,
        x: &Vec<f32>,
        n: usize,
        act: Activation,
        d: &mut Vec<f32>,
    ) {
        elementwise::activation_backward(&ex.pool, &x[..n], act, &mut d[..n]);
    }

    fn layer_norm_backward(
        ex: &mut CpuExec,
        dy: &Vec<f32>,
        rows: usize,
        width: usize,
        record: &NormRecord<Cpu>,
        gamma: &Vec<f32>,
        dgamma: &mut Vec<f32>,
        dbeta: &mut Vec<f32>,
        dsum: &mut Vec<f32>,
        branch: Option<(Option<Dropout>, &mut Vec<f32>)>,
    ) {
        let n = rows * width;
        let dsum = grow(dsum, n);
        let parts = Partials::new(&mut ex.partials, rows, width, 2);
        let branch = branch.map(|(drop, dz)| (drop, grow(dz, n)));
        let saved = (&record.xhat[..n], &record.rstd[..rows], &gamma[..width]);
        norm::layer_norm_backward(&ex.pool, rows, &dy[..n], saved, dsum, branch, &parts);
        parts.add_into(0, &mut dgamma[..width]);
        parts.add_into(1, &mut dbeta[..width]);
    }

    fn attention_backward(
        ex: &mut CpuExec,
        q: View<'_, Cpu>,
        k: View<'_, Cpu>,
        v: View<'_, Cpu>,
        rows: &Rows,
        queries: Option<&Queries>,
        heads: Heads,
        record: &Vec<f32>,
        drop: Option<Dropout>,
        dout: &Vec<f32>,
        dq: &mut Vec<f32>,
        dk: &mut Vec<f32>,
        dv: &mut Vec<f32>,
    ) {
        let h = heads.n * heads.size;
        let nq = queries.map_or(rows.len(), Queries::len);
        let grads = (
            grow(dq, nq * h),
            grow(dk, rows.len() * h),
            grow(dv, rows.len() * h),
        );
        let views = (strided(q), strided(k), strided(v));
        attention::backward(
            &ex.pool, views, rows, queries, heads, record, drop, dout, grads,
        );
    }

    fn scatter_add(_: &mut CpuExec, d: &Vec<f32>, width: usize, rows: &[u32], dx: &mut Vec<f32>) {
        rows::scatter_add(d, width, rows, dx);
    }

    fn embed_backward(
        _: &mut CpuExec,
        dy: &Vec<f32>,
        rows: &Rows,
        width: usize,
        dword: &mut Vec<f32>,
        dtoken_type: &mut Vec<f32>,
        dposition: &mut Vec<f32>,
    ) -> f64 {
        rows::embed_backward(dy, rows, width, (dword, dtoken_type, dposition))
    }

    fn scale_and_square_sum(ex: &mut CpuExec, x: &mut Vec<f32>, alpha: f32) -> f64 {
        optim::scale_and_square_sum(&ex.pool, x, alpha)
    }

    fn adamw(
        ex: &mut CpuExec,
        value: &mut Vec<f32>,
        grad: &mut Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        step: &AdamStep,
    ) {
        optim::adamw(&ex.pool, (value, grad, m, v), step);
    }
}
