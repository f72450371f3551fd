//! Bounded work on unbounded input (issue 21 cases 3 and 7): truncating encodes stop
//! tokenizing once `max_seq_length` tokens exist and give exactly what truncating the full
//! tokenization gives (checked on every line of the shared conformance data, alone and in
//! pairs, at several lengths); a vocabulary file is read up to a bound; a huge fixed padding
//! is an error, not an abort.

mod common;

use bert::tokenizer::{truncate_seq_pair, EncodeOptions, Padding, Tokenizer, Vocab};
use serde_json::Value;

fn data(name: &str) -> std::path::PathBuf {
    common::shared_dir().join("data/tokenizer").join(name)
}

/// `[CLS] a [SEP] (b [SEP])` ids and offsets from the full tokenizations, truncated as
/// `convert_single_example` truncates: the reference the early-stopping encode must equal.
fn reference(
    tok: &Tokenizer,
    a: &str,
    b: Option<&str>,
    max: usize,
) -> (Vec<u32>, Vec<Option<(usize, usize)>>) {
    let ta = tok.tokenize(a);
    let tb = b.map(|b| tok.tokenize(b)).unwrap_or_default();
    let (ka, kb) = match b {
        None => (ta.len().min(max - 2), 0),
        Some(_) => truncate_seq_pair(ta.len(), tb.len(), max - 3),
    };
    let cls = tok.vocab().id("[CLS]").unwrap();
    let sep = tok.vocab().id("[SEP]").unwrap();
    let mut ids = vec![cls];
    let mut offsets = vec![None];
    for t in &ta[..ka] {
        ids.push(t.id);
        offsets.push(Some((t.start, t.end)));
    }
    ids.push(sep);
    offsets.push(None);
    if b.is_some() {
        for t in &tb[..kb] {
            ids.push(t.id);
            offsets.push(Some((t.start, t.end)));
        }
        ids.push(sep);
        offsets.push(None);
    }
    (ids, offsets)
}

#[test]
fn truncating_encodes_equal_the_truncated_full_tokenization() {
    let text = std::fs::read_to_string(data("conformance.jsonl")).unwrap();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    let mut checked = 0;
    for (vocab, lower) in [("vocab-uncased.txt", true), ("vocab-cased.txt", false)] {
        let tok = Tokenizer::from_vocab_file(data(vocab), lower).unwrap();
        for (i, a) in lines.iter().enumerate() {
            let b = &lines[(i * 7 + 3) % lines.len()];
            for max in [3, 5, 8, 16, 64, 512] {
                let opts = EncodeOptions {
                    max_seq_length: Some(max),
                    padding: Padding::None,
                };
                for pair in [None, Some(b.as_str())] {
                    let e = tok.encode(a, pair, &opts).unwrap();
                    let (ids, offsets) = reference(&tok, a, pair, max);
                    assert_eq!(
                        (e.ids, e.offsets),
                        (ids, offsets),
                        "line {i} max {max} {pair:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 5251 * 6 * 2);
}

#[test]
fn a_huge_text_encodes_as_its_head() {
    // 2 million words (the unit test `tokenize_until_stops_at_the_limit` checks that only the
    // head is read; `scripts/bench_tokenizer.sh` shows the time).
    let tok = Tokenizer::from_vocab_file(data("vocab-uncased.txt"), true).unwrap();
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(200_000);
    let opts = EncodeOptions {
        max_seq_length: Some(128),
        padding: Padding::None,
    };
    let e = tok.encode(&text, None, &opts).unwrap();
    let (ids, _) = reference(&tok, &text[..1000], None, 128);
    assert_eq!(e.ids, ids);
}

#[test]
fn a_huge_fixed_padding_is_an_error() {
    let tok = Tokenizer::new(
        Vocab::from_tokens(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "a"]).unwrap(),
        true,
    )
    .unwrap();
    let opts = EncodeOptions {
        max_seq_length: Some(8),
        padding: Padding::Fixed(100_000_000_000),
    };
    let e = tok.encode("a a", None, &opts).unwrap_err().to_string();
    assert!(e.contains("padding"), "{e}");
}

#[test]
fn a_vocabulary_read_is_bounded() {
    // `--vocab_file /dev/zero` grew without limit (6.8 GB after 30 s).
    if std::path::Path::new("/dev/zero").exists() {
        let e = Vocab::from_file("/dev/zero").unwrap_err().to_string();
        assert!(e.contains("/dev/zero") && e.contains("larger than"), "{e}");
    }
}
