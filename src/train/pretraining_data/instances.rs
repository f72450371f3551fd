//! `create_instances_from_document` and `truncate_seq_pair`: a document's sentences packed
//! into `[CLS] A [SEP] B [SEP]` pairs up to a target length, B the actual continuation or
//! (half the time, and always for a one-segment chunk) the start of a random other
//! document, with the segments that chunk did not use "put back".
//!
//! An instance is kept as two spans of the documents' token array plus its masked positions
//! and their replacements (A, B and their truncations are always contiguous), not as a copy
//! of its tokens: about 40 bytes plus 8 per prediction.

use super::documents::Documents;
use super::masking::{create_masked_lm_predictions, MaskParams, MaskScratch, VocabInfo};
use super::random::PyRandom;

/// The flags that shape instances.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceParams {
    pub max_seq_length: usize,
    pub short_seq_prob: f64,
    pub mask: MaskParams,
}

/// Where one instance's tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spans {
    a_start: usize,
    a_len: u32,
    b_start: usize,
    b_len: u32,
    is_random_next: bool,
    /// End of this instance's predictions in `Instances::masked`.
    masked_end: usize,
}

/// Google's `TrainingInstance`, with token ids instead of token strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingInstance {
    /// `[CLS] A [SEP] B [SEP]` after masking.
    pub tokens: Vec<u32>,
    /// 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`.
    pub segment_ids: Vec<u32>,
    /// B is a random document's text, not A's continuation.
    pub is_random_next: bool,
    /// Masked positions, ascending.
    pub masked_lm_positions: Vec<u32>,
    /// The original token id at each masked position.
    pub masked_lm_labels: Vec<u32>,
}

/// Google's `instances` list, compactly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Instances {
    spans: Vec<Spans>,
    /// (position, replacement id) of every instance's predictions, back to back.
    masked: Vec<(u32, u32)>,
    /// The longest instance (tokens) and the most predictions of one, so that writing
    /// with smaller flags is refused rather than padded to a negative length.
    pub(crate) longest: usize,
    pub(crate) most_predictions: usize,
}

impl Instances {
    /// Number of instances.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Rebuilds instance `i` into `out` (reusing its buffers). `cls`/`sep` are the ids of
    /// `[CLS]` and `[SEP]`.
    pub(crate) fn get_into(
        &self,
        docs: &Documents,
        i: usize,
        cls: u32,
        sep: u32,
        out: &mut TrainingInstance,
    ) {
        let s = self.spans[i];
        let tokens = docs.tokens();
        let a = &tokens[s.a_start..s.a_start + s.a_len as usize];
        let b = &tokens[s.b_start..s.b_start + s.b_len as usize];
        out.tokens.clear();
        out.tokens.push(cls);
        out.tokens.extend_from_slice(a);
        out.tokens.push(sep);
        out.tokens.extend_from_slice(b);
        out.tokens.push(sep);
        out.segment_ids.clear();
        out.segment_ids.resize(a.len() + 2, 0);
        out.segment_ids.resize(out.tokens.len(), 1);
        out.is_random_next = s.is_random_next;
        let start = if i == 0 {
            0
        } else {
            self.spans[i - 1].masked_end
        };
        out.masked_lm_positions.clear();
        out.masked_lm_labels.clear();
        for &(position, replacement) in &self.masked[start..s.masked_end] {
            let p = position as usize;
            out.masked_lm_positions.push(position);
            out.masked_lm_labels.push(out.tokens[p]);
            out.tokens[p] = replacement;
        }
    }

    /// Instance `i`, if there is one and it lies inside `docs` (the documents it was
    /// made from).
    pub fn get(&self, docs: &Documents, i: usize, cls: u32, sep: u32) -> Option<TrainingInstance> {
        if i >= self.len() || !self.fits(docs) {
            return None;
        }
        let mut out = TrainingInstance {
            tokens: Vec::new(),
            segment_ids: Vec::new(),
            is_random_next: false,
            masked_lm_positions: Vec::new(),
            masked_lm_labels: Vec::new(),
        };
        self.get_into(docs, i, cls, sep, &mut out);
        Some(out)
    }

    /// Whether every instance's spans lie inside `docs` (true for the documents the
    /// instances were made from), so that rebuilding them cannot index out of bounds.
    pub(crate) fn fits(&self, docs: &Documents) -> bool {
        let n = docs.tokens().len();
        self.spans
            .iter()
            .all(|s| s.a_start + s.a_len as usize <= n && s.b_start + s.b_len as usize <= n)
    }

