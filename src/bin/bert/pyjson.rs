//! Floats printed the way Google's scripts print them: Python's `round(float(x), 6)` then
//! `json.dumps`, which writes `repr(float)` — the shortest round-trip digits, in fixed
//! notation when the decimal exponent is in -4 < e <= 16, else as `1.2e-05`.

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
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
    let sci = format!("{x:e}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
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

#[cfg(test)]
mod str_tests {
    use super::*;

    #[test]
    fn escapes_like_json_dumps() {
        // json.dumps("a\"é中😀\x01") == '"a\\"\\u00e9\\u4e2d\\ud83d\\ude00\\u0001"'
        let mut s = String::new();
        push_py_str(&mut s, "a\"é中😀\u{1}");
        assert_eq!(s, r#""a\"\u00e9\u4e2d\ud83d\ude00\u0001""#);
    }
}
