//! Vocabulary errors, encodings (specials, type ids, masks, truncation, padding), batches,
//! the UTF-8 boundary and the `bert tokenize` command.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use bert::tokenizer::{truncate_seq_pair, EncodeOptions, Padding, Tokenizer, Vocab};
use bert::Error;

const TOKENS: [&str; 12] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", ".",
];

fn tok() -> Tokenizer {
    Tokenizer::new(Vocab::from_tokens(TOKENS).unwrap(), true).unwrap()
}

#[test]
fn vocab_errors_name_the_problem() {
    let dir = std::env::temp_dir().join(format!("bert-tok-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = Vocab::from_file(dir.join("nope.txt")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(Vocab::from_file(&empty), Err(Error::Vocab(_))));
    let dup = Vocab::from_text("[UNK]\na\nb\na \n")
        .unwrap_err()
        .to_string();
    assert!(
        dup.contains("\"a\"") && dup.contains("lines 2 and 4"),
        "{dup}"
    );
    let bad = Vocab::from_bytes(b"[UNK]\nok\n\xff\n").unwrap_err();
    assert!(
        matches!(&bad, Error::InvalidUtf8 { what } if what.contains("line 3")),
        "{bad}"
    );
    // WordPiece needs [UNK]; encoding needs [CLS]/[SEP]; padding needs [PAD].
    let no_unk = Tokenizer::new(Vocab::from_tokens(["a"]).unwrap(), true).unwrap_err();
    assert!(no_unk.to_string().contains("[UNK]"));
    let t = Tokenizer::new(
        Vocab::from_tokens(["[UNK]", "[CLS]", "[SEP]"]).unwrap(),
        true,
    )
    .unwrap();
    let e = t.encode("a", None, &EncodeOptions::default()).unwrap();
    assert_eq!(e.tokens, ["[CLS]", "[UNK]", "[SEP]"]);
    let opts = EncodeOptions {
        max_seq_length: None,
        padding: Padding::Fixed(8),
    };
    assert!(t
        .encode("a", None, &opts)
        .unwrap_err()
        .to_string()
        .contains("[PAD]"));
    let t = Tokenizer::new(Vocab::from_tokens(["[UNK]"]).unwrap(), true).unwrap();
    assert!(t.encode("a", None, &EncodeOptions::default()).is_err());
    // Lines are stripped like Python's str.strip(); a CRLF file loads the same.
    let v = Vocab::from_text("[UNK]\r\n  x \r\n").unwrap();
    assert_eq!((v.len(), v.id("x")), (2, Some(1)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn encode_pair_like_convert_single_example() {
    let opts = EncodeOptions {
        max_seq_length: Some(10),
        padding: Padding::Fixed(10),
    };
    let e = tok().encode("The cat", Some("mats."), &opts).unwrap();
    assert_eq!(
        e.tokens,
        ["[CLS]", "the", "cat", "[SEP]", "mat", "##s", ".", "[SEP]", "[PAD]", "[PAD]"]
    );
    assert_eq!(e.ids, [2, 5, 6, 3, 9, 10, 11, 3, 0, 0]);
    assert_eq!(e.type_ids, [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]);
    assert_eq!(e.attention_mask, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    assert_eq!(e.special_tokens_mask, [1, 0, 0, 1, 0, 0, 0, 1, 1, 1]);
    assert_eq!(
        e.offsets,
        [
            None,
            Some((0, 3)),
            Some((4, 7)),
            None,
            Some((0, 3)),
            Some((3, 4)),
            Some((4, 5)),
            None,
            None,
            None
        ]
    );
    assert_eq!(
        e.word_ids,
        [
            None,
            Some(0),
            Some(1),
            None,
            Some(0),
            Some(0),
            Some(0),
            None,
            None,
            None
        ]
    );
}

#[test]
fn truncation_is_googles() {
    // Pair: budget max-3, pop from the longer, from B on ties.
    let opts = EncodeOptions {
        max_seq_length: Some(7),
        padding: Padding::None,
    };
    let e = tok()
        .encode("the cat sat", Some("on the mat"), &opts)
        .unwrap();
    assert_eq!(
        e.tokens,
        ["[CLS]", "the", "cat", "[SEP]", "on", "the", "[SEP]"]
    );
    let e = tok().encode("the cat sat on", Some("mat"), &opts).unwrap();
    assert_eq!(
        e.tokens,
        ["[CLS]", "the", "cat", "sat", "[SEP]", "mat", "[SEP]"]
    );
    // Single: keep the first max-2.
    let opts = EncodeOptions {
        max_seq_length: Some(4),
        padding: Padding::None,
    };
    let e = tok().encode("the cat sat on", None, &opts).unwrap();
    assert_eq!(e.tokens, ["[CLS]", "the", "cat", "[SEP]"]);
    assert_eq!(truncate_seq_pair(4, 4, 5), (3, 2));
    let tiny = EncodeOptions {
        max_seq_length: Some(2),
        padding: Padding::None,
    };
    assert!(matches!(
        tok().encode("a", Some("b"), &tiny),
        Err(Error::InvalidArgument(_))
    ));
    let fixed = EncodeOptions {
        max_seq_length: None,
        padding: Padding::Fixed(3),
    };
    assert!(matches!(
        tok().encode("the cat", None, &fixed),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn batch_pads_to_longest_and_equals_one_by_one() {
    let inputs = [
        ("the cat", None),
        ("the cat sat on the mat.", Some("cats")),
        ("", None),
    ];
    let opts = EncodeOptions {
        max_seq_length: None,
        padding: Padding::Longest,
    };
    let batch = tok().encode_batch(&inputs, &opts, 2).unwrap();
    assert_eq!(batch.len(), 3);
    assert!(batch.iter().all(|e| e.len() == 12));
    assert_eq!(batch[2].tokens[..3], ["[CLS]", "[SEP]", "[PAD]"]);
    let one = EncodeOptions::default();
    for (e, &(a, b)) in batch.iter().zip(&inputs) {
        let single = tok().encode(a, b, &one).unwrap();
        assert_eq!(e.ids[..single.len()], single.ids[..]);
        assert_eq!(e.offsets[..single.len()], single.offsets[..]);
    }
    assert!(tok().encode_batch(&[], &opts, 4).unwrap().is_empty());
}

#[test]
fn invalid_utf8_is_rejected_at_the_boundary() {
    let t = tok();
    assert!(matches!(
        t.tokenize_bytes(b"the \xffcat"),
        Err(Error::InvalidUtf8 { .. })
    ));
    assert!(matches!(
        t.encode_bytes(b"the", Some(b"\xc3"), &EncodeOptions::default()),
        Err(Error::InvalidUtf8 { .. })
    ));
    assert_eq!(t.tokenize_bytes(b"the cat").unwrap().len(), 2);
}

fn run_cli(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bert"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that rejects its flags exits before reading stdin: a broken pipe is that
    // race, and the exit status and stderr below say what happened.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn cli_matches_conformance_lines() {
    let dir = common::shared_dir().join("data/tokenizer");
    let text = std::fs::read_to_string(dir.join("conformance.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .step_by(97)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut input = String::new();
    for r in &records {
        input.push_str(r["text"].as_str().unwrap());
        input.push('\n');
    }
    let vocab = dir.join("vocab-cased.txt");
    for (mode, lower) in [("cased_vocab", "false")] {
        let (ok, out, err) = run_cli(
            &[
                "tokenize",
                "--vocab-file",
                vocab.to_str().unwrap(),
                &format!("--do_lower_case={lower}"),
            ],
            input.as_bytes(),
        );
        assert!(ok, "{err}");
        let got: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got.len(), records.len());
        for (g, r) in got.iter().zip(&records) {
            assert_eq!(g["tokens"], r[mode]["tokens"], "{:?}", r["text"]);
            assert_eq!(g["ids"], r[mode]["ids"], "{:?}", r["text"]);
        }
    }
    // Default is do_lower_case=true; CR stays data (dropped by clean-up as whitespace).
    let uncased = dir.join("vocab-uncased.txt");
    let (ok, out, _) = run_cli(
        &["tokenize", "--vocab_file", uncased.to_str().unwrap()],
        b"Hello\r\n",
    );
    assert!(ok);
    assert_eq!(out, "{\"tokens\": [\"hello\"], \"ids\": [7592]}\n");
}

#[test]
fn cli_rejects_invalid_utf8_and_unknown_flags() {
    let vocab = common::shared_dir().join("data/tokenizer/vocab-uncased.txt");
    let v = vocab.to_str().unwrap();
    let (ok, out, err) = run_cli(&["tokenize", "--vocab_file", v], b"fine\nbad \xff\n");
    assert!(!ok);
    assert_eq!(out.lines().count(), 1);
    assert!(err.contains("line 2"), "{err}");
    let (ok, _, err) = run_cli(
        &["tokenize", "--vocab_file", v, "--do_lower_cas=false"],
        b"",
    );
    assert!(!ok && err.contains("do_lower_cas"), "{err}");
    let (ok, _, err) = run_cli(&["tokenize"], b"");
    assert!(!ok && err.contains("vocab_file"), "{err}");
}
