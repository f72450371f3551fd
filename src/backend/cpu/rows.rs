//! Ops that move rows: the embedding lookup and its backward scatter, gathers of a subset of
//! rows, sentence poolings and L2 normalisation.

use super::math::{self, Path};
use super::par::{for_chunks, SharedMut};
use crate::backend::{Pool, Reduce, Rows, WeightBytes};
use crate::weights::{DType, QuantizedTensor};
use crate::{Error, Result};

/// The word-embedding table `[vocab, hidden]` on its storage. f16 and int8 tables stay in the
/// model file's memory map: a lookup touches only the rows of the ids it reads.
#[derive(Debug, Clone)]
pub enum Table {
    F32(Vec<f32>),
    /// f32 rows in a `.bert` file's memory map (read in place: see `WeightBytes::as_f32`).
    F32Mapped(WeightBytes),
    /// Little-endian f16, row-major.
    F16(WeightBytes),
    /// Symmetric int8, row-major, one scale per row.
    Int8 {
        values: WeightBytes,
        scales: Vec<f32>,
    },
}

impl Table {
    /// A `[rows, width]` table from f32 values or a loader's f16 / int8-rows tensor.
    pub(crate) fn new(
        values: Option<&[f32]>,
        q: Option<&QuantizedTensor>,
        rows: usize,
        width: usize,
    ) -> Result<Table> {
        let shape = [rows, width];
        let bad = |got: Vec<usize>| {
            Err(Error::Shape(format!(
                "embedding table {got:?}, the config needs {shape:?}"
            )))
        };
        match (values, q) {
            (Some(v), _) => {
                if Some(v.len()) != rows.checked_mul(width) {
                    return bad(vec![v.len()]);
                }
                Ok(Table::F32(v.to_vec()))
            }
            (None, Some(q)) if q.shape() != shape => bad(q.shape()),
            (None, Some(QuantizedTensor::F16 { bytes, .. })) => Ok(Table::F16(bytes.clone())),
            (None, Some(QuantizedTensor::F32Rows { bytes, .. })) if bytes.as_f32().is_some() => {
                Ok(Table::F32Mapped(bytes.clone()))
            }
            (None, Some(QuantizedTensor::Int8Rows { values, scales, .. })) => Ok(Table::Int8 {
                values: values.clone(),
                scales: scales.clone(),
            }),
            (None, Some(q)) => Ok(Table::F32(q.to_f32()?)),
            (None, None) => bad(vec![]),
        }
    }

    /// The storage precision.
    pub fn dtype(&self) -> DType {
        match self {
            Table::F32(_) | Table::F32Mapped(_) => DType::F32,
            Table::F16(_) => DType::F16,
            Table::Int8 { .. } => DType::Int8,
        }
    }

    /// Writes row `id` (`< rows`, checked by the model) into `out: [width]`.
    pub(crate) fn row(&self, id: usize, out: &mut [f32]) {
        let h = out.len();
        match self {
            Table::F32(t) => out.copy_from_slice(&t[id * h..][..h]),
            Table::F32Mapped(b) => {
                let t = b.as_f32().unwrap_or(&[]);
                out.copy_from_slice(&t[id * h..][..h])
            }
            Table::F16(b) => {
                let bytes = &b.as_bytes()[2 * id * h..][..2 * h];
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
            }
            Table::Int8 { values, scales } => {
                let scale = scales[id];
                for (o, &v) in out.iter_mut().zip(&values.as_bytes()[id * h..][..h]) {
                    *o = v as i8 as f32 * scale;
                }
            }
        }
    }

    /// Every row as f32 (a dequantized copy for f16 and int8).
    pub(crate) fn values(&self, width: usize) -> Vec<f32> {
        match self {
            Table::F32(t) => return t.clone(),
            Table::F32Mapped(b) => return b.to_f32().into_owned(),
            _ => {}
        }
        let rows = match self {
            Table::F16(b) => b.as_bytes().len() / (2 * width.max(1)),
            Table::Int8 { scales, .. } => scales.len(),
            Table::F32(t) => t.len() / width.max(1),
            Table::F32Mapped(b) => b.len() / (4 * width.max(1)),
        };
        let mut out = vec![0.0; rows * width];
        for (id, row) in out.chunks_exact_mut(width.max(1)).enumerate() {
            self.row(id, row);
        }
        out
    }
}

