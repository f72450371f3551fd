//! A batch's inputs (`modeling.py: BertModel`'s `input_ids`, `token_type_ids`,
//! `input_mask`), checked against the config, and laid out as the rows the ops run on.

use crate::backend::{Queries, Rows, Span};
use crate::config::BertConfig;
use crate::{Error, Result};

/// Google's additive attention mask for padded keys: `(1.0 - mask) * -10000.0`.
pub const MASK_ADDER: f32 = -10000.0;

/// A batch of model inputs, each `[batch, seq]` row-major. Sequences shorter than `seq` are
/// padded (any id, conventionally 0) and masked out.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// WordPiece ids, each `< vocab_size`.
    pub input_ids: &'a [u32],
    /// Token type (segment) ids, each `< type_vocab_size`; empty means all 0.
    pub segment_ids: &'a [u32],
    /// 1 for real tokens, 0 for padding; empty means all 1.
    pub input_mask: &'a [u32],
    pub batch: usize,
    pub seq: usize,
}

impl Inputs<'_> {
    /// Checks shapes and ranges against `c`.
    pub fn check(&self, c: &BertConfig) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.batch == 0 || self.seq == 0 {
            return bad(format!("empty batch ({} x {})", self.batch, self.seq));
        }
        if self.seq > c.max_position_embeddings {
            return bad(format!(
                "sequence length {} exceeds max_position_embeddings {}",
                self.seq, c.max_position_embeddings
            ));
        }
        let n = self
            .batch
            .checked_mul(self.seq)
            .ok_or_else(|| Error::InvalidArgument("batch * seq overflows".into()))?;
        for (what, v, optional) in [
            ("input_ids", self.input_ids, false),
            ("segment_ids", self.segment_ids, true),
            ("input_mask", self.input_mask, true),
        ] {
            if v.len() != n && !(optional && v.is_empty()) {
                return bad(format!(
                    "{what} has {} values, batch {} x seq {} needs {n}",
                    v.len(),
                    self.batch,
                    self.seq
                ));
            }
        }
        fn first_bad(v: &[u32], limit: usize) -> Option<(usize, u32)> {
            v.iter()
                .enumerate()
                .find(|(_, &x)| x as usize >= limit)
                .map(|(i, &x)| (i, x))
        }
        if let Some((i, id)) = first_bad(self.input_ids, c.vocab_size) {
            return bad(format!(
                "input_ids[{i}] = {id} is not < vocab_size {}",
                c.vocab_size
            ));
        }
        if let Some((i, t)) = first_bad(self.segment_ids, c.type_vocab_size) {
            return bad(format!(
                "segment_ids[{i}] = {t} is not < type_vocab_size {}",
                c.type_vocab_size
            ));
        }
        if let Some((i, m)) = first_bad(self.input_mask, 2) {
            return bad(format!("input_mask[{i}] = {m} is not 0 or 1"));
        }
        Ok(())
    }

    fn real(&self, i: usize) -> bool {
        self.input_mask.get(i).map_or(true, |&m| m != 0)
    }

    /// Lays the batch out as rows: every position (`trim: false`, what `modeling.py`
    /// computes, padding included), or each sequence up to its last real token (`trim`:
    /// nothing after it changes the real positions, so training and sentence embeddings skip
    /// it; a sequence without any real token keeps all its positions, as its soft-max is then
    /// uniform over all of them).
    pub fn rows(&self, trim: bool, rows: &mut Rows) {
        rows.seqs.clear();
        rows.ids.clear();
        rows.segments.clear();
        rows.positions.clear();
        rows.mask_bias.clear();
        for b in 0..self.batch {
            let base = b * self.seq;
            let len = if trim {
                (0..self.seq)
                    .rposition(|t| self.real(base + t))
                    .map_or(self.seq, |t| t + 1)
            } else {
                self.seq
            };
            rows.seqs.push(Span {
                start: rows.ids.len(),
                len,
            });
            for t in 0..len {
                let i = base + t;
                rows.ids.push(self.input_ids[i]);
                rows.segments
                    .push(self.segment_ids.get(i).copied().unwrap_or(0));
                rows.positions.push(t as u32);
                rows.mask_bias
                    .push(if self.real(i) { 0.0 } else { MASK_ADDER });
            }
        }
    }
}

/// Token ids of a batch padded to its longest sequence, `[batch, seq]` row-major: the owned
/// form of [`Inputs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub input_ids: Vec<u32>,
    pub segment_ids: Vec<u32>,
    pub input_mask: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
}

impl Batch {
    /// Pads sequences `(input ids, segment ids)` to the longest with id 0, segment 0 and
    /// mask 0.
    pub fn pad<'a>(seqs: impl IntoIterator<Item = (&'a [u32], &'a [u32])> + Clone) -> Batch {
        let seq = seqs
            .clone()
            .into_iter()
            .map(|(ids, _)| ids.len())
            .max()
            .unwrap_or(0);
        let mut b = Batch {
            seq,
            ..Batch::default()
        };
        for (ids, segments) in seqs {
            let pad = seq - ids.len();
            b.input_ids
                .extend(ids.iter().copied().chain(std::iter::repeat(0).take(pad)));
            b.segment_ids.extend(
                segments
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(0).take(pad)),
            );
            b.input_mask.extend(
                std::iter::repeat(1)
                    .take(ids.len())
                    .chain(std::iter::repeat(0).take(pad)),
            );
            b.batch += 1;
        }
        b
    }

    /// The encoder's view.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            input_ids: &self.input_ids,
            segment_ids: &self.segment_ids,
            input_mask: &self.input_mask,
            batch: self.batch,
            seq: self.seq,
        }
    }
}

/// Queries at the given positions of each sequence (each list sorted, positions inside the
/// sequence's rows, checked by the caller).
pub fn queries_at<'p>(rows: &Rows, positions: impl Fn(usize) -> &'p [usize]) -> Queries {
    let mut q = Queries::default();
    for (e, s) in rows.seqs.iter().enumerate() {
        let ps = positions(e);
        q.seqs.push(Span {
            start: q.rows.len(),
            len: ps.len(),
        });
        q.rows.extend(ps.iter().map(|&p| (s.start + p) as u32));
    }
    q
}

/// The first row of every sequence (`[CLS]`: what the pooler reads).
pub fn first_rows(rows: &Rows) -> Queries {
    queries_at(rows, |_| &[0])
}
