//! Truncation exactly as Google's `run_classifier.py` (`_truncate_seq_pair`) and
//! `convert_single_example` do it.

/// `_truncate_seq_pair(tokens_a, tokens_b, max_length)` on lengths: removes one token at a
/// time from the end of the longer sequence, from B when they are equally long, until the
/// total fits. Returns the new `(len_a, len_b)`.
pub fn truncate_seq_pair(mut len_a: usize, mut len_b: usize, max_length: usize) -> (usize, usize) {
    while len_a + len_b > max_length {
        if len_a > len_b {
            len_a -= 1;
        } else {
            len_b -= 1;
        }
    }
    (len_a, len_b)
}

/// Lengths to keep of A and B for `max_seq_length` including the specials: a single
/// sequence keeps its first `max_seq_length - 2` tokens (`[CLS]`, `[SEP]`), a pair shares
/// `max_seq_length - 3` by [`truncate_seq_pair`]. `None` if `max_seq_length` cannot even hold
/// the special tokens.
pub(crate) fn keep_lengths(
    len_a: usize,
    len_b: Option<usize>,
    max_seq_length: usize,
) -> Option<(usize, usize)> {
    match len_b {
        None => Some((len_a.min(max_seq_length.checked_sub(2)?), 0)),
        Some(len_b) => Some(truncate_seq_pair(
            len_a,
            len_b,
            max_seq_length.checked_sub(3)?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_from_the_longer_and_from_b_on_ties() {
        assert_eq!(truncate_seq_pair(5, 5, 8), (4, 4));
        assert_eq!(truncate_seq_pair(5, 5, 7), (4, 3));
        assert_eq!(truncate_seq_pair(10, 2, 6), (4, 2));
        assert_eq!(truncate_seq_pair(2, 10, 6), (2, 4));
        assert_eq!(truncate_seq_pair(3, 3, 10), (3, 3));
        assert_eq!(keep_lengths(10, None, 5), Some((3, 0)));
        assert_eq!(keep_lengths(10, Some(1), 2), None);
        assert_eq!(keep_lengths(1, None, 1), None);
    }
}
