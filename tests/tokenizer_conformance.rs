//! Google's `FullTokenizer` output on the shared conformance set: every line, four modes,
//! tokens and ids exactly. All mismatches are collected and reported together.

mod common;

use bert::tokenizer::Tokenizer;
use serde_json::Value;

fn data(name: &str) -> std::path::PathBuf {
    common::shared_dir().join("data/tokenizer").join(name)
}

/// (mode key, vocab file, do_lower_case), as the data README defines the modes.
const MODES: [(&str, &str, bool); 4] = [
    ("lower", "vocab-uncased.txt", true),
    ("cased", "vocab-uncased.txt", false),
    ("cased_vocab", "vocab-cased.txt", false),
    ("multi_cased_vocab", "vocab-multilingual-cased.txt", false),
];

fn tokenizers() -> Vec<(&'static str, Tokenizer)> {
    MODES
        .iter()
        .map(|&(mode, vocab, lower)| {
            (
                mode,
                Tokenizer::from_vocab_file(data(vocab), lower).expect("vocab loads"),
            )
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|t| t.as_str().expect("string").to_string())
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|t| t.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn conformance_all_lines_all_modes() {
    let text = std::fs::read_to_string(data("conformance.jsonl")).expect("conformance.jsonl");
    let toks = tokenizers();
    let mut lines = 0;
    let mut mismatches = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let rec: Value = serde_json::from_str(line).expect("valid JSON line");
        let input = rec["text"].as_str().expect("text");
        lines += 1;
        for (mode, tok) in &toks {
            let want_tokens = strings(&rec[*mode]["tokens"]);
            let want_ids = ids(&rec[*mode]["ids"]);
            let got = tok.tokenize(input);
            let got_tokens: Vec<&str> = got.iter().map(|t| t.text).collect();
            let got_ids: Vec<u32> = got.iter().map(|t| t.id).collect();
            if got_tokens != want_tokens || got_ids != want_ids {
                mismatches.push(format!(
                    "line {} mode {mode} text {input:?}\n  want {want_tokens:?}\n  got  {got_tokens:?}",
                    n + 1
                ));
            }
        }
    }
    assert_eq!(lines, 5251, "conformance.jsonl should have 5,251 lines");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn hf_disagreements_follow_google() {
    let text = std::fs::read_to_string(data("hf_disagreements.jsonl")).expect("file");
    let toks = tokenizers();
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).expect("valid JSON line");
        let input = rec["text"].as_str().expect("text");
        for (mode, tok) in &toks {
            let Some(want) = rec.get(format!("google_{mode}")) else {
                continue;
            };
            let want = strings(want);
            let got: Vec<&str> = tok.tokenize(input).iter().map(|t| t.text).collect();
            checked += 1;
            if got != want {
                mismatches.push(format!("{mode} {input:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
    }
    assert!(checked >= 46, "only {checked} cases found");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn tf_bert_tiny_reference_cases() {
    let dir = common::shared_dir().join("fixtures/tf_bert_tiny");
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference/tokenization_cases.json")).expect("file"),
    )
    .expect("JSON");
    let lower = Tokenizer::from_vocab_file(dir.join("vocab.txt"), true).expect("vocab");
    let cased = Tokenizer::from_vocab_file(dir.join("vocab.txt"), false).expect("vocab");
    let cases = cases.as_array().expect("list of cases");
    assert!(!cases.is_empty());
    for case in cases {
        let input = case["text"].as_str().expect("text");
        let tok = if case["do_lower_case"].as_bool().expect("flag") {
            &lower
        } else {
            &cased
        };
        assert_eq!(
            tok.basic().tokenize(input),
            strings(&case["basic_tokens"]),
            "{input:?}"
        );
        let got = tok.tokenize(input);
        let got_tokens: Vec<&str> = got.iter().map(|t| t.text).collect();
        assert_eq!(got_tokens, strings(&case["wordpiece_tokens"]), "{input:?}");
        let got_ids: Vec<u32> = got.iter().map(|t| t.id).collect();
        assert_eq!(got_ids, ids(&case["ids"]), "{input:?}");
    }
}