    /// Bytes held (for the memory figures in the log).
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<Spans>()
            + self.masked.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

/// Reusable buffers of instance creation.
#[derive(Debug, Default)]
pub(crate) struct InstanceScratch {
    tokens: Vec<u32>,
    mask: MaskScratch,
}

/// A token range of the documents' array, truncated from either end.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// `truncate_seq_pair`: while too long, drop a token of the longer side (B on ties), from
/// the front or the back at random.
fn truncate_seq_pair(a: &mut Span, b: &mut Span, max_num_tokens: usize, rng: &mut PyRandom) {
    while a.len + b.len > max_num_tokens {
        let trunc = if a.len > b.len { &mut *a } else { &mut *b };
        if rng.random() < 0.5 {
            trunc.start += 1;
        }
        trunc.len -= 1;
    }
}

/// Google's `all_documents` after its shuffle: document `k` is `docs`' document `order[k]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AllDocuments<'a> {
    pub docs: &'a Documents,
    pub order: &'a [u32],
}

/// `create_instances_from_document` for `all_documents[document_index]`. Appends to `out`.
pub(crate) fn create_instances_from_document(
    all_documents: AllDocuments<'_>,
    document_index: usize,
    params: &InstanceParams,
    vocab: &VocabInfo,
    rng: &mut PyRandom,
    scratch: &mut InstanceScratch,
    out: &mut Instances,
) {
    let AllDocuments { docs, order } = all_documents;
    let sentences = docs.sentences(order[document_index] as usize);
    let n = sentences.len();
    let sentence = |k: usize| docs.sentence_span(sentences.start + k);

    // Account for [CLS], [SEP], [SEP].
    let max_num_tokens = params.max_seq_length - 3;
    let mut target_seq_length = max_num_tokens;
    if rng.random() < params.short_seq_prob {
        target_seq_length = rng.randint(2, max_num_tokens as u64) as usize;
    }

    // The current chunk is always sentences chunk_start..chunk_start + chunk_len.
    let mut chunk_start = 0;
    let mut chunk_len = 0;
    let mut current_length = 0;
    let mut i = 0;
    while i < n {
        if chunk_len == 0 {
            chunk_start = i;
        }
        chunk_len += 1;
        current_length += sentence(i).len();
        if i == n - 1 || current_length >= target_seq_length {
            // `a_end` is how many segments of the chunk go into A.
            let mut a_end = 1;
            if chunk_len >= 2 {
                a_end = rng.randint(1, chunk_len as u64 - 1) as usize;
            }
            let a_first = sentence(chunk_start);
            let mut a = Span {
                start: a_first.start,
                len: sentence(chunk_start + a_end - 1).end - a_first.start,
            };
            let mut b;
            let is_random_next = chunk_len == 1 || rng.random() < 0.5;
            if is_random_next {
                // May be negative: then B is one segment.
                let target_b_length = target_seq_length as i64 - a.len as i64;
                let mut random_document_index = 0;
                for _ in 0..10 {
                    random_document_index = rng.randint(0, order.len() as u64 - 1) as usize;
                    if random_document_index != document_index {
                        break;
                    }
                }
                let random = docs.sentences(order[random_document_index] as usize);
                let random_start = rng.randint(0, random.len() as u64 - 1) as usize;
                let first = docs.sentence_span(random.start + random_start);
                b = Span {
                    start: first.start,
                    len: 0,
                };
                for j in random.start + random_start..random.end {
                    b.len = docs.sentence_span(j).end - b.start;
                    if b.len as i64 >= target_b_length {
                        break;
                    }
                }
                // The segments of the chunk not used go back, so they are not wasted.
                i -= chunk_len - a_end;
            } else {
                let first = sentence(chunk_start + a_end);
                b = Span {
                    start: first.start,
                    len: sentence(chunk_start + chunk_len - 1).end - first.start,
                };
            }
            truncate_seq_pair(&mut a, &mut b, max_num_tokens, rng);

            let tokens = &mut scratch.tokens;
            tokens.clear();
            tokens.push(vocab.cls);
            tokens.extend_from_slice(&docs.tokens()[a.start..a.start + a.len]);
            tokens.push(vocab.sep);
            tokens.extend_from_slice(&docs.tokens()[b.start..b.start + b.len]);
            tokens.push(vocab.sep);
            create_masked_lm_predictions(
                tokens,
                params.mask,
                vocab,
                rng,
                &mut scratch.mask,
                &mut out.masked,
            );
            let predictions = out.masked.len() - out.spans.last().map_or(0, |s| s.masked_end);
            out.longest = out.longest.max(a.len + b.len + 3);
            out.most_predictions = out.most_predictions.max(predictions);
            out.spans.push(Spans {
                a_start: a.start,
                a_len: a.len as u32,
                b_start: b.start,
                b_len: b.len as u32,
                is_random_next,
                masked_end: out.masked.len(),
            });
            chunk_len = 0;
            current_length = 0;
        }
        i += 1;
    }
}
