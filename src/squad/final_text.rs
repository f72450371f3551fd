//! run_squad.py: `get_final_text`, projecting a predicted WordPiece span back to the
//! original words.
//!
//! `pred_text` is the de-tokenized prediction (lower-cased and accent-stripped for uncased
//! models), `orig_text` the original words it came from, joined by single spaces. The words
//! are run through the basic tokenizer again; if the prediction is found in that and the
//! two agree character for character once spaces are removed, the matching characters of
//! `orig_text` are returned ("Steve Smith's" with prediction "steve smith" gives "Steve
//! Smith"), else `orig_text` itself. All positions are in characters (code points), as
//! Python indexes a `str`.

use crate::tokenizer::BasicTokenizer;

/// What [`get_final_text`] chose: the text, and which characters of `orig_text` it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalText {
    pub text: String,
    /// First and last character (inclusive) of `orig_text` that `text` is.
    pub chars: (usize, usize),
}

/// `_strip_spaces`: the characters other than `' '`, and for each its position in `text`.
fn strip_spaces(text: &[char]) -> (Vec<char>, Vec<usize>) {
    text.iter()
        .enumerate()
        .filter(|&(_, &c)| c != ' ')
        .map(|(i, &c)| (c, i))
        .unzip()
}

/// `get_final_text(pred_text, orig_text, do_lower_case)`.
pub fn get_final_text(pred_text: &str, orig_text: &str, do_lower_case: bool) -> FinalText {
    let orig: Vec<char> = orig_text.chars().collect();
    let whole = FinalText {
        text: orig_text.to_string(),
        chars: (0, orig.len().saturating_sub(1)),
    };
    let tok_text = BasicTokenizer { do_lower_case }
        .tokenize(orig_text)
        .join(" ");
    // `tok_text.find(pred_text)`, in characters.
    let Some(byte_start) = tok_text.find(pred_text) else {
        return whole;
    };
    let start_position = tok_text[..byte_start].chars().count();
    // Python: `start_position + len(pred_text) - 1`, which is -1 for an empty prediction:
    // no character has that position, so the whole text is returned.
    let Some(end_position) = (start_position + pred_text.chars().count()).checked_sub(1) else {
        return whole;
    };
    let tok: Vec<char> = tok_text.chars().collect();
    let (orig_ns_text, orig_ns_to_s_map) = strip_spaces(&orig);
    let (tok_ns_text, tok_ns_to_s_map) = strip_spaces(&tok);
    if orig_ns_text.len() != tok_ns_text.len() {
        return whole;
    }
    // `orig_ns_to_s_map[tok_s_to_ns_map[position]]`: the position must be a non-space
    // character of tok_text.
    let project = |position: usize| {
        tok_ns_to_s_map
            .binary_search(&position)
            .ok()
            .and_then(|ns| orig_ns_to_s_map.get(ns).copied())
    };
    let (Some(orig_start), Some(orig_end)) = (project(start_position), project(end_position))
    else {
        return whole;
    };
    FinalText {
        text: orig
            .get(orig_start..=orig_end)
            .unwrap_or(&[])
            .iter()
            .collect(),
        chars: (orig_start, orig_end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_google() {
        // Each expectation is what Google's get_final_text returns.
        let t = get_final_text("steve smith", "Steve Smith's", true);
        assert_eq!((t.text.as_str(), t.chars), ("Steve Smith", (0, 10)));
        assert_eq!(
            get_final_text("smith", "Steve Smith's", false).text,
            "Steve Smith's"
        );
        assert_eq!(get_final_text("1895", "(1895-1943).", true).text, "1895");
        assert_eq!(get_final_text("", "abc", true).text, "abc");
        // Accents stripped by the tokenizer: the lengths still agree, so the original
        // characters come back.
        assert_eq!(get_final_text("cafe", "the Café.", true).text, "Café");
        assert_eq!(get_final_text("ix", "İx", true).chars, (0, 1));
        assert_eq!(get_final_text("i\u{307}", "İx", true).text, "İx");
        // A decomposed accent is one character fewer once stripped: the alignment fails and
        // the whole text is returned.
        assert_eq!(
            get_final_text("cafe", "Cafe\u{301} noir", true).text,
            "Cafe\u{301} noir"
        );
    }
}
