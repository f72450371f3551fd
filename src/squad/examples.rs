//! run_squad.py: `SquadExample` and `read_squad_examples`.
//!
//! The context is split into `doc_tokens` on Google's five whitespace characters (space,
//! tab, CR, LF, U+202F), not on the tokenizer's; `char_to_word_offset` maps every character
//! (code point, as Python indexes a `str`) to the word it is in, or for whitespace to the
//! word before it. In training mode the answer is mapped to word positions and kept only if
//! the words contain the whitespace-normalized answer text; otherwise the question is
//! skipped (Google logs "Could not find answer"; here it is listed in
//! [`SquadExamples::skipped`], for the caller to log).
//!
//! Differences, all on input where Python raises an exception or builds a nonsensical
//! example: a context without words, an answer whose characters lie outside the context (or
//! in whitespace before its first word), an empty answer text, a training question without
//! exactly one answer, or a v2 training question without `is_impossible` is an error naming
//! the file and the question.

use std::path::Path;
use std::sync::Arc;

use super::dataset::{Dataset, Question};
use super::pystr;
use crate::Result;

/// A context split as `read_squad_examples` splits it, shared by its questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub text: String,
    /// `doc_tokens`: the context split on Google's whitespace.
    pub doc_tokens: Vec<String>,
    /// Byte span of each doc token in `text`.
    pub doc_token_spans: Vec<(usize, usize)>,
    /// `char_to_word_offset`, one entry per character (code point) of `text`: the index of
    /// the word the character is in, or of the last word before it; `None` for whitespace
    /// before the first word (Google's -1).
    pub char_to_word_offset: Vec<Option<usize>>,
}

/// `run_squad.SquadExample`: one question about one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquadExample {
    pub qas_id: String,
    pub question_text: String,
    pub doc: Arc<Document>,
    /// The answer's text (training mode); `Some("")` for an impossible question.
    pub orig_answer_text: Option<String>,
    /// Index into `doc_tokens` of the answer's first word (training mode; `None` for an
    /// impossible question, where Google stores -1).
    pub start_position: Option<usize>,
    /// Index into `doc_tokens` of the answer's last word.
    pub end_position: Option<usize>,
    /// SQuAD 2.0 training only: the question has no answer.
    pub is_impossible: bool,
}

impl SquadExample {
    /// The context's `doc_tokens`.
    pub fn doc_tokens(&self) -> &[String] {
        &self.doc.doc_tokens
    }
}

/// A training question left out because its answer text is not in the words it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedExample {
    pub qas_id: String,
    /// `" ".join(doc_tokens[start_position:end_position + 1])`.
    pub actual_text: String,
    /// The answer text with its whitespace normalized.
    pub cleaned_answer_text: String,
}

impl std::fmt::Display for SkippedExample {
    /// Google's warning: `Could not find answer: '<actual>' vs. '<cleaned>'`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Could not find answer: '{}' vs. '{}'",
            self.actual_text, self.cleaned_answer_text
        )
    }
}

/// What [`read_squad_examples`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquadExamples {
    pub examples: Vec<SquadExample>,
    /// Training questions skipped, in file order (Google's logged warnings).
    pub skipped: Vec<SkippedExample>,
}

/// `read_squad_examples(input_file, is_training)` with Google's `FLAGS.version_2_with_negative`.
pub fn read_squad_examples(
    input_file: impl AsRef<Path>,
    is_training: bool,
    version_2_with_negative: bool,
) -> Result<SquadExamples> {
    examples_from_dataset(
        &Dataset::from_file(input_file)?,
        is_training,
        version_2_with_negative,
    )
}

/// [`read_squad_examples`] of a file's bytes; `source` names it in errors. The entry point
/// for fuzzing the reader.
pub fn read_squad_examples_from_bytes(
    bytes: &[u8],
    source: impl AsRef<Path>,
    is_training: bool,
    version_2_with_negative: bool,
) -> Result<SquadExamples> {
    examples_from_dataset(
        &Dataset::from_bytes(bytes, source)?,
        is_training,
        version_2_with_negative,
    )
}

/// `_is_whitespace` of `read_squad_examples` (not the tokenizer's: U+202F but no other Zs).
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{202F}')
}

