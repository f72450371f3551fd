//! What a careless or hostile command line did to `bert` (issue 21), each case a test that
//! failed before its fix: write errors on stdout, special files and symlinks as outputs,
//! left-over temporary files, odd paths as `--model`, absurd sizes and counts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bert(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bert"));
    c.args(args).stdin(Stdio::null());
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

#[test]
fn a_full_stdout_is_an_error_message_and_exit_1() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    for args in [&["version"][..], &["--help"], &["help"]] {
        let o = bert(args).stdout(dev_full()).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("bert: ") && e.contains("stdout"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn a_full_stdout_under_tokenize_is_an_error_message() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let vocab = common::shared_dir().join("data/tokenizer/vocab-uncased.txt");
    let input = scratch("full-tokenize").join("in.txt");
    std::fs::write(&input, "hello world\n".repeat(10_000)).unwrap();
    let o = bert(&["tokenize", "--vocab_file", vocab.to_str().unwrap()])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(dev_full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("writing to stdout"), "{}", stderr(&o));
}
