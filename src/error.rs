//! The one error type of libbert.
//!
//! Every variant has a stable numeric [`Error::code`] that the C ABI exposes as `bert_status`;
//! codes are never renumbered, new ones are appended.

use std::fmt;
use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in libbert. Messages name the file, line or tensor involved.
#[derive(Debug)]
pub enum Error {
    /// An I/O error on a named file.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Input text (or a file that must be text) is not valid UTF-8.
    InvalidUtf8 { what: String },
    /// A vocabulary file is missing, empty, has duplicates or lacks a required token.
    Vocab(String),
    /// A configuration (`bert_config.json` / `config.json`) is missing a field or inconsistent.
    Config(String),
    /// A model file is malformed: truncated, corrupt, wrong checksum, lying header.
    Format {
        path: PathBuf,
        tensor: Option<String>,
        message: String,
    },
    /// A tensor is missing or has the wrong shape for the configuration.
    Shape(String),
    /// A caller passed an argument that cannot be honoured (bad sequence length, label id, ...).
    InvalidArgument(String),
    /// A feature that exists in the API but is not compiled in or not available here.
    Unsupported(String),
    /// The caller asked to stop (an abort hook between layers, a progress callback between
    /// training steps). Whatever was finished before stays valid.
    Cancelled(String),
    /// A label id outside `0..num_labels`, or a label name not in the label list.
    Label(String),
    /// Training produced a loss or gradient that is not finite (learning rate too high?).
    Diverged(String),
    /// A model is not fine-tuned for the task: a classifier without its head or label list,
    /// a question answerer without its span head (`cls/squad/*`), or a model without the
    /// pooler a head reads. The message names what is missing.
    NotAClassifier(String),
    /// There is nothing to work on: no training or evaluation examples.
    EmptyData(String),
}

impl Error {
    /// Stable numeric code, identical to the C ABI's `bert_status` value.
    pub fn code(&self) -> i32 {
        match self {
            Error::Io { .. } => 1,
            Error::InvalidUtf8 { .. } => 2,
            Error::Vocab(_) => 3,
            Error::Config(_) => 4,
            Error::Format { .. } => 5,
            Error::Shape(_) => 6,
            Error::InvalidArgument(_) => 7,
            Error::Unsupported(_) => 8,
            // 9, 10 and 12 exist only at the C boundary (NULL argument, buffer too small,
            // internal error).
            Error::Cancelled(_) => 11,
            Error::Label(_) => 13,
            Error::Diverged(_) => 14,
            Error::NotAClassifier(_) => 15,
            Error::EmptyData(_) => 16,
        }
    }

    /// Helper for I/O errors on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Helper for malformed files.
    pub fn format(
        path: impl Into<PathBuf>,
        tensor: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            tensor: tensor.map(str::to_owned),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::InvalidUtf8 { what } => write!(f, "invalid UTF-8 in {what}"),
            Error::Vocab(m) => write!(f, "vocabulary: {m}"),
            Error::Config(m) => write!(f, "config: {m}"),
            Error::Format {
                path,
                tensor: Some(t),
                message,
            } => write!(f, "{}: tensor {t}: {message}", path.display()),
            Error::Format {
                path,
                tensor: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            Error::Shape(m) => write!(f, "shape: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Cancelled(m) => write!(f, "cancelled: {m}"),
            Error::Label(m) => write!(f, "label: {m}"),
            Error::Diverged(m) => write!(f, "diverged: {m}"),
            // Not "not a classifier": a SQuAD model lacking its span head lands here too.
            Error::NotAClassifier(m) => write!(f, "not fine-tuned for the task: {m}"),
            Error::EmptyData(m) => write!(f, "no data: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
