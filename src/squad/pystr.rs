//! The Python 3.11 string methods that `run_squad.py` and the evaluation scripts rely on:
//! `str.split()`, `str.strip()`, `str.lower()`, and the `\w` of `re` for `\b`. Character
//! properties come from the tokenizer's tables (Unicode 14.0, Python 3.11's).

use crate::tokenizer::{flags, is_py_space, push_lower, CASED, CASE_IGNORABLE, LOWER, MN};

/// `s.split()`: the pieces between runs of whitespace (`str.isspace`), none empty.
pub fn split_whitespace(s: &str) -> Vec<&str> {
    s.split(is_py_space).filter(|p| !p.is_empty()).collect()
}

/// `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// `s.lower()`: full lower-casing, U+03A3 becoming final ς by Python's context rule
/// (`unicodeobject.c: handle_capital_sigma`) over the whole string.
pub fn lower(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '\u{3A3}' {
            out.push(if final_sigma(&chars, i) {
                '\u{3C2}'
            } else {
                '\u{3C3}'
            });
        } else if flags(c) & LOWER != 0 {
            push_lower(c, &mut |l| out.push(l));
        } else {
            out.push(c);
        }
    }
    out
}

/// Σ at `i` is final: a cased letter before it and none after it, skipping case-ignorable
/// characters both ways.
fn final_sigma(chars: &[char], i: usize) -> bool {
    let not_ignorable = |c: &&char| flags(**c) & CASE_IGNORABLE == 0;
    let cased = |c: Option<&char>| c.is_some_and(|&c| flags(c) & CASED != 0);
    cased(chars[..i].iter().rev().find(not_ignorable))
        && !cased(chars[i + 1..].iter().find(not_ignorable))
}

/// A word character of Python's `re` on `str` patterns (`\w`, which decides `\b`):
/// `str.isalnum()` or `_`, i.e. categories L* and N*. Rust's `is_alphanumeric` adds
/// `Other_Alphabetic` characters of other categories; the Mn ones are taken out here, the
/// Mc and So ones (e.g. Devanagari vowel signs, circled letters) and characters assigned
/// after Unicode 14 are not: they count as word characters here and not in Python, which
/// matters only where one touches an article ("a", "an", "the").
pub fn is_word(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && flags(c) & MN == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_python() {
        // Each expectation is CPython 3.11's.
        assert_eq!(split_whitespace(" a\u{a0}b\x1c c\u{3000}"), ["a", "b", "c"]);
        assert_eq!(strip("\u{85} a b\t"), "a b");
        assert_eq!(lower("ΑΣ ΣΑ Σ İ"), "ας σα σ i\u{307}");
        assert_eq!(lower("ΑΣ'"), "ας'");
        assert!(is_word('é') && is_word('_') && is_word('²') && is_word('一'));
        assert!(!is_word('\u{301}') && !is_word('-') && !is_word(' '));
    }
}
