//! JSON as Python's `json.dumps` writes it, so files from Google's scripts can be compared
//! byte for byte: floats as `repr(float)` (the shortest round-trip digits, fixed notation when
//! the decimal exponent is in -4 < e <= 16, else as `1.2e-05`), strings with the default
//! `ensure_ascii=True`, and [`dumps`] for whole documents with or without `indent`.
//! `extract_features.py` rounds with [`py_round`] first; `run_squad.py` and the SQuAD
//! evaluation scripts print full doubles.

/// `round(x, ndigits)` as Python does it: correctly rounded on the exact binary value.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Rust's fixed-precision formatting rounds the exact decimal expansion of the double,
    // which is what CPython's round() does through dtoa.
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// Python's `repr(float)` (also what `json.dumps` writes for a finite float).
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits ("-1.2345e-5"), but where two strings of
    // that length round-trip it may take the upper one (1.13547515869140625 gives
    // "...063"); Python takes the one nearer the exact value, ties to even ("...062"),
    // which is the exact value rounded to that many digits, as `{:.N$e}` rounds it.
    let shortest = format!("{x:e}");
    let digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let sci = format!("{x:.*e}", digits.saturating_sub(1));
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Value = 0.DIGITS * 10^decpt.
    let decpt = exp + 1;
    let n = digits.len() as i32;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt >= n {
            format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exp_sign = if exp < 0 { '-' } else { '+' };
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs())
    }
}

/// Appends `s` as a JSON string the way Python's `json.dumps` writes it (default
/// `ensure_ascii=True`: non-ASCII as lower-case `\uXXXX`, astral characters as surrogate pairs).
pub fn push_py_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A JSON document as Python builds it before `json.dumps`: dicts keep insertion order
/// (`collections.OrderedDict`, or a `dict` in Python 3.7+).
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    Str(String),
    /// A Python `float`, written as [`py_repr`] writes it.
    Float(f64),
    /// A Python `int`.
    Int(i64),
    Bool(bool),
    List(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// `json.dumps(value, indent=indent)`: with `None` one line with `", "` and `": "` between
/// items; with `Some(n)` one item per line indented by `n` spaces per level (empty lists and
/// dicts stay `[]` and `{}`). No trailing newline, as `json.dumps` writes none.
pub fn dumps(value: &PyValue, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_value(&mut out, value, indent, 0);
    out
}

fn write_value(out: &mut String, value: &PyValue, indent: Option<usize>, level: usize) {
    match value {
        PyValue::Str(s) => push_py_str(out, s),
        PyValue::Float(x) => out.push_str(&py_repr(*x)),
        PyValue::Int(i) => out.push_str(&i.to_string()),
        PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PyValue::List(items) => {
            write_items(out, ('[', ']'), items, indent, level, |out, v, level| {
                write_value(out, v, indent, level)
            })
        }
        PyValue::Dict(items) => write_items(
            out,
            ('{', '}'),
            items,
            indent,
            level,
            |out, (k, v), level| {
                push_py_str(out, k);
                out.push_str(": ");
                write_value(out, v, indent, level);
            },
        ),
    }
}

/// The bracketed, separated part shared by lists and dicts.
fn write_items<T>(
    out: &mut String,
    (open, close): (char, char),
    items: &[T],
    indent: Option<usize>,
    level: usize,
    mut item: impl FnMut(&mut String, &T, usize),
) {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return;
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat(' ').take(n * level));
        }
    };
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            // Python's separators: "," + newline with an indent, ", " without.
            out.push(',');
            if indent.is_none() {
                out.push(' ');
            }
        }
        newline(out, level + 1);
        item(out, v, level + 1);
    }
    newline(out, level);
    out.push(close);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::excessive_precision)] // the exact binary values are the point
    fn matches_python_repr() {
        // Each expectation is what CPython 3.11 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (0.322702, "0.322702"),
            (-1.2e-05, "-1.2e-05"),
            (0.0001, "0.0001"),
            (1e-05, "1e-05"),
            (3.0, "3.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123.456, "123.456"),
            (2.92236, "2.92236"),
            (-2.988713, "-2.988713"),
            // An f32 logit exactly between two 17-digit strings: Python picks the even one.
            (1.13547515869140625, "1.1354751586914062"),
            (2.53922271728515625, "2.5392227172851562"),
        ];
        for (x, want) in cases {
            assert_eq!(py_repr(*x), *want, "repr({x})");
        }
    }

    #[test]
    fn rounds_like_python() {
        assert_eq!(py_repr(py_round(0.32270199060440063, 6)), "0.322702");
        assert_eq!(py_repr(py_round(-0.0000123456, 6)), "-1.2e-05");
        assert_eq!(py_repr(py_round(0.0000004, 6)), "0.0");
    }

    #[test]
    fn escapes_like_json_dumps() {
        // json.dumps("a\"é中😀\x01") == '"a\\"\\u00e9\\u4e2d\\ud83d\\ude00\\u0001"'
        let mut s = String::new();
        push_py_str(&mut s, "a\"é中😀\u{1}");
        assert_eq!(s, r#""a\"\u00e9\u4e2d\ud83d\ude00\u0001""#);
    }

    #[test]
    fn dumps_like_python() {
        let doc = PyValue::Dict(vec![
            (
                "a".into(),
                PyValue::List(vec![PyValue::Float(0.5), PyValue::Int(2)]),
            ),
            ("b".into(), PyValue::Dict(vec![])),
            ("c".into(), PyValue::List(vec![])),
            (
                "d".into(),
                PyValue::Dict(vec![("x".into(), PyValue::Str("é".into()))]),
            ),
            ("e".into(), PyValue::Bool(true)),
        ]);
        // json.dumps(doc) and json.dumps(doc, indent=4) of the same dict in CPython 3.11.
        assert_eq!(
            dumps(&doc, None),
            r#"{"a": [0.5, 2], "b": {}, "c": [], "d": {"x": "\u00e9"}, "e": true}"#
        );
        assert_eq!(
            dumps(&doc, Some(4)),
            "{\n    \"a\": [\n        0.5,\n        2\n    ],\n    \"b\": {},\n    \"c\": [],\n    \
             \"d\": {\n        \"x\": \"\\u00e9\"\n    },\n    \"e\": true\n}"
        );
    }
}
