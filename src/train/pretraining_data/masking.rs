//! `create_masked_lm_predictions`: choose up to `num_to_predict` candidate positions (whole
//! words when `do_whole_word_mask`, grouping a `##` piece with the piece before it) in a
//! shuffled order, and replace each with `[MASK]` 80% of the time, itself 10%, a random
//! vocabulary word 10%, drawing from the same generator in the same order as Google's code.

use super::random::PyRandom;
use crate::tokenizer::{Tokenizer, CLS, MASK, SEP};
use crate::Result;

/// What masking needs to know of the vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct VocabInfo {
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
    /// `len(vocab_words)`: random replacements are drawn from `0..len`.
    pub len: u64,
    /// Per id: does the token start with `##` (a word's continuation piece)?
    pub continuation: Vec<bool>,
}

impl VocabInfo {
    pub fn new(tokenizer: &Tokenizer) -> Result<VocabInfo> {
        let vocab = tokenizer.vocab();
        let needed = "create_pretraining_data";
        Ok(VocabInfo {
            cls: vocab.require(CLS, needed)?,
            sep: vocab.require(SEP, needed)?,
            mask: vocab.require(MASK, needed)?,
            len: vocab.len() as u64,
            continuation: (0..vocab.len())
                .map(|id| {
                    u32::try_from(id)
                        .ok()
                        .and_then(|id| vocab.token(id))
                        .is_some_and(|t| t.starts_with("##"))
                })
                .collect(),
        })
    }

    fn is_continuation(&self, id: u32) -> bool {
        self.continuation.get(id as usize).copied().unwrap_or(false)
    }
}

/// Reusable buffers of [`create_masked_lm_predictions`].
#[derive(Debug, Default)]
pub(crate) struct MaskScratch {
    /// Candidate positions, grouped: group `g` is `indexes[groups[g].0..groups[g].1]`.
    indexes: Vec<u32>,
    groups: Vec<(u32, u32)>,
    covered: Vec<bool>,
    /// (position, replacement) of the chosen predictions.
    masked: Vec<(u32, u32)>,
}

/// The masking flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskParams {
    pub masked_lm_prob: f64,
    pub max_predictions_per_seq: usize,
    pub do_whole_word_mask: bool,
}

/// Chooses the masked positions of `tokens` (`[CLS] A [SEP] B [SEP]`, ids) and their
/// replacements; appends `(position, replacement id)` sorted by position to `out`. The
/// label of each is `tokens[position]`.
pub(crate) fn create_masked_lm_predictions(
    tokens: &[u32],
    params: MaskParams,
    vocab: &VocabInfo,
    rng: &mut PyRandom,
    scratch: &mut MaskScratch,
    out: &mut Vec<(u32, u32)>,
) {
    let MaskScratch {
        indexes,
        groups,
        covered,
        masked,
    } = scratch;
    indexes.clear();
    groups.clear();
    for (i, &token) in tokens.iter().enumerate() {
        if token == vocab.cls || token == vocab.sep {
            continue;
        }
        let i = i as u32;
        indexes.push(i);
        match groups.last_mut() {
            Some(last) if params.do_whole_word_mask && vocab.is_continuation(token) => {
                last.1 = indexes.len() as u32
            }
            _ => groups.push((indexes.len() as u32 - 1, indexes.len() as u32)),
        }
    }
    rng.shuffle(groups);

    // `int(round(len(tokens) * masked_lm_prob))`: Python 3 rounds half to even.
    let rounded = (tokens.len() as f64 * params.masked_lm_prob).round_ties_even();
    let num_to_predict = params
        .max_predictions_per_seq
        .min((rounded as usize).max(1));

    covered.clear();
    covered.resize(tokens.len(), false);
    masked.clear();
    for &(start, end) in groups.iter() {
        if masked.len() >= num_to_predict {
            break;
        }
        let group = &indexes[start as usize..end as usize];
        // A whole word that would exceed the budget is skipped, not cut.
        if masked.len() + group.len() > num_to_predict {
            continue;
        }
        if group.iter().any(|&i| covered[i as usize]) {
            continue;
        }
        for &index in group {
            covered[index as usize] = true;
            let original = tokens[index as usize];
            let replacement = if rng.random() < 0.8 {
                vocab.mask
            } else if rng.random() < 0.5 {
                original
            } else {
                rng.randint(0, vocab.len - 1) as u32
            };
            masked.push((index, replacement));
        }
    }
    masked.sort_unstable_by_key(|&(index, _)| index);
    out.extend_from_slice(masked);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> VocabInfo {
        // ids: 0 [PAD] 1 [CLS] 2 [SEP] 3 [MASK] 4 "a" 5 "##b"
        VocabInfo {
            cls: 1,
            sep: 2,
            mask: 3,
            len: 6,
            continuation: vec![false, false, false, false, false, true],
        }
    }

    #[test]
    fn never_masks_specials_and_respects_the_budget() {
        let tokens = [1, 4, 5, 5, 4, 4, 2, 4, 5, 2];
        for wwm in [false, true] {
            for seed in 0..50 {
                let params = MaskParams {
                    masked_lm_prob: 0.5,
                    max_predictions_per_seq: 3,
                    do_whole_word_mask: wwm,
                };
                let mut out = Vec::new();
                let mut rng = PyRandom::new(seed);
                let mut scratch = MaskScratch::default();
                create_masked_lm_predictions(
                    &tokens,
                    params,
                    &vocab(),
                    &mut rng,
                    &mut scratch,
                    &mut out,
                );
                assert!(!out.is_empty() && out.len() <= 3);
                assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
                for &(p, _) in &out {
                    assert!(![0, 6, 9].contains(&p), "special at {p}");
                }
                if wwm {
                    // A masked "##b" always comes with its word's first piece.
                    for &(p, _) in &out {
                        if tokens[p as usize] == 5 {
                            assert!(out.iter().any(|&(q, _)| q == p - 1), "{out:?}");
                        }
                    }
                }
            }
        }
    }
}
