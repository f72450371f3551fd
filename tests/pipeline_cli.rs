//! Text in, vectors out, end to end: the `Pipeline` (tokenizer + model) and the `bert embed`
//! and `bert extract-features` commands, against references made by other code:
//! - all-MiniLM-L6-v2 embeddings from the NumPy reference (`tests/data/minilm_reference.*`,
//!   ids from Hugging Face `tokenizers`), tolerance 1e-4 as in tests/model_minilm.rs;
//! - `extract_features.jsonl` written by Google's `extract_features.py` on `tf_bert_tiny`.

mod common;

use common::max_abs_diff;

use std::io::Write;
use std::process::{Command, Stdio};

use bert::{Context, EmbedOptions, Pipeline, Pooling};
use serde_json::Value;

#[test]
fn pipeline_embeds_like_sentence_transformers() {
    let pipeline = Pipeline::load(common::minilm_dir(), None).unwrap();
    assert!(
        pipeline.tokenizer().do_lower_case(),
        "from tokenizer_config.json"
    );
    assert_eq!(
        pipeline.max_seq_length(),
        256,
        "from sentence_bert_config.json"
    );
    let singles: Vec<common::MinilmSentence> = common::minilm_reference()
        .into_iter()
        .filter(|r| r.text.len() == 1)
        .collect();
    assert!(singles.len() >= 20);
    let texts: Vec<&str> = singles.iter().map(|r| r.text[0].as_str()).collect();

    // Our tokenizer gives Hugging Face's ids on these sentences.
    let batch = pipeline.encode(
        &texts.iter().map(|t| (*t, None)).collect::<Vec<_>>(),
        256,
        2,
    );
    for (r, e) in singles.iter().zip(&batch.unwrap().0) {
        let real: Vec<u32> = e
            .ids
            .iter()
            .zip(&e.attention_mask)
            .filter(|(_, &m)| m == 1)
            .map(|(&id, _)| id)
            .collect();
        assert_eq!(real, r.ids, "ids of {:?}", r.text);
    }

    // Batched in uneven groups (padding differs per group): every vector matches.
    let mut ctx = Context::new(2);
    let opts = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
        batch_size: 7,
        ..EmbedOptions::default()
    };
    let got = pipeline.embed(&mut ctx, &texts, &opts).unwrap();
    let mut worst = 0.0f32;
    for (r, v) in singles.iter().zip(got.chunks_exact(384)) {
        worst = worst.max(max_abs_diff(v, &r.embedding));
    }
    println!("max abs diff of {} embeddings: {worst:e}", singles.len());
    assert!(worst <= 1e-4, "max abs diff {worst}");
}

fn bert() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bert"))
}