/// Where the word rows come from.
pub(crate) enum Words<'a> {
    Table(&'a Table),
    Plain(&'a [f32]),
}

/// `out[r] = word[ids[r]] + token_type[segments[r]] + position[positions[r]]`.
pub(crate) fn embed(
    pool: &Pool,
    word: Words<'_>,
    token_type: &[f32],
    position: &[f32],
    rows: &Rows,
    width: usize,
    out: &mut [f32],
) {
    let h = width;
    let os = SharedMut::new(&mut out[..rows.len() * h]);
    for_chunks(pool, rows.len(), &|_, r0, r1| {
        // SAFETY: chunks are disjoint row ranges.
        let out = unsafe { os.rows(r0, r1, h) };
        for (row, r) in out.chunks_exact_mut(h).zip(r0..r1) {
            let id = rows.ids[r] as usize;
            match &word {
                Words::Table(t) => t.row(id, row),
                Words::Plain(w) => row.copy_from_slice(&w[id * h..][..h]),
            }
            let ty = rows.segments.get(r).map_or(0, |&t| t as usize);
            let pos = rows.positions[r] as usize;
            math::add_assign(Path::Auto, row, &token_type[ty * h..][..h]);
            math::add_assign(Path::Auto, row, &position[pos * h..][..h]);
        }
    });
}

/// Backward of [`embed`]: adds every row of `dy` into the tables' gradients (in row order,
/// so the sums do not depend on threads) and returns `Σ_r ‖dy[r]‖²` in f64.
pub(crate) fn embed_backward(
    dy: &[f32],
    rows: &Rows,
    width: usize,
    (dword, dtype, dpos): (&mut [f32], &mut [f32], &mut [f32]),
) -> f64 {
    let h = width;
    let mut occurrence_sq = 0.0;
    for r in 0..rows.len() {
        let row = &dy[r * h..][..h];
        occurrence_sq += row.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        let ty = rows.segments.get(r).map_or(0, |&t| t as usize);
        for (t, i) in [
            (&mut *dword, rows.ids[r] as usize),
            (&mut *dtype, ty),
            (&mut *dpos, rows.positions[r] as usize),
        ] {
            for (a, v) in t[i * h..][..h].iter_mut().zip(row) {
                *a += v;
            }
        }
    }
    occurrence_sq
}

/// `out[i] = x[rows[i]]`, rows of `width`.
pub(crate) fn gather(x: &[f32], width: usize, rows: &[u32], out: &mut [f32]) {
    for (o, &r) in out.chunks_exact_mut(width).zip(rows) {
        o.copy_from_slice(&x[r as usize * width..][..width]);
    }
}

/// `dx[rows[i]] += d[i]`, rows of `width`.
pub(crate) fn scatter_add(d: &[f32], width: usize, rows: &[u32], dx: &mut [f32]) {
    for (g, &r) in d.chunks_exact(width).zip(rows) {
        for (a, v) in dx[r as usize * width..][..width].iter_mut().zip(g) {
            *a += v;
        }
    }
}

/// One vector per sequence of `rows` (`out: [sequences, width]`).
pub(crate) fn reduce(x: &[f32], rows: &Rows, width: usize, how: Reduce, out: &mut [f32]) {
    for (o, s) in out.chunks_exact_mut(width).zip(&rows.seqs) {
        let real = (s.start..s.start + s.len).filter(|&r| rows.mask_bias[r] == 0.0);
        let row = |r: usize| &x[r * width..][..width];
        match how {
            Reduce::First => o.copy_from_slice(row(s.start)),
            Reduce::Mean => {
                o.fill(0.0);
                let mut count = 0usize;
                for r in real {
                    count += 1;
                    for (a, v) in o.iter_mut().zip(row(r)) {
                        *a += v;
                    }
                }
                // A sequence with no real token gives zeros (sentence-transformers clamps the
                // count to 1e-9, which gives the same zeros).
                let inv = 1.0 / count.max(1) as f32;
                o.iter_mut().for_each(|a| *a *= inv);
            }
            Reduce::Max => {
                o.fill(f32::NEG_INFINITY);
                let mut any = false;
                for r in real {
                    any = true;
                    for (a, v) in o.iter_mut().zip(row(r)) {
                        *a = a.max(*v);
                    }
                }
                if !any {
                    o.fill(0.0);
                }
            }
        }
    }
}

/// Scales each row to unit L2 norm, `x / max(|x|, 1e-12)` (PyTorch's `F.normalize`, which
/// sentence-transformers uses).
pub(crate) fn l2_normalize(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        let inv = 1.0 / norm;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Span;

    #[test]
    fn poolings_skip_masked_positions() {
        // Two sequences of 3 rows, width 2; the second has one real token.
        let x = [
            1.0, -1.0, 3.0, 5.0, 100.0, 100.0, 2.0, 4.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let rows = Rows {
            seqs: vec![Span { start: 0, len: 3 }, Span { start: 3, len: 3 }],
            ids: vec![0; 6],
            segments: vec![],
            positions: vec![0, 1, 2, 0, 1, 2],
            mask_bias: vec![0.0, 0.0, -1e4, 0.0, -1e4, -1e4],
        };
        let mut out = [0.0; 4];
        reduce(&x, &rows, 2, Reduce::Mean, &mut out);
        assert_eq!(out, [2.0, 2.0, 2.0, 4.0]);
        reduce(&x, &rows, 2, Reduce::Max, &mut out);
        assert_eq!(out, [3.0, 5.0, 2.0, 4.0]);
        reduce(&x, &rows, 2, Reduce::First, &mut out);
        assert_eq!(out, [1.0, -1.0, 2.0, 4.0]);
        let mut v = [3.0, 4.0, 0.0, 0.0];
        l2_normalize(&mut v, 2);
        assert_eq!(v, [0.6, 0.8, 0.0, 0.0]);
    }
}
