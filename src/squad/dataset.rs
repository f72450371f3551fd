//! The SQuAD JSON file (`train-v1.1.json`, `dev-v2.0.json`, ...): `{"data": [{"paragraphs":
//! [{"context": ..., "qas": [{"id", "question", "answers": [{"text", "answer_start"}],
//! "is_impossible"}]}]}]}`, as `json.load` reads it for `read_squad_examples` and for the
//! official evaluation scripts. Fields either of them ignores (`version`, `title`,
//! `plausible_answers`) are ignored here too.
//!
//! [`Dataset::from_bytes`] takes the raw bytes, so it can be fuzzed directly. Every error
//! names the file and, past the outer structure, the question by its id and its place
//! (`data[3].paragraphs[2].qas[1]`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// One SQuAD file: the questions of every paragraph of every article, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Where the bytes came from (a path, or a name given to [`Dataset::from_bytes`]).
    pub source: PathBuf,
    pub paragraphs: Vec<Paragraph>,
}

/// One `context` with its questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    pub context: String,
    pub qas: Vec<Question>,
    /// Index of its article in `data`.
    pub article: usize,
    /// Index among its article's paragraphs.
    pub index: usize,
}

/// One entry of `qas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub question: String,
    /// `answers`; `None` when the key is missing (a prediction-only file).
    pub answers: Option<Vec<Answer>>,
    /// `is_impossible` (SQuAD 2.0); `None` when the key is missing.
    pub is_impossible: Option<bool>,
    /// Where it is, for messages: `data[3].paragraphs[2].qas[1]`.
    pub place: String,
}

/// One entry of `answers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// `answer_start`: the answer's first character (code point, as Python counts) in the
    /// context; `None` when missing (the evaluation scripts do not need it).
    pub answer_start: Option<i64>,
}

#[derive(Deserialize)]
struct FileJson {
    data: Vec<ArticleJson>,
}

#[derive(Deserialize)]
struct ArticleJson {
    paragraphs: Vec<ParagraphJson>,
}

#[derive(Deserialize)]
struct ParagraphJson {
    context: String,
    // Each question is decoded on its own, so that its errors can name it.
    qas: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct QaJson {
    question: String,
    answers: Option<Vec<AnswerJson>>,
    is_impossible: Option<bool>,
}

#[derive(Deserialize)]
struct AnswerJson {
    text: String,
    answer_start: Option<i64>,
}

impl Dataset {
    /// Reads and parses a SQuAD file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Dataset> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Dataset::from_bytes(&bytes, path)
    }

    /// Parses the bytes of a SQuAD file; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: impl AsRef<Path>) -> Result<Dataset> {
        let source = source.as_ref();
        let bad = |message: String| Error::format(source, None, message);
        let file: FileJson = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not a SQuAD JSON file: {e}")))?;
        let mut paragraphs = Vec::new();
        for (a, article) in file.data.into_iter().enumerate() {
            for (p, paragraph) in article.paragraphs.into_iter().enumerate() {
                let mut qas = Vec::with_capacity(paragraph.qas.len());
                for (q, value) in paragraph.qas.into_iter().enumerate() {
                    let place = format!("data[{a}].paragraphs[{p}].qas[{q}]");
                    let id = match value.get("id") {
                        Some(serde_json::Value::String(id)) => id.clone(),
                        Some(other) => {
                            return Err(bad(format!("{place}: id {other} is not a string")))
                        }
                        None => return Err(bad(format!("{place}: no id"))),
                    };
                    let qa: QaJson = serde_json::from_value(value)
                        .map_err(|e| bad(format!("question {id} ({place}): {e}")))?;
                    qas.push(Question {
                        id,
                        question: qa.question,
                        answers: qa.answers.map(|answers| {
                            answers
                                .into_iter()
                                .map(|a| Answer {
                                    text: a.text,
                                    answer_start: a.answer_start,
                                })
                                .collect()
                        }),
                        is_impossible: qa.is_impossible,
                        place,
                    });
                }
                paragraphs.push(Paragraph {
                    context: paragraph.context,
                    qas,
                    article: a,
                    index: p,
                });
            }
        }
        Ok(Dataset {
            source: source.to_path_buf(),
            paragraphs,
        })
    }

    /// Every question, in file order.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.paragraphs.iter().flat_map(|p| p.qas.iter())
    }

    /// An error about question `q` of this file.
    pub(crate) fn error(&self, q: &Question, message: impl std::fmt::Display) -> Error {
        Error::format(
            &self.source,
            None,
            format!("question {} ({}): {message}", q.id, q.place),
        )
    }
}
