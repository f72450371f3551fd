//! run_classifier.py: the `DataProcessor`s that read GLUE's tab-separated files.
//!
//! Each task names, per split, the file, whether its first line is a header, and the
//! columns of `text_a`, `text_b` and the label, exactly as Google's processors index
//! `csv.reader(delimiter="\t", quotechar=None)` rows. Differences from the original, all
//! on malformed input where Python raises a bare `IndexError` or `KeyError`: a short row,
//! an empty row, a label outside the task's label list or a file without examples is an
//! error naming the file and its line. A UTF-8 byte-order mark at the start of a file
//! (MRPC has one) is skipped.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// `run_classifier.InputExample`: one example of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputExample {
    /// `"{split}-{i}"`, `i` counting examples from 0 as Google's processors do.
    pub guid: String,
    pub text_a: String,
    pub text_b: Option<String>,
    /// `None` for test files, which have no labels.
    pub label: Option<String>,
    /// 1-based line of the file the example came from.
    pub line: usize,
}

/// Which split to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// A column of a row: an index from the start, or the last column (Python's `line[-1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Index(usize),
    Last,
}

/// How one split's file is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsvLayout {
    pub file_name: String,
    pub skip_header: bool,
    pub text_a: Column,
    pub text_b: Option<Column>,
    /// `None`: the file has no labels (test sets).
    pub label: Option<Column>,
}

/// A task: its label list and the layout of each split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processor {
    pub name: String,
    /// `get_labels()`; label id = index. Empty for a generic task until it is set from the
    /// training data ([`Processor::labels_from`]) or from a fine-tuned model.
    pub labels: Vec<String>,
    pub train: TsvLayout,
    pub dev: TsvLayout,
    pub test: TsvLayout,
}

