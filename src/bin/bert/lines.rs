//! Reading UTF-8 input lines: split on `\n` only (a `\r` stays part of the text, as in the
//! conformance data), and invalid UTF-8 is an error naming the line, never dropped.

use std::io::BufRead;

/// Calls `f(line_number, text)` for every line of `input` (1-based numbers).
pub fn for_each_line(
    input: impl BufRead,
    mut f: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut input = input;
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("I/O error reading line {}: {e}", number + 1))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
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
