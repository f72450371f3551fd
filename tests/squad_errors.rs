//! Bad SQuAD input gives errors naming the file and the question, never a panic: malformed
//! and mutated JSON (standing in for fuzzing [`read_squad_examples_from_bytes`]), answers
//! outside their context, empty contexts, impossible flags, bad lengths and strides, and
//! logits that do not fit their features.

mod common;

use bert::squad::{
    compute_predictions, convert_examples_to_features, evaluate_v1, read_squad_examples,
    read_squad_examples_from_bytes, Dataset, FeatureOptions, PredictOptions, PyDict, RawResult,
};
use bert::tokenizer::Tokenizer;

fn tokenizer() -> Tokenizer {
    let vocab = common::shared_dir().join("data/tokenizer/vocab-uncased.txt");
    Tokenizer::from_vocab_file(vocab, true).unwrap()
}

fn small() -> FeatureOptions {
    FeatureOptions {
        max_seq_length: 64,
        doc_stride: 16,
        max_query_length: 16,
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_files_never_panic() {
    let path = common::shared_dir().join("fixtures/squad_reference/v2.0/input_subset.json");
    let original = std::fs::read(&path).unwrap();
    let tok = tokenizer();
    let mut rng = Rng(16);
    let (mut ok, mut err) = (0, 0);
    for round in 0..600 {
        let mut bytes = original.clone();
        match round % 3 {
            0 => bytes.truncate(rng.below(bytes.len())),
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
            }
            _ => {
                // Digits changed: answer_start values move, often out of their context.
                for _ in 0..4 {
                    let i = rng.below(bytes.len());
                    if bytes[i].is_ascii_digit() {
                        bytes[i] = b'0' + rng.below(10) as u8;
                    }
                }
            }
        }
        for (is_training, v2) in [(true, true), (true, false), (false, true)] {
            let read = read_squad_examples_from_bytes(&bytes, "mutated.json", is_training, v2);
            match read {
                Err(e) => {
                    assert!(e.to_string().contains("mutated.json"), "{e}");
                    err += 1;
                }
                Ok(r) => {
                    ok += 1;
                    let _ = convert_examples_to_features(&r.examples, &tok, &small(), is_training);
                }
            }
        }
    }
    // Both kinds of outcome were exercised.
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}

fn one(context: &str, answer: &str, start: i64) -> Vec<u8> {
    serde_json::json!({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [
            {"id": "qid-7", "question": "Who?", "is_impossible": false,
             "answers": [{"text": answer, "answer_start": start}]}]}]}]})
    .to_string()
    .into_bytes()
}

#[test]
fn errors_name_the_file_and_question() {
    let cases: &[(Vec<u8>, bool, &str)] = &[
        (b"{\"data\": [".to_vec(), false, "not a SQuAD JSON file"),
        (b"{\"data\": 3}".to_vec(), false, "not a SQuAD JSON file"),
        (b"\xff\xfe".to_vec(), false, "not a SQuAD JSON file"),
        (one("John Smith", "Smith", 9), true, "outside the context"),
        (one("John Smith", "Smith", 400), true, "outside the context"),
        (one("", "Smith", 0), true, "context is empty"),
        (one("   ", "Smith", 0), false, "context is empty"),
    ];
    for (bytes, is_training, want) in cases {
        let msg = read_squad_examples_from_bytes(bytes, "bad.json", *is_training, true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bad.json") && msg.contains(want), "{msg}");
        if !want.starts_with("not a") {
            assert!(msg.contains("qid-7"), "{msg}");
        }
    }
    let missing = std::path::Path::new("/nonexistent/dev.json");
    let msg = read_squad_examples(missing, false, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/dev.json"), "{msg}");
}

#[test]
fn a_context_of_control_characters_has_no_tokens() {
    // U+200B is a word to read_squad_examples but nothing to the tokenizer.
    let bytes = one("\u{200b} \u{200c}", "\u{200b}", 0);
    let read = read_squad_examples_from_bytes(&bytes, "zw.json", false, false).unwrap();
    let msg = convert_examples_to_features(&read.examples, &tokenizer(), &small(), false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("qid-7") && msg.contains("no WordPiece tokens"),
        "{msg}"
    );
}

#[test]
fn bad_lengths_and_strides() {
    let bytes = one("John Smith went home.", "Smith", 5);
    let read = read_squad_examples_from_bytes(&bytes, "ok.json", true, true).unwrap();
    let tok = tokenizer();
    for (max_seq_length, doc_stride, max_query_length, want) in [
        (64, 0, 16, "doc_stride (0)"),
        // The smallest window is 64 - 16 - 3 = 45 tokens.
        (64, 45, 16, "doc_stride (45)"),
        (19, 1, 16, "max_seq_length (19)"),
    ] {
        let opts = FeatureOptions {
            max_seq_length,
            doc_stride,
            max_query_length,
        };
        let msg = convert_examples_to_features(&read.examples, &tok, &opts, true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(want), "{msg}");
    }
    let opts = FeatureOptions {
        doc_stride: 44,
        ..small()
    };
    assert!(convert_examples_to_features(&read.examples, &tok, &opts, true).is_ok());
}

#[test]
fn logits_that_do_not_fit() {
    let bytes = one("John Smith went home.", "Smith", 5);
    let read = read_squad_examples_from_bytes(&bytes, "ok.json", false, true).unwrap();
    let features =
        convert_examples_to_features(&read.examples, &tokenizer(), &small(), false).unwrap();
    let id = features[0].unique_id;
    let opts = PredictOptions {
        version_2_with_negative: true,
        ..PredictOptions::default()
    };
    let good = RawResult {
        unique_id: id,
        start_logits: vec![0.5; 64],
        end_logits: vec![0.25; 64],
    };
    let mut nan = good.clone();
    nan.end_logits[3] = f32::NAN;
    let short = RawResult {
        start_logits: vec![0.0; 3],
        ..good.clone()
    };
    let other = RawResult {
        unique_id: id + 1,
        ..good.clone()
    };
    for (results, want) in [
        (vec![nan], "not finite"),
        (vec![short], "3 start"),
        (vec![other], "no logits"),
    ] {
        let msg = compute_predictions(&read.examples, &features, &results, &opts)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("qid-7") && msg.contains(want), "{msg}");
    }
    // v2 without features for a question (Google: IndexError).
    let msg = compute_predictions(&read.examples, &[], std::slice::from_ref(&good), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("qid-7"), "{msg}");
    // Equal logits everywhere still give an answer (and the null one for v2).
    let p = compute_predictions(&read.examples, &features, &[good], &opts).unwrap();
    assert_eq!(p.predictions[0].nbest.last().unwrap().text, "");
    // The null score equals the best span's (0.75): not above the threshold 0.0, so the
    // span is predicted.
    assert_eq!(p.predictions[0].null_odds, Some(0.0));
    assert_eq!(p.predictions[0].text, "John");
    let zero = PredictOptions {
        n_best_size: 0,
        ..opts
    };
    assert!(compute_predictions(&read.examples, &features, &[], &zero).is_err());
}

#[test]
fn evaluation_needs_answers() {
    let bytes = br#"{"data": [{"paragraphs": [{"context": "a", "qas": [
        {"id": "q1", "question": "?", "answers": []}]}]}]}"#;
    let data = Dataset::from_bytes(bytes, "gold.json").unwrap();
    let preds: PyDict<String> = [("q1".to_string(), "a".to_string())].into_iter().collect();
    let msg = evaluate_v1(&data, &preds).unwrap_err().to_string();
    assert!(msg.contains("gold.json") && msg.contains("q1"), "{msg}");
}