#[test]
fn embed_command_writes_one_vector_per_line() {
    let refs = common::minilm_reference();
    let input = format!("{}\n{}\n", refs[0].text[0], refs[1].text[0]);
    let mut child = bert()
        .args(["embed", "--model"])
        .arg(common::minilm_dir())
        .args(["--pooling", "mean", "--normalize"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Vec<f32>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (v, r) in lines.iter().zip(&refs) {
        assert!(max_abs_diff(v, &r.embedding) <= 1e-4);
    }
}

#[test]
fn embed_command_rejects_bad_flags_and_input() {
    let out = bert()
        .args(["embed", "--model"])
        .arg(common::minilm_dir())
        .args(["--pooling", "median"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("median"));

    let mut child = bert()
        .args(["embed", "--model"])
        .arg(common::minilm_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    feed(&mut child, b"fine\nbad \xff byte\n");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

/// Replaces every number by `N`, so the remaining text (keys, order, separators, escaped
/// tokens) can be compared byte for byte.
fn skeleton(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_number = false;
    for c in s.chars() {
        let numeric = c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | '+') && in_number;
        let starts = c.is_ascii_digit() || (c == '-' && !in_number);
        if numeric || (starts && c == '-') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// `bert extract-features` on the fixture's input with Google's three model flags.
fn extract_features(output_file: &str) -> Command {
    let fixture = common::shared_dir().join("fixtures/tf_bert_tiny");
    let mut cmd = bert();
    cmd.arg("extract-features")
        .arg(format!(
            "--input_file={}",
            fixture
                .join("reference/extract_features_input.txt")
                .display()
        ))
        .arg(format!("--output_file={output_file}"))
        .arg(format!(
            "--vocab_file={}",
            fixture.join("vocab.txt").display()
        ))
        .arg(format!(
            "--bert_config_file={}",
            fixture.join("bert_config.json").display()
        ))
        .arg(format!(
            "--init_checkpoint={}",
            fixture.join("bert_model.ckpt").display()
        ));
    cmd
}

#[test]
fn extract_features_reproduces_googles_output() {
    let fixture = common::shared_dir().join("fixtures/tf_bert_tiny");
    let reference = fixture.join("reference");
    let out_file = std::env::temp_dir().join(format!("libbert-ef-{}.jsonl", std::process::id()));
    let status = extract_features(&out_file.display().to_string())
        .args(["--layers=-1,-2", "--max_seq_length=128", "--batch_size=8"])
        .args(["--do_lower_case=True", "--use_tpu=False"])
        .status()
        .unwrap();
    assert!(status.success());
    let ours = std::fs::read_to_string(&out_file).unwrap();
    std::fs::remove_file(&out_file).ok();
    let theirs = std::fs::read_to_string(reference.join("extract_features.jsonl")).unwrap();

    // Same keys, order, separators, tokens and escapes.
    assert_eq!(skeleton(&ours), skeleton(&theirs));
    // Same values to the model tolerance (1e-5; our f32 vs TF f32 differ by up to ~7e-6
    // before rounding to 6 decimals, so the last printed digit may differ).
    let mut worst = 0.0f64;
    for (a, b) in ours.lines().zip(theirs.lines()) {
        let (a, b): (Value, Value) = (
            serde_json::from_str(a).unwrap(),
            serde_json::from_str(b).unwrap(),
        );
        for (fa, fb) in a["features"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["features"].as_array().unwrap())
        {
            assert_eq!(fa["token"], fb["token"]);
            for (la, lb) in fa["layers"]
                .as_array()
                .unwrap()
                .iter()
                .zip(fb["layers"].as_array().unwrap())
            {
                assert_eq!(la["index"], lb["index"]);
                for (x, y) in la["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(lb["values"].as_array().unwrap())
                {
                    worst = worst.max((x.as_f64().unwrap() - y.as_f64().unwrap()).abs());
                }
            }
        }
    }
    println!("extract-features max abs diff vs Google: {worst:e}");
    assert!(worst <= 1e-5, "max abs diff {worst}");
}

#[test]
fn extract_features_rejects_layers_the_model_lacks() {
    let out = extract_features("/nonexistent-dir/out.jsonl")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("index -3 does not exist"), "{err}");
}

#[test]
fn converted_model_embeds_identically() {
    let dir = common::minilm_dir();
    let file = std::env::temp_dir().join(format!("libbert-minilm-{}.bert", std::process::id()));
    let status = bert()
        .args(["convert", "--model"])
        .arg(&dir)
        .arg("--output")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let from_dir = Pipeline::load(&dir, None).unwrap();
    let from_file = Pipeline::load(&file, None).unwrap();
    std::fs::remove_file(&file).ok();
    assert!(from_file.tokenizer().do_lower_case());
    assert_eq!(from_file.tokenizer().vocab().len(), 30522);
    let texts = ["A man is playing a guitar.", "Café au lait, crème brûlée."];
    let mut ctx = Context::new(1);
    let opts = EmbedOptions::default();
    let a = from_dir.embed(&mut ctx, &texts, &opts).unwrap();
    let b = from_file.embed(&mut ctx, &texts, &opts).unwrap();
    assert_eq!(
        a, b,
        "the .bert file stores the same weights and vocabulary"
    );
}

/// `bert embed` output for `input` with extra flags.
fn embed_lines(model: &std::path::Path, extra: &[&str], input: &str) -> std::process::Output {
    let mut child = bert()
        .args(["embed", "--normalize", "--model"])
        .arg(model)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    feed(&mut child, input.as_bytes());
    child.wait_with_output().unwrap()
}

/// Writes `input` to the child's stdin. A child that rejects its flags exits before
/// reading, so a broken pipe here is the expected race, not a failure: the exit status
/// and stderr say what happened.
fn feed(child: &mut std::process::Child, input: &[u8]) {
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
}

#[test]
fn convert_dtype_int8_file_embeds_like_dtype_int8_on_load() {
    let dir = common::minilm_dir();
    let file =
        std::env::temp_dir().join(format!("libbert-minilm-int8-{}.bert", std::process::id()));
    let out = bert()
        .args(["convert", "--dtype", "int8", "--model"])
        .arg(&dir)
        .arg("--output")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let input = "A man is playing a guitar.\nCafé au lait, crème brûlée.\n";
    let from_file = embed_lines(&file, &[], input);
    let on_load = embed_lines(&dir, &["--dtype", "int8"], input);
    let f32 = embed_lines(&dir, &[], input);
    let bad = embed_lines(&file, &["--dtype", "f32"], input);
    let unknown = embed_lines(&dir, &["--dtype", "int4"], input);
    std::fs::remove_file(&file).ok();
    assert!(from_file.status.success() && on_load.status.success() && f32.status.success());
    assert_eq!(
        from_file.stdout, on_load.stdout,
        "file and on-load int8 differ"
    );
    assert_ne!(from_file.stdout, f32.stdout, "--dtype int8 changed nothing");
    // A packed int8 file cannot be widened back to f32; an unknown dtype is named.
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("f32 original"));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("int4"));
}