/// Splits a context into `doc_tokens` and `char_to_word_offset`.
pub fn split_context(text: &str) -> Document {
    let mut doc_tokens: Vec<String> = Vec::new();
    let mut doc_token_spans: Vec<(usize, usize)> = Vec::new();
    let mut char_to_word_offset = Vec::with_capacity(text.len());
    let mut prev_is_whitespace = true;
    for (i, c) in text.char_indices() {
        if is_whitespace(c) {
            prev_is_whitespace = true;
        } else {
            match (
                prev_is_whitespace,
                doc_tokens.last_mut(),
                doc_token_spans.last_mut(),
            ) {
                (false, Some(word), Some(span)) => {
                    word.push(c);
                    span.1 = i + c.len_utf8();
                }
                _ => {
                    doc_tokens.push(c.to_string());
                    doc_token_spans.push((i, i + c.len_utf8()));
                }
            }
            prev_is_whitespace = false;
        }
        char_to_word_offset.push(doc_tokens.len().checked_sub(1));
    }
    Document {
        text: text.to_string(),
        doc_tokens,
        doc_token_spans,
        char_to_word_offset,
    }
}

/// The examples of a parsed file.
pub fn examples_from_dataset(
    data: &Dataset,
    is_training: bool,
    version_2_with_negative: bool,
) -> Result<SquadExamples> {
    let mut out = SquadExamples {
        examples: Vec::new(),
        skipped: Vec::new(),
    };
    for paragraph in &data.paragraphs {
        let doc = Arc::new(split_context(&paragraph.context));
        for qa in &paragraph.qas {
            if doc.doc_tokens.is_empty() {
                return Err(data.error(qa, "the context is empty"));
            }
            let mut example = SquadExample {
                qas_id: qa.id.clone(),
                question_text: qa.question.clone(),
                doc: Arc::clone(&doc),
                orig_answer_text: None,
                start_position: None,
                end_position: None,
                is_impossible: false,
            };
            if is_training {
                match training_answer(data, qa, &doc, version_2_with_negative)? {
                    TrainingAnswer::Impossible => {
                        example.is_impossible = true;
                        example.orig_answer_text = Some(String::new());
                    }
                    TrainingAnswer::Words { text, start, end } => {
                        example.orig_answer_text = Some(text);
                        example.start_position = Some(start);
                        example.end_position = Some(end);
                    }
                    TrainingAnswer::Skipped(skipped) => {
                        out.skipped.push(skipped);
                        continue;
                    }
                }
            }
            out.examples.push(example);
        }
    }
    Ok(out)
}

enum TrainingAnswer {
    Impossible,
    Words {
        text: String,
        start: usize,
        end: usize,
    },
    Skipped(SkippedExample),
}

