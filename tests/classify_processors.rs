//! GLUE processors on the real files, and malformed files: every error names the file and
//! the line.

mod common;

use std::path::PathBuf;

use bert::classifier::{processors::Column, Processor, Split};

fn glue(task: &str) -> PathBuf {
    common::shared_dir().join("data/glue").join(task)
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-classify-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn real_glue_files() {
    // (task, dir, train rows, dev rows, first train example)
    let cases = [
        (
            "sst-2",
            "SST-2",
            67349,
            436,
            "hide new secretions from the parental units ",
            None,
            "0",
        ),
        (
            "mrpc",
            "MRPC",
            3668,
            204,
            "Amrozi accused his brother , whom he called \" the witness \" , of deliberately \
             distorting his evidence .",
            Some(
                "Referring to him as only \" the witness \" , Amrozi accused his brother of \
                  deliberately distorting his evidence .",
            ),
            "1",
        ),
        (
            "cola",
            "CoLA",
            8551,
            522,
            "Our friends won't buy this analysis, let alone the next one we propose.",
            None,
            "1",
        ),
        (
            "rte",
            "RTE",
            2490,
            139,
            "No Weapons of Mass Destruction Found in Iraq Yet.",
            Some("Weapons of Mass Destruction Found in Iraq."),
            "not_entailment",
        ),
    ];
    for (task, dir, n_train, n_dev, a, b, label) in cases {
        let p = Processor::glue(task).unwrap();
        let train = p.examples(&glue(dir), Split::Train).unwrap();
        let dev = p.examples(&glue(dir), Split::Dev).unwrap();
        assert_eq!((train.len(), dev.len()), (n_train, n_dev), "{task}");
        assert_eq!(train[0].text_a, a, "{task}");
        assert_eq!(train[0].text_b.as_deref(), b, "{task}");
        assert_eq!(train[0].label.as_deref(), Some(label), "{task}");
        assert_eq!(train[0].guid, "train-0");
        // Header files start at line 2; CoLA has no header.
        assert_eq!(train[0].line, if task == "cola" { 1 } else { 2 }, "{task}");
        for e in train.iter().chain(&dev) {
            assert!(p.labels.contains(e.label.as_ref().unwrap()), "{task}");
        }
    }
    let p = Processor::glue("RTE").unwrap();
    assert_eq!(p.labels, ["entailment", "not_entailment"]);
    assert_eq!(p.train.label, Some(Column::Index(3)));
}

fn error_of(p: &Processor, text: impl AsRef<[u8]>, name: &str) -> String {
    let dir = tmp_dir(name);
    let path = dir.join("train.tsv");
    std::fs::write(&path, text.as_ref()).unwrap();
    let e = p.examples(&dir, Split::Train).unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()), "{e}");
    e
}

#[test]
fn malformed_files_name_file_and_line() {
    let mrpc = Processor::glue("mrpc").unwrap();
    let head = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
    let e = error_of(
        &mrpc,
        format!("{head}1\t1\t2\ta\tb\n0\t1\t2\tonly a\n"),
        "short",
    );
    assert!(e.contains("line 3") && e.contains("columns"), "{e}");
    let e = error_of(&mrpc, format!("{head}2\t1\t2\ta\tb\n"), "label");
    assert!(e.contains("line 2") && e.contains("\"2\""), "{e}");
    let e = error_of(&mrpc, head, "empty");
    assert!(e.contains("no examples"), "{e}");
    let e = error_of(
        &mrpc,
        format!("{head}1\t1\t2\ta\tb\n\n1\t1\t2\ta\tb\n"),
        "blank",
    );
    assert!(e.contains("line 3") && e.contains("empty row"), "{e}");
    let sst = Processor::glue("sst-2").unwrap();
    let e = error_of(&sst, b"sentence\tlabel\ngood\t1\nbad \xff\t0\n", "utf8");
    assert!(e.contains("line 3") && e.contains("UTF-8"), "{e}");
    let cola = Processor::glue("cola").unwrap();
    let e = error_of(&cola, "gj04\t1\t\tfine\ngj04\tx\t\tbad label\n", "cola");
    assert!(e.contains("line 2") && e.contains("\"x\""), "{e}");
    // A missing file is an I/O error naming it.
    let e = sst
        .examples(&tmp_dir("missing"), Split::Dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev.tsv"), "{e}");
}

#[test]
fn generic_tsv_task() {
    let dir = tmp_dir("generic");
    std::fs::write(
        dir.join("train.tsv"),
        "label\ta\tb\npos\tx1\ty1\nneg\tx2\ty2\npos\tx3\ty3\n",
    )
    .unwrap();
    let mut p = Processor::generic(1, Some(2), 0, true);
    let ex = p.examples(&dir, Split::Train).unwrap();
    p.labels_from(&ex);
    assert_eq!(p.labels, ["neg", "pos"]);
    assert_eq!(ex.len(), 3);
    assert_eq!(
        (ex[1].text_a.as_str(), ex[1].text_b.as_deref(), ex[1].line),
        ("x2", Some("y2"), 3)
    );
    std::fs::write(dir.join("dev.tsv"), "label\ta\tb\nmaybe\tx\ty\n").unwrap();
    let e = p.examples(&dir, Split::Dev).unwrap_err().to_string();
    assert!(
        e.contains("dev.tsv") && e.contains("line 2") && e.contains("maybe"),
        "{e}"
    );
}
