//! Reading UTF-8 input lines: split on `\n` only (a `\r` stays part of the text, as in the
//! conformance data), and invalid UTF-8 is an error naming the line, never dropped.

use std::io::{BufRead, Read};

/// Longest input line of the commands that truncate to `max_seq_length` (`embed`,
/// `extract-features`): 4 MiB, thousands of times what 512 tokens take. A longer line is an
/// error naming it, rather than a read that grows with whatever arrives on stdin.
pub const MAX_TRUNCATED_LINE_BYTES: usize = 4 << 20;

/// Calls `f(line_number, text)` for every line of `input` (1-based numbers).
pub fn for_each_line(
    input: impl BufRead,
    f: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<(), String> {
    for_each_line_within(input, usize::MAX, f)
}

/// [`for_each_line`] for lines of at most `max_bytes` bytes (the `\n` not counted); a longer
/// line is an error, read no further than the bound.
pub fn for_each_line_within(
    input: impl BufRead,
    max_bytes: usize,
    mut f: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut input = input;
    let mut line = Vec::new();
    let mut number = 0usize;
    let bound = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    loop {
        line.clear();
        let n = (&mut input)
            .take(bound)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("I/O error reading line {}: {e}", number + 1))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.len() > max_bytes && line.last() != Some(&b'\n') {
            return Err(format!(
                "input line {number} is longer than {max_bytes} bytes (the limit of commands \
                 that truncate to max_seq_length)"
            ));
        }
        let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "invalid UTF-8 on input line {number} at byte {}",
                e.valid_up_to()
            )
        })?;
        f(number, text)?;
    }
}

/// Opens a file for line reading, or stdin for `-`.
pub fn open(path: &str) -> Result<Box<dyn BufRead>, String> {
    if path == "-" {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))
}