/// The training-mode part of `read_squad_examples` for one question.
fn training_answer(
    data: &Dataset,
    qa: &Question,
    doc: &Document,
    version_2_with_negative: bool,
) -> Result<TrainingAnswer> {
    let is_impossible = if version_2_with_negative {
        qa.is_impossible
            .ok_or_else(|| data.error(qa, "no is_impossible (needed for SQuAD 2.0 training)"))?
    } else {
        false
    };
    let answers = qa
        .answers
        .as_deref()
        .ok_or_else(|| data.error(qa, "no answers"))?;
    if answers.len() != 1 && !is_impossible {
        return Err(data.error(
            qa,
            format!(
                "{} answers: for training, each question should have exactly 1 answer",
                answers.len()
            ),
        ));
    }
    if is_impossible {
        return Ok(TrainingAnswer::Impossible);
    }
    let answer = &answers[0];
    let text = &answer.text;
    let answer_offset = answer
        .answer_start
        .ok_or_else(|| data.error(qa, "the answer has no answer_start"))?;
    let answer_length = text.chars().count() as i64;
    if answer_length == 0 {
        return Err(data.error(qa, "the answer text is empty"));
    }
    let chars = doc.char_to_word_offset.len();
    let last = answer_offset + answer_length - 1;
    let word_at = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| doc.char_to_word_offset.get(i).copied())
    };
    let (start, end) = match (word_at(answer_offset), word_at(last)) {
        (Some(Some(start)), Some(Some(end))) => (start, end),
        (Some(None), _) => {
            return Err(data.error(
                qa,
                format!("answer_start {answer_offset} is in the whitespace before the first word"),
            ))
        }
        _ => {
            return Err(data.error(
                qa,
                format!(
                    "the answer (characters {answer_offset}..{}) lies outside the context \
                     ({chars} characters)",
                    last + 1
                ),
            ))
        }
    };
    // Only answers whose text can be recovered from the words are kept (Google: "likely due
    // to weird Unicode stuff").
    let actual_text = doc.doc_tokens[start..=end].join(" ");
    let cleaned_answer_text = pystr::split_whitespace(text).join(" ");
    if !actual_text.contains(cleaned_answer_text.as_str()) {
        return Ok(TrainingAnswer::Skipped(SkippedExample {
            qas_id: qa.id.clone(),
            actual_text,
            cleaned_answer_text,
        }));
    }
    Ok(TrainingAnswer::Words {
        text: text.clone(),
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_googles_whitespace_only() {
        // U+202F splits, U+00A0 does not; whitespace maps to the word before it.
        let c = split_context(" ab  c\u{202F}d\u{a0}e");
        assert_eq!(c.doc_tokens, ["ab", "c", "d\u{a0}e"]);
        assert_eq!(
            c.char_to_word_offset,
            [
                None,
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                Some(2)
            ]
        );
        assert_eq!(c.doc_token_spans, [(1, 3), (5, 6), (9, 13)]);
    }

    fn read(json: &str, is_training: bool, v2: bool) -> Result<SquadExamples> {
        read_squad_examples_from_bytes(json.as_bytes(), "test.json", is_training, v2)
    }

    fn one(context: &str, answer: &str, start: i64) -> String {
        serde_json::json!({"data": [{"paragraphs": [{"context": context, "qas": [
            {"id": "q1", "question": "Q?", "answers": [{"text": answer, "answer_start": start}]}
        ]}]}]})
        .to_string()
    }

    #[test]
    fn answers_map_to_words() {
        let r = read(
            &one("The leader was John Smith (1895-1943).", "1895", 27),
            true,
            false,
        )
        .unwrap();
        let e = &r.examples[0];
        assert_eq!((e.start_position, e.end_position), (Some(5), Some(5)));
        assert_eq!(e.doc_tokens()[5], "(1895-1943).");
        // Prediction mode reads no answer.
        let r = read(&one("The leader was John Smith.", "John", 15), false, false).unwrap();
        assert_eq!(r.examples[0].start_position, None);
        assert_eq!(r.examples[0].orig_answer_text, None);
    }

    #[test]
    fn an_answer_not_in_its_words_is_skipped() {
        // answer_start points at "leader", whose word does not contain "John".
        let r = read(&one("The leader was John Smith.", "John", 4), true, false).unwrap();
        assert!(r.examples.is_empty());
        assert_eq!(
            r.skipped[0].to_string(),
            "Could not find answer: 'leader' vs. 'John'"
        );
    }

    #[test]
    fn bad_answers_are_errors_naming_the_question() {
        for (context, answer, start, want) in [
            ("The leader.", "leader.", 5, "lies outside the context"),
            ("The leader.", "The", -1, "lies outside the context"),
            (
                "  The leader.",
                "The",
                0,
                "whitespace before the first word",
            ),
            ("The leader.", "", 0, "empty"),
            (" \t", "x", 0, "context is empty"),
        ] {
            let err = read(&one(context, answer, start), true, false).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("test.json") && msg.contains("question q1"),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg}");
        }
        let two = r#"{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "q2",
            "question": "?", "answers": [{"text": "a", "answer_start": 0},
            {"text": "b", "answer_start": 2}]}]}]}]}"#;
        assert!(read(two, true, false)
            .unwrap_err()
            .to_string()
            .contains("exactly 1 answer"));
        // Several answers are fine for prediction.
        assert_eq!(read(two, false, false).unwrap().examples.len(), 1);
        let no_flag = r#"{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "q3",
            "question": "?", "answers": []}]}]}]}"#;
        let msg = read(no_flag, true, true).unwrap_err().to_string();
        assert!(msg.contains("q3") && msg.contains("is_impossible"), "{msg}");
        let bad = r#"{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "q4"}]}]}]}"#;
        let msg = read(bad, false, false).unwrap_err().to_string();
        assert!(msg.contains("q4") && msg.contains("question"), "{msg}");
        assert!(read("{\"data\": [", false, false).is_err());
    }

    #[test]
    fn impossible_questions_in_v2_training() {
        let json = r#"{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "q",
            "question": "?", "answers": [], "is_impossible": true}]}]}]}"#;
        let e = &read(json, true, true).unwrap().examples[0];
        assert!(e.is_impossible);
        assert_eq!(e.orig_answer_text.as_deref(), Some(""));
        // Without version_2_with_negative the flag is not read: no answer is an error.
        assert!(read(json, true, false).is_err());
    }
}
