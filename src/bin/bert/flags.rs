//! Command-line flags in the style of Google's scripts (absl/TF flags).
//!
//! Accepted forms: `--name=value`, `--name value`, and for boolean flags also `--name`
//! (true) and `--noname` (false). `-` and `_` are interchangeable inside names, so
//! `--vocab-file` is `--vocab_file`. Unknown flags are errors, never silently ignored.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Largest `--threads`: far more than any machine's cores, far below what aborts.
pub const MAX_THREADS: usize = 1024;
/// Largest batch size of any command: each example of a batch holds its activations.
pub const MAX_BATCH: usize = 1 << 16;

#[derive(Debug)]
pub struct Flags {
    values: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

impl Flags {
    /// Parses `args`; `booleans` names the flags that may appear without a value.
    pub fn parse(args: &[String], booleans: &[&str]) -> Result<Flags, String> {
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(format!(
                    "unexpected argument {arg:?} (flags look like --name=value)"
                ));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (normalize(n), Some(v.to_string())),
                None => (normalize(body), None),
            };
            let (name, value) = match value {
                Some(v) => (name, v),
                None if booleans.contains(&name.as_str()) => (name, "true".to_string()),
                None if name.starts_with("no") && booleans.contains(&&name[2..]) => {
                    (name[2..].to_string(), "false".to_string())
                }
                None => {
                    i += 1;
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("flag --{name} needs a value"))?;
                    (name, v.clone())
                }
            };
            if values.insert(name.clone(), value).is_some() {
                return Err(format!("flag --{name} given twice"));
            }
            i += 1;
        }
        Ok(Flags {
            values,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// The value of a flag, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.used.borrow_mut().insert(name.to_string());
        self.values.get(name).map(String::as_str)
    }

    /// The value of a flag that must be given.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("missing required flag --{name}"))
    }

    /// A boolean flag (`true`/`false`, any case, or `1`/`0`).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(format!("flag --{name}: expected true or false, got {v:?}")),
            },
        }
    }

    /// A parsed value (`usize`, `f32`, ...).
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("flag --{name}: cannot parse {v:?}")),
        }
    }

    /// A size (count of examples, threads, ...) with an upper bound: a huge value is an
    /// error here, not an abort when something that large is allocated.
    pub fn size(&self, name: &str, default: usize, max: usize) -> Result<usize, String> {
        let v: usize = self.parsed(name, default)?;
        if v > max {
            return Err(format!("flag --{name}: {v} is too large (at most {max})"));
        }
        Ok(v)
    }

    /// `--threads` (0: all cores), at most [`MAX_THREADS`].
    pub fn threads(&self) -> Result<usize, String> {
        self.size("threads", 0, MAX_THREADS)
    }

    /// Fails on any flag that no `get` asked for, so a misspelled flag is never ignored.
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        let unknown: Vec<String> = self
            .values
            .keys()
            .filter(|k| !used.contains(*k))
            .map(|k| format!("--{k}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown flag(s): {}", unknown.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn google_and_dashed_spellings() {
        let f = Flags::parse(
            &args(&[
                "--vocab-file",
                "v.txt",
                "--do_lower_case=False",
                "--max_seq_length=128",
            ]),
            &["do_lower_case"],
        )
        .unwrap();
        assert_eq!(f.required("vocab_file").unwrap(), "v.txt");
        assert!(!f.bool("do_lower_case", true).unwrap());
        assert_eq!(f.parsed("max_seq_length", 0usize).unwrap(), 128);
        f.finish().unwrap();
    }

    #[test]
    fn bare_and_no_booleans() {
        let f = Flags::parse(
            &args(&["--do_train", "--nodo_eval"]),
            &["do_train", "do_eval"],
        )
        .unwrap();
        assert!(f.bool("do_train", false).unwrap());
        assert!(!f.bool("do_eval", true).unwrap());
    }

    #[test]
    fn unknown_and_missing_values_are_errors() {
        let f = Flags::parse(&args(&["--vocab_fiel=x"]), &[]).unwrap();
        assert!(f.get("vocab_file").is_none());
        assert!(f.finish().unwrap_err().contains("--vocab_fiel"));
        assert!(Flags::parse(&args(&["--vocab_file"]), &[]).is_err());
        assert!(Flags::parse(&args(&["stray"]), &[]).is_err());
    }
}
