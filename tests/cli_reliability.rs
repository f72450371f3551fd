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

/// `bert extract-features` on the fixture with its Google flags, writing `output`.
fn extract_features(output: &Path) -> Command {
    let fixture = common::shared_dir().join("fixtures/tf_bert_tiny");
    let arg = |name: &str, p: PathBuf| format!("--{name}={}", p.display());
    let mut c = bert(&["extract-features", "--layers=-1", "--max_seq_length=16"]);
    c.arg(arg(
        "input_file",
        fixture.join("reference/extract_features_input.txt"),
    ))
    .arg(arg("output_file", output.to_path_buf()))
    .arg(arg("vocab_file", fixture.join("vocab.txt")))
    .arg(arg("bert_config_file", fixture.join("bert_config.json")))
    .arg(arg("init_checkpoint", fixture.join("bert_model.ckpt")));
    c
}

fn run_ok(c: &mut Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn output_to_a_device_writes_the_device() {
    // A private null device in a scratch directory (`mknod` needs root; without it the test
    // has nothing to look at). Never a system device: the bug replaced the node with a file.
    let dir = scratch("device");
    let null = dir.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return;
    }
    run_ok(&mut extract_features(&null));
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(t.is_char_device(), "the device node was replaced: {t:?}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no file beside it"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_to_a_fifo_writes_the_fifo() {
    let dir = scratch("fifo");
    let fifo = dir.join("out.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    run_ok(&mut extract_features(&fifo));
    // Checked before joining the reader, which would wait forever on a replaced FIFO.
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(t.is_fifo(), "the FIFO was replaced: {t:?}");
    let text = reader.join().unwrap();
    assert!(text.starts_with("{\"linex_index\": 0"), "{text:.80}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_through_a_symlink_replaces_the_target() {
    let dir = scratch("symlink");
    std::fs::create_dir(dir.join("real")).unwrap();
    let target = dir.join("real/features.jsonl");
    std::fs::write(&target, "old\n").unwrap();
    let link = dir.join("link.jsonl");
    std::os::unix::fs::symlink("real/features.jsonl", &link).unwrap();
    run_ok(&mut extract_features(&link));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("{\"linex_index\": 0"), "{text:.80}");
    // Nothing else was left beside the link or the target.
    let names = |d: &Path| std::fs::read_dir(d).unwrap().count();
    assert_eq!((names(&dir), names(&dir.join("real"))), (2, 1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stale_temporary_files_of_dead_processes_are_removed() {
    let dir = scratch("stale");
    let out = dir.join("features.jsonl");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!("features.jsonl.tmp{dead}"));
    let live = dir.join(format!("features.jsonl.tmp{}", std::process::id()));
    let other = dir.join(format!("other.jsonl.tmp{dead}"));
    for p in [&stale, &live, &other] {
        std::fs::write(p, "partial").unwrap();
    }
    run_ok(&mut extract_features(&out));
    assert!(
        !stale.exists(),
        "the dead process's temporary file is still there"
    );
    assert!(live.exists(), "a live process's temporary file was removed");
    assert!(
        other.exists(),
        "another output's temporary file was removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fixture's TF checkpoint directory (config, checkpoint, vocab.txt).
fn tiny_model() -> String {
    common::shared_dir()
        .join("fixtures/tf_bert_tiny")
        .display()
        .to_string()
}

#[test]
fn huge_sizes_are_refused_not_aborted() {
    // `--batch_size 100000000000` aborted allocating 2.4 TB (issue 21 case 3).
    let model = tiny_model();
    let cases: [&[&str]; 4] = [
        &["embed", "--model", &model, "--batch_size", "100000000000"],
        &["embed", "--model", &model, "--threads", "100000000000"],
        &["extract-features", "--batch_size=100000000000"],
        &["extract-features", "--threads=100000000000"],
    ];
    let dir = scratch("huge");
    for args in cases {
        let mut c = if args[0] == "extract-features" {
            let mut c = extract_features(&dir.join("out.jsonl"));
            c.arg(args[1]);
            c
        } else {
            bert(args)
        };
        let input = dir.join("in.txt");
        std::fs::write(&input, "hello world\n").unwrap();
        let o = c
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("at most"), "{args:?}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_overlong_line_for_a_truncating_command_is_an_error() {
    // A 200 MB line cost ~10x its size; lines of truncating commands are bounded (4 MiB).
    let dir = scratch("longline");
    let input = dir.join("in.txt");
    std::fs::write(&input, format!("short\n{}\n", "word ".repeat(1_000_000))).unwrap();
    let model = tiny_model();
    let o = bert(&["embed", "--model", &model])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("input line 2 is longer than"),
        "{}",
        stderr(&o)
    );
    // A line just under the bound is embedded (tokenized only as far as truncation needs).
    std::fs::write(&input, "word ".repeat(800_000) + "\n").unwrap();
    let o = bert(&["embed", "--model", &model])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_path_that_cannot_be_a_model_says_what_it_is() {
    // A FIFO, /dev/zero or an empty file reported a missing bert_config.json.
    let dir = scratch("modelpath");
    let empty = dir.join("model.bin");
    std::fs::write(&empty, "").unwrap();
    let fifo = dir.join("model.fifo");
    let have_fifo = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec![(empty.display().to_string(), "an empty file")];
    if have_fifo {
        cases.push((fifo.display().to_string(), "a FIFO"));
    }
    if Path::new("/dev/zero").exists() {
        cases.push(("/dev/zero".into(), "a character device"));
    }
    for (path, what) in cases {
        let o = bert(&["embed", "--model", &path]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{path}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&path) && e.contains(what), "{path}: {e}");
        assert!(!e.contains("bert_config.json"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_huge_column_index_is_refused() {
    // --text_a_column=18446744073709551615 wrapped to 0 when the row length was checked.
    let dir = scratch("column");
    std::fs::write(dir.join("train.tsv"), "a\t0\nb\t1\n").unwrap();
    let o = bert(&[
        "classify",
        "--task_name=tsv",
        "--do_train",
        "--label_column=1",
    ])
    .arg("--text_a_column=18446744073709551615")
    .arg(format!("--data_dir={}", dir.display()))
    .arg(format!("--output_dir={}", dir.join("out").display()))
    .arg(format!("--model={}", tiny_model()))
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--text_a_column"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fewer_config_layers_than_the_checkpoint_are_refused() {
    // A config edited to 1 layer beside the fixture's 2-layer checkpoint loaded silently and
    // ran only the first layer.
    let dir = scratch("layers");
    let fixture = common::shared_dir().join("fixtures/tf_bert_tiny");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("bert_config.json")).unwrap())
            .unwrap();
    config["num_hidden_layers"] = 1.into();
    let config_file = dir.join("bert_config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let arg = |name: &str, p: PathBuf| format!("--{name}={}", p.display());
    let o = bert(&["extract-features", "--layers=-1"])
        .arg(arg(
            "input_file",
            fixture.join("reference/extract_features_input.txt"),
        ))
        .arg(arg("output_file", dir.join("out.jsonl")))
        .arg(arg("vocab_file", fixture.join("vocab.txt")))
        .arg(arg("bert_config_file", config_file.clone()))
        .arg(arg("init_checkpoint", fixture.join("bert_model.ckpt")))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("num_hidden_layers is 1"),
        "{}",
        stderr(&o)
    );
    // The same through a model directory (the library's loaders).
    for f in [
        "bert_model.ckpt.index",
        "bert_model.ckpt.data-00000-of-00001",
        "vocab.txt",
    ] {
        std::os::unix::fs::symlink(fixture.join(f), dir.join(f)).unwrap();
    }
    let e = bert::weights::load_model_files(&dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 encoder layers"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bert_file_read_into_memory_embeds_as_the_mapped_one() {
    let dir = scratch("mmap");
    let fixture = common::shared_dir().join("fixtures/tf_bert_tiny");
    let config = bert::BertConfig::from_file(fixture.join("bert_config.json")).unwrap();
    let weights = bert::weights::tf_checkpoint::load(&fixture).unwrap();
    let vocab: Vec<String> = std::fs::read_to_string(fixture.join("vocab.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let model = dir.join("tiny.bert");
    bert::weights::native::save(&model, &config, &weights, &vocab, true).unwrap();
    let input = dir.join("in.txt");
    std::fs::write(&input, "hello world\nthe quick brown fox\n").unwrap();
    let run = |extra: &[&str]| {
        let o = bert(&["embed", "--model", model.to_str().unwrap()])
            .args(extra)
            .stdin(std::fs::File::open(&input).unwrap())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    assert_eq!(run(&["--mmap=false"]), run(&[]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn output_through_a_link_to_stdout_writes_stdout() {
    // `--output_file=/dev/stdout` (a link to /proc/self/fd/1, whose target text is
    // "pipe:[N]"): tested through a link of our own so that a mistake replaces only it.
    if !Path::new("/proc/self/fd/1").exists() {
        return;
    }
    let dir = scratch("stdout");
    let link = dir.join("stdout");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let o = extract_features(&link).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("{\"linex_index\": 0"), "{text:.80}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