fn layout(
    file: &str,
    skip_header: bool,
    a: Column,
    b: Option<Column>,
    label: Option<Column>,
) -> TsvLayout {
    TsvLayout {
        file_name: file.into(),
        skip_header,
        text_a: a,
        text_b: b,
        label,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

use Column::{Index as I, Last};

impl Processor {
    /// The processor of a GLUE task by `--task_name` (case-insensitive): `cola`, `mnli`,
    /// `mrpc`, `sst-2` (or `sst2`), `rte`.
    pub fn glue(task_name: &str) -> Result<Processor> {
        let name = task_name.to_ascii_lowercase();
        let p = |labels: &[&str], train: TsvLayout, dev: TsvLayout, test: TsvLayout| Processor {
            name: name.clone(),
            labels: strings(labels),
            train,
            dev,
            test,
        };
        Ok(match name.as_str() {
            // ColaProcessor: train/dev have no header; test has one (index, sentence).
            "cola" => p(
                &["0", "1"],
                layout("train.tsv", false, I(3), None, Some(I(1))),
                layout("dev.tsv", false, I(3), None, Some(I(1))),
                layout("test.tsv", true, I(1), None, None),
            ),
            // MnliProcessor: the matched dev and test sets.
            "mnli" => p(
                &["contradiction", "entailment", "neutral"],
                layout("train.tsv", true, I(8), Some(I(9)), Some(Last)),
                layout("dev_matched.tsv", true, I(8), Some(I(9)), Some(Last)),
                layout("test_matched.tsv", true, I(8), Some(I(9)), None),
            ),
            "mrpc" => p(
                &["0", "1"],
                layout("train.tsv", true, I(3), Some(I(4)), Some(I(0))),
                layout("dev.tsv", true, I(3), Some(I(4)), Some(I(0))),
                layout("test.tsv", true, I(3), Some(I(4)), None),
            ),
            "sst-2" | "sst2" => p(
                &["0", "1"],
                layout("train.tsv", true, I(0), None, Some(I(1))),
                layout("dev.tsv", true, I(0), None, Some(I(1))),
                layout("test.tsv", true, I(1), None, None),
            ),
            "rte" => p(
                &["entailment", "not_entailment"],
                layout("train.tsv", true, I(1), Some(I(2)), Some(I(3))),
                layout("dev.tsv", true, I(1), Some(I(2)), Some(I(3))),
                layout("test.tsv", true, I(1), Some(I(2)), None),
            ),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown task {task_name:?} (known: cola, mnli, mrpc, sst-2, rte, tsv)"
                )))
            }
        })
    }

    /// A task over any TSV files (`train.tsv`, `dev.tsv`, `test.tsv`) with the given
    /// columns. The test file has the same columns, its label column ignored if absent.
    /// Labels are empty until set from the training data or a model.
    pub fn generic(
        text_a: usize,
        text_b: Option<usize>,
        label: usize,
        skip_header: bool,
    ) -> Processor {
        let l =
            |f: &str, lab: Option<Column>| layout(f, skip_header, I(text_a), text_b.map(I), lab);
        Processor {
            name: "tsv".into(),
            labels: Vec::new(),
            train: l("train.tsv", Some(I(label))),
            dev: l("dev.tsv", Some(I(label))),
            test: l("test.tsv", None),
        }
    }

    /// The layout of a split.
    pub fn layout(&self, split: Split) -> &TsvLayout {
        match split {
            Split::Train => &self.train,
            Split::Dev => &self.dev,
            Split::Test => &self.test,
        }
    }

    /// Path of a split's file in `data_dir`.
    pub fn path(&self, data_dir: &Path, split: Split) -> PathBuf {
        data_dir.join(&self.layout(split).file_name)
    }

    /// Sets the label list to the sorted distinct labels of `examples` (generic tasks).
    pub fn labels_from(&mut self, examples: &[InputExample]) {
        let mut labels: Vec<String> = examples.iter().filter_map(|e| e.label.clone()).collect();
        labels.sort();
        labels.dedup();
        self.labels = labels;
    }

    /// Reads a split from `data_dir`.
    pub fn examples(&self, data_dir: &Path, split: Split) -> Result<Vec<InputExample>> {
        self.read(&self.path(data_dir, split), split)
    }

    /// Reads `path` with the layout of `split`. When the label list is set, every label must
    /// be in it.
    pub fn read(&self, path: &Path, split: Split) -> Result<Vec<InputExample>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Error::format(path, None, format!("line {line}: invalid UTF-8"))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let layout = self.layout(split);
        let err = |line: usize, m: String| Error::format(path, None, format!("line {line}: {m}"));
        let mut out = Vec::new();
        let mut lines = text.split('\n').enumerate().peekable();
        while let Some((i, raw)) = lines.next() {
            let number = i + 1;
            // The newline ending the last line does not start another row.
            if raw.is_empty() && lines.peek().is_none() {
                break;
            }
            if number == 1 && layout.skip_header {
                continue;
            }
            let row = raw.strip_suffix('\r').unwrap_or(raw);
            if row.is_empty() {
                return Err(err(number, "empty row".into()));
            }
            let cols: Vec<&str> = row.split('\t').collect();
            let get = |c: Column, what: &str| -> Result<String> {
                let v = match c {
                    I(k) => cols.get(k),
                    Last => cols.last(),
                };
                v.map(|s| s.to_string()).ok_or_else(|| {
                    let want = match c {
                        I(k) => k + 1,
                        Last => 1,
                    };
                    err(
                        number,
                        format!(
                            "{what} needs at least {want} tab-separated columns, the row has {}",
                            cols.len()
                        ),
                    )
                })
            };
            let text_a = get(layout.text_a, "text_a")?;
            let text_b = layout.text_b.map(|c| get(c, "text_b")).transpose()?;
            let label = layout.label.map(|c| get(c, "the label")).transpose()?;
            if let Some(l) = &label {
                if !self.labels.is_empty() && !self.labels.contains(l) {
                    return Err(Error::Label(format!(
                        "{}: line {number}: label {l:?} is not one of the task's labels {:?}",
                        path.display(),
                        self.labels
                    )));
                }
            }
            out.push(InputExample {
                guid: format!("{}-{}", split.name(), out.len()),
                text_a,
                text_b,
                label,
                line: number,
            });
        }
        if out.is_empty() {
            return Err(Error::format(path, None, "no examples in the file"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("libbert-proc-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn header_bom_crlf_and_last_column() {
        let mut p = Processor::glue("MNLI").unwrap();
        p.labels = strings(&["x", "y"]);
        let row = "0\t1\t2\t3\t4\t5\t6\t7\tA\tB\tz\ty";
        let path = tmp("mnli.tsv", &format!("\u{feff}h\r\n{row}\r\n"));
        let ex = p.read(&path, Split::Train).unwrap();
        assert_eq!(ex.len(), 1);
        assert_eq!(
            (ex[0].text_a.as_str(), ex[0].text_b.as_deref()),
            ("A", Some("B"))
        );
        assert_eq!(ex[0].label.as_deref(), Some("y"));
        assert_eq!(ex[0].line, 2);
    }

    #[test]
    fn generic_labels_are_sorted_distinct() {
        let mut p = Processor::generic(1, None, 0, false);
        let path = tmp("gen.tsv", "b\tone\na\ttwo\nb\tthree\n");
        let ex = p.read(&path, Split::Train).unwrap();
        p.labels_from(&ex);
        assert_eq!(p.labels, strings(&["a", "b"]));
        assert!(Processor::glue("qqp").is_err());
    }
}
