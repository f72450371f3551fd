//! `--input_file` patterns as `tf.gfile.Glob` expands them: comma-separated; `*`, `?`,
//! `[...]` and `\` escapes matched per path component (`fnmatch` with `FNM_PATHNAME`), the
//! directories walked level by level. Like TensorFlow, matches come in directory order (the
//! file system's `readdir` order, the order TF gives on the same machine), not sorted; name
//! the files to fix an order everywhere. Unlike TensorFlow, a pattern that matches nothing
//! or a missing file is an error rather than silently no input.

use std::path::PathBuf;

use crate::{Error, Result};

const GLOB_CHARS: [char; 4] = ['*', '?', '[', '\\'];

/// The files of a comma-separated list of paths and patterns, in order.
pub fn expand_input_files(patterns: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for pattern in patterns.split(',') {
        if pattern.is_empty() {
            continue;
        }
        let found = glob(pattern)?;
        if found.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "--input_file: no file matches {pattern:?}"
            )));
        }
        files.extend(found);
    }
    if files.is_empty() {
        return Err(Error::InvalidArgument(
            "--input_file: no input files".into(),
        ));
    }
    Ok(files)
}

/// `GetMatchingPaths`: every path matching `pattern`.
fn glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let Some(first) = pattern.find(GLOB_CHARS) else {
        let p = PathBuf::from(pattern);
        return Ok(if p.exists() { vec![p] } else { Vec::new() });
    };
    // The directory before the first wildcard is listed; the rest is matched per component.
    let (dir, rest) = match pattern[..first].rfind('/') {
        Some(0) => ("/", &pattern[1..]),
        Some(slash) => (&pattern[..slash], &pattern[slash + 1..]),
        None => (".", pattern),
    };
    let components: Vec<&str> = rest.split('/').collect();
    let mut level = vec![PathBuf::from(dir)];
    let mut found = Vec::new();
    for (c, component) in components.iter().enumerate() {
        let last = c + 1 == components.len();
        let mut next = Vec::new();
        for d in &level {
            for entry in std::fs::read_dir(d).map_err(|e| Error::io(d, e))? {
                let entry = entry.map_err(|e| Error::io(d, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !fnmatch(component, name) {
                    continue;
                }
                let path = d.join(name);
                if last {
                    found.push(path);
                } else if path.is_dir() {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    Ok(found)
}

/// Shell-style match of a whole name: `*` any run, `?` one character, `[a-z]` / `[!a-z]`
/// a set, `\c` the character `c`.
fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match_set(&p, pi, n[ni]),
            Some('\\') if pi + 1 < p.len() => (p[pi + 1] == n[ni]).then_some(pi + 2),
            Some(&c) => (c == n[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the set starting at `p[start] == '['`; the pattern index after the
/// set if it matches. An unclosed `[` stands for itself.
fn match_set(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    // The members: a `]` right after `[` or `[!` is one of them.
    let mut members = Vec::new();
    loop {
        match p.get(i) {
            None => return (c == '[').then_some(start + 1),
            Some(']') if !members.is_empty() => break,
            Some('\\') => {
                members.push(*p.get(i + 1)?);
                i += 2;
            }
            Some(&m) => {
                members.push(m);
                i += 1;
            }
        }
    }
    let end = i + 1;
    // Ranges `a-z`: a `-` between two members.
    let mut matched = false;
    let mut k = 0;
    while k < members.len() {
        if k + 2 < members.len() && members[k + 1] == '-' {
            matched |= members[k] <= c && c <= members[k + 2];
            k += 3;
        } else {
            matched |= members[k] == c;
            k += 1;
        }
    }
    (matched != negate).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_posix() {
        assert!(fnmatch("*.txt", "a.txt"));
        assert!(fnmatch("*.txt", ".txt"));
        assert!(!fnmatch("*.txt", "a.txt.gz"));
        assert!(fnmatch("a?.txt", "a2.txt"));
        assert!(!fnmatch("a?.txt", "a10.txt"));
        assert!(fnmatch("[ab].txt", "b.txt"));
        assert!(!fnmatch("[!ab].txt", "b.txt"));
        assert!(fnmatch("[!ab].txt", "C.txt"));
        assert!(fnmatch("part-[0-9][0-9]", "part-07"));
        assert!(!fnmatch("part-[0-9][0-9]", "part-7x"));
        assert!(fnmatch("a\\*", "a*"));
        assert!(!fnmatch("a\\*", "ab"));
        assert!(fnmatch("*a*b*", "xxaybzz"));
        assert!(fnmatch("[]]", "]"));
        assert!(fnmatch("[", "["));
        assert!(fnmatch("", ""));
        assert!(!fnmatch("", "a"));
    }

    #[test]
    fn globs_walk_directories() {
        let d = std::env::temp_dir().join(format!("libbert-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        for f in ["a.txt", "b.txt", "c.md", "sub/z.txt"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let root = d.display().to_string();
        let mut got = expand_input_files(&format!("{root}/*.txt")).unwrap();
        got.sort();
        assert_eq!(got, [d.join("a.txt"), d.join("b.txt")]);
        let got = expand_input_files(&format!("{root}/*/*.txt,{root}/c.md")).unwrap();
        assert_eq!(got, [d.join("sub/z.txt"), d.join("c.md")]);
        let err = expand_input_files(&format!("{root}/*.csv")).unwrap_err();
        assert!(err.to_string().contains("no file matches"), "{err}");
        let err = expand_input_files(&format!("{root}/missing.txt")).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
