//! The files of `write_predictions`: `predictions.json`, `nbest_predictions.json` and
//! (SQuAD 2.0) `null_odds.json`, as `json.dumps(..., indent=4) + "\n"` writes them: keys in
//! example order (a repeated question id keeps its first place and its last value, as in
//! Google's `OrderedDict`), floats as Python's `repr`, non-ASCII escaped.

use std::path::Path;

use super::predictions::{NbestEntry, Predictions};
use super::pydict::PyDict;
use crate::pyjson::{dumps, PyValue};
use crate::Result;

impl Predictions {
    /// `all_predictions`: question id → predicted text.
    pub fn answers(&self) -> PyDict<String> {
        self.predictions
            .iter()
            .map(|p| (p.qas_id.clone(), p.text.clone()))
            .collect()
    }

    /// `scores_diff_json` (SQuAD 2.0): question id → null score minus best non-null score.
    pub fn null_odds(&self) -> Option<PyDict<f64>> {
        self.version_2_with_negative.then(|| {
            self.predictions
                .iter()
                .map(|p| (p.qas_id.clone(), p.null_odds.unwrap_or(0.0)))
                .collect()
        })
    }

    /// `predictions.json`: `json.dumps(all_predictions, indent=4) + "\n"`.
    pub fn predictions_json(&self) -> String {
        document(
            self.answers()
                .iter()
                .map(|(k, v)| (k, PyValue::Str(v.clone()))),
        )
    }

    /// `nbest_predictions.json`: every example's n-best list with `text`, `probability`,
    /// `start_logit`, `end_logit`.
    pub fn nbest_predictions_json(&self) -> String {
        let lists: PyDict<&[NbestEntry]> = self
            .predictions
            .iter()
            .map(|p| (p.qas_id.clone(), p.nbest.as_slice()))
            .collect();
        document(lists.iter().map(|(k, nbest)| {
            let list = nbest
                .iter()
                .map(|e| {
                    PyValue::Dict(vec![
                        ("text".into(), PyValue::Str(e.text.clone())),
                        ("probability".into(), PyValue::Float(e.probability)),
                        ("start_logit".into(), PyValue::Float(e.start_logit)),
                        ("end_logit".into(), PyValue::Float(e.end_logit)),
                    ])
                })
                .collect();
            (k, PyValue::List(list))
        }))
    }

    /// `null_odds.json` (SQuAD 2.0 only).
    pub fn null_odds_json(&self) -> Option<String> {
        let odds = self.null_odds()?;
        Some(document(odds.iter().map(|(k, v)| (k, PyValue::Float(*v)))))
    }

    /// Writes the files as `write_predictions` does; `null_odds.json` only for SQuAD 2.0.
    /// Each file is written to a temporary file, synced, then renamed.
    pub fn write_files(
        &self,
        output_prediction_file: &Path,
        output_nbest_file: &Path,
        output_null_log_odds_file: &Path,
    ) -> Result<()> {
        write_text(output_prediction_file, &self.predictions_json())?;
        write_text(output_nbest_file, &self.nbest_predictions_json())?;
        if let Some(odds) = self.null_odds_json() {
            write_text(output_null_log_odds_file, &odds)?;
        }
        Ok(())
    }
}

/// `json.dumps(dict, indent=4) + "\n"`.
fn document<'a>(items: impl Iterator<Item = (&'a str, PyValue)>) -> String {
    let dict = PyValue::Dict(items.map(|(k, v)| (k.to_string(), v)).collect());
    dumps(&dict, Some(4)) + "\n"
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::output::write_bytes(path, text.as_bytes())
}
