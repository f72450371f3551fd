//! Invariants of the tokenizer over arbitrary Unicode text (proptest). Case counts are kept
//! modest so the suite stays quick on two cores.

mod common;

use std::sync::OnceLock;

use bert::tokenizer::{EncodeOptions, Padding, Token, Tokenizer};
use proptest::prelude::*;

fn uncased() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let v = common::shared_dir().join("data/tokenizer/vocab-uncased.txt");
        Tokenizer::from_vocab_file(v, true).unwrap()
    })
}

fn multilingual() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let v = common::shared_dir().join("data/tokenizer/vocab-multilingual-cased.txt");
        Tokenizer::from_vocab_file(v, false).unwrap()
    })
}

/// Characters that exercise every stage: ASCII, separators, controls, accents and marks,
/// Σ, İ, Hangul, CJK (both sides of Google's ranges), punctuation, private use.
const INTERESTING: &[char] = &[
    'a',
    'B',
    'z',
    'Q',
    '0',
    ' ',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u{0}',
    '\u{7}',
    '\u{85}',
    '\u{a0}',
    '\u{200b}',
    '\u{2028}',
    '\u{3000}',
    '\u{fffd}',
    '\u{ad}',
    'é',
    'É',
    '\u{301}',
    '\u{308}',
    '\u{316}',
    '\u{1d165}',
    'Σ',
    'σ',
    'Ο',
    'İ',
    'ß',
    'ﬁ',
    '한',
    '\u{1100}',
    '中',
    '\u{2b820}',
    '\u{2b8a0}',
    '\u{f900}',
    '.',
    ',',
    '!',
    '-',
    '\'',
    '`',
    '¿',
    '«',
    '\u{e000}',
    'Ǆ',
    'ǅ',
    '𝐀',
];

fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => proptest::sample::select(INTERESTING),
        2 => proptest::char::range('a', 'z'),
        1 => any::<char>(),
    ];
    proptest::collection::vec(ch, 0..48).prop_map(|v| v.into_iter().collect())
}

fn tokenizers() -> [&'static Tokenizer; 2] {
    [uncased(), multilingual()]
}

/// Python `str.split()` separators that survive clean-up (what splits words).
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c.is_whitespace() && !c.is_control())
}

fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (is_separator(c), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// Google's `_truncate_seq_pair` on real lists, popping like the Python.
fn google_truncate<T: Clone>(a: &[T], b: &[T], max_length: usize) -> (Vec<T>, Vec<T>) {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    while a.len() + b.len() > max_length {
        if a.len() > b.len() {
            a.pop();
        } else {
            b.pop();
        }
    }
    (a, b)
}

fn sigma_folded(s: &str) -> String {
    s.replace('ς', "σ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ids_and_offsets_are_sound(s in text()) {
        for tok in tokenizers() {
            let tokens = tok.tokenize(&s);
            let mut last = (0, 0);
            for t in &tokens {
                prop_assert!((t.id as usize) < tok.vocab().len());
                prop_assert_eq!(Some(t.text), tok.vocab().token(t.id));
                prop_assert!(t.start < t.end && t.end <= s.len(), "{:?}", t);
                prop_assert!(s.is_char_boundary(t.start) && s.is_char_boundary(t.end));
                prop_assert!(t.start >= last.0 && t.word >= last.1, "{:?} after {:?}", t, last);
                last = (t.start, t.word);
            }
        }
    }

    #[test]
    fn token_texts_are_the_normalized_spans(s in text()) {
        for tok in tokenizers() {
            let tokens = tok.tokenize(&s);
            // Tokens whose spans overlap (one character normalized into several pieces) are
            // checked together.
            let mut i = 0;
            while i < tokens.len() {
                let (start, mut end) = (tokens[i].start, tokens[i].end);
                let mut j = i + 1;
                while j < tokens.len() && tokens[j].start < end {
                    end = end.max(tokens[j].end);
                    j += 1;
                }
                let group = &tokens[i..j];
                if group.iter().all(|t| t.text != "[UNK]") {
                    let joined: String = group.iter().map(|t| t.text.trim_start_matches("##")).collect();
                    // Final sigma depends on context outside the span: compare σ and ς as one.
                    prop_assert_eq!(
                        sigma_folded(&joined),
                        sigma_folded(&tok.normalize(&s[start..end])),
                        "span {}..{} of {:?}", start, end, s
                    );
                }
                i = j;
            }
        }
    }

    #[test]
    fn text_is_the_concatenation_of_its_words(s in text()) {
        for tok in tokenizers() {
            let whole = tok.tokenize(&s);
            let mut joined: Vec<(u32, usize, usize)> = Vec::new();
            let mut word_of_token = Vec::new();
            for (w, (offset, word)) in words(&s).into_iter().enumerate() {
                for t in tok.tokenize(word) {
                    prop_assert_eq!(t.word, 0);
                    joined.push((t.id, t.start + offset, t.end + offset));
                    word_of_token.push(w);
                }
            }
            let got: Vec<(u32, usize, usize)> = whole.iter().map(|t| (t.id, t.start, t.end)).collect();
            prop_assert_eq!(got, joined);
            // Tokens of one input word share one word index, and indices increase with words.
            for k in 1..whole.len() {
                let same = word_of_token[k] == word_of_token[k - 1];
                prop_assert_eq!(same, whole[k].word == whole[k - 1].word);
            }
        }
    }

    #[test]
    fn normalization_is_idempotent(s in text()) {
        for tok in tokenizers() {
            for (_, w) in words(&s) {
                let once = tok.normalize(w);
                prop_assert_eq!(sigma_folded(&tok.normalize(&once)), sigma_folded(&once));
            }
        }
    }

    #[test]
    fn pair_truncation_is_googles(a in text(), b in text(), max in 3usize..40) {
        let tok = uncased();
        let opts = EncodeOptions { max_seq_length: Some(max), padding: Padding::None };
        let e = tok.encode(&a, Some(&b), &opts).unwrap();
        prop_assert!(e.len() <= max);
        let ids = |t: Vec<Token<'_>>| t.iter().map(|t| t.id).collect::<Vec<u32>>();
        let (ta, tb) = google_truncate(&ids(tok.tokenize(&a)), &ids(tok.tokenize(&b)), max - 3);
        let cls = tok.vocab().id("[CLS]").unwrap();
        let sep = tok.vocab().id("[SEP]").unwrap();
        let mut want = vec![cls];
        want.extend(&ta);
        want.push(sep);
        want.extend(&tb);
        want.push(sep);
        prop_assert_eq!(&e.ids, &want);
        let type_ones = e.type_ids.iter().filter(|&&t| t == 1).count();
        prop_assert_eq!(type_ones, tb.len() + 1);
    }

    #[test]
    fn batch_equals_one_by_one(
        inputs in proptest::collection::vec((text(), proptest::option::of(text())), 0..7),
        threads in 1usize..4,
        longest in any::<bool>(),
    ) {
        let tok = uncased();
        let pairs: Vec<(&str, Option<&str>)> =
            inputs.iter().map(|(a, b)| (a.as_str(), b.as_deref())).collect();
        let padding = if longest { Padding::Longest } else { Padding::None };
        let opts = EncodeOptions { max_seq_length: Some(24), padding };
        let batch = tok.encode_batch(&pairs, &opts, threads).unwrap();
        prop_assert_eq!(batch.len(), pairs.len());
        let single_opts = EncodeOptions { max_seq_length: Some(24), padding: Padding::None };
        let longest_len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        for (e, &(a, b)) in batch.iter().zip(&pairs) {
            let mut one = tok.encode(a, b, &single_opts).unwrap();
            if longest {
                let fixed = EncodeOptions { max_seq_length: Some(24), padding: Padding::Fixed(longest_len) };
                one = tok.encode(a, b, &fixed).unwrap();
            }
            prop_assert_eq!(e, &one);
        }
    }
}
