//! The official SQuAD metric: `evaluate-v1.1.py` and `evaluate-v2.0.py` (exact match and
//! token F1 after `normalize_answer`; for 2.0 the HasAns/NoAns split, the no-answer
//! probability threshold and the best-threshold search), and the JSON they print.
//!
//! Quirks kept: v1.1 counts an unanswered question as 0 in the total; v2.0 leaves it out of
//! the overall total (and then fails on the HasAns/NoAns split, which is an error here); in
//! v2.0 a gold answer that normalizes to "" does not count, and a question without one has
//! the gold answer "". Sums run in file order in f64, as Python 3.11's `sum` adds (3.12 and
//! later compensate, which can change the last digit).

use std::collections::HashMap;
use std::path::Path;

use super::dataset::Dataset;
use super::pydict::PyDict;
use super::pystr;
use crate::pyjson::{dumps, PyValue};
use crate::{Error, Result};

/// `normalize_answer`: lower-case, remove ASCII punctuation (`string.punctuation`), remove
/// the articles "a", "an", "the" as whole words (`\b(a|an|the)\b` → " "), then collapse
/// whitespace.
pub fn normalize_answer(s: &str) -> String {
    let text = pystr::lower(s);
    let text: String = text.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    let text = remove_articles(&text);
    pystr::split_whitespace(&text).join(" ")
}

/// `re.sub(r'\b(a|an|the)\b', ' ', text)`, the alternatives tried in that order.
fn remove_articles(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let word_at = |i: usize| chars.get(i).is_some_and(|&c| pystr::is_word(c));
    // `\b` before position i: a word character on exactly one side.
    let boundary = |i: usize| (i > 0 && word_at(i - 1)) != word_at(i);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let matched = boundary(i)
            .then(|| {
                ["a", "an", "the"].iter().find_map(|article| {
                    let n = article.len();
                    let same = chars
                        .get(i..i + n)
                        .is_some_and(|w| w.iter().copied().eq(article.chars()));
                    (same && boundary(i + n)).then_some(n)
                })
            })
            .flatten();
        match matched {
            Some(n) => {
                out.push(' ');
                i += n;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// `Counter(a) & Counter(b)`, summed: tokens the two have in common, with multiplicity.
fn num_same(a: &[&str], b: &[&str]) -> usize {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in a {
        *counts.entry(t).or_default() += 1;
    }
    b.iter()
        .filter(|t| match counts.get_mut(*t) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count()
}

/// Precision/recall F1 of the token overlap, as both scripts compute it.
fn token_f1(pred: &[&str], gold: &[&str]) -> f64 {
    let same = num_same(pred, gold);
    if same == 0 {
        return 0.0;
    }
    let precision = 1.0 * same as f64 / pred.len() as f64;
    let recall = 1.0 * same as f64 / gold.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// v1.1 `exact_match_score(prediction, ground_truth)`.
pub fn exact_match_score(prediction: &str, ground_truth: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(ground_truth)
}

/// v1.1 `f1_score(prediction, ground_truth)`: 0 when either normalizes to nothing.
pub fn f1_score(prediction: &str, ground_truth: &str) -> f64 {
    let p = normalize_answer(prediction);
    let g = normalize_answer(ground_truth);
    token_f1(&pystr::split_whitespace(&p), &pystr::split_whitespace(&g))
}

/// v2.0 `compute_exact(a_gold, a_pred)`.
pub fn compute_exact(a_gold: &str, a_pred: &str) -> f64 {
    f64::from(u8::from(
        normalize_answer(a_gold) == normalize_answer(a_pred),
    ))
}

/// v2.0 `compute_f1(a_gold, a_pred)`: when either normalizes to nothing, 1 if both do.
pub fn compute_f1(a_gold: &str, a_pred: &str) -> f64 {
    let g = normalize_answer(a_gold);
    let p = normalize_answer(a_pred);
    let gold_toks = pystr::split_whitespace(&g);
    let pred_toks = pystr::split_whitespace(&p);
    if gold_toks.is_empty() || pred_toks.is_empty() {
        return f64::from(u8::from(gold_toks == pred_toks));
    }
    token_f1(&pred_toks, &gold_toks)
}

/// What `evaluate-v1.1.py` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalV1 {
    /// Percent of questions whose prediction matches a gold answer exactly.
    pub exact_match: f64,
    /// Mean over questions of the best token F1 against the gold answers, in percent.
    pub f1: f64,
    /// Questions in the file, answered or not.
    pub total: usize,
    /// Questions without a prediction (the script's "Unanswered question ... will receive
    /// score 0." messages).
    pub unanswered: Vec<String>,
}

impl EvalV1 {
    /// `json.dumps({'exact_match': ..., 'f1': ...})`, as the script prints it.
    pub fn to_json(&self) -> String {
        dumps(
            &PyValue::Dict(vec![
                ("exact_match".into(), PyValue::Float(self.exact_match)),
                ("f1".into(), PyValue::Float(self.f1)),
            ]),
            None,
        )
    }
}

/// `evaluate-v1.1.py: evaluate(dataset, predictions)`. Errors: a question without answers
/// (Python: `max()` of an empty list), a file without questions.
pub fn evaluate_v1(dataset: &Dataset, predictions: &PyDict<String>) -> Result<EvalV1> {
    let (mut exact_match, mut f1, mut total) = (0usize, 0.0f64, 0usize);
    let mut unanswered = Vec::new();
    for qa in dataset.questions() {
        total += 1;
        let Some(prediction) = predictions.get(&qa.id) else {
            unanswered.push(qa.id.clone());
            continue;
        };
        let ground_truths = qa.answers.as_deref().unwrap_or(&[]);
        if ground_truths.is_empty() {
            return Err(dataset.error(qa, "no answers to evaluate against"));
        }
        exact_match += usize::from(
            ground_truths
                .iter()
                .any(|g| exact_match_score(prediction, &g.text)),
        );
        f1 += ground_truths
            .iter()
            .map(|g| f1_score(prediction, &g.text))
            .fold(f64::NEG_INFINITY, f64::max);
    }
    if total == 0 {
        return Err(Error::EmptyData(format!(
            "{}: no questions to evaluate",
            dataset.source.display()
        )));
    }
    Ok(EvalV1 {
        exact_match: 100.0 * exact_match as f64 / total as f64,
        f1: 100.0 * f1 / total as f64,
        total,
        unanswered,
    })
}

/// Exact match and F1 (percent) over a set of questions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub exact: f64,
    pub f1: f64,
    pub total: usize,
}

/// The best no-answer thresholds of `find_all_best_thresh`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestThresholds {
    pub best_exact: f64,
    pub best_exact_thresh: f64,
    pub best_f1: f64,
    pub best_f1_thresh: f64,
}

/// What `evaluate-v2.0.py` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalV2 {
    /// All questions with a prediction.
    pub all: Scores,
    /// Questions with an answer (`HasAns_*`), if there are any.
    pub has_ans: Option<Scores>,
    /// Questions without one (`NoAns_*`), if there are any.
    pub no_ans: Option<Scores>,
    /// With a no-answer probability file: the best thresholds.
    pub best: Option<BestThresholds>,
}

impl EvalV2 {
    /// The script's `out_eval` dict, keys in its order.
    pub fn to_value(&self) -> PyValue {
        let mut items = Vec::new();
        let mut scores = |prefix: &str, s: &Scores| {
            items.push((format!("{prefix}exact"), PyValue::Float(s.exact)));
            items.push((format!("{prefix}f1"), PyValue::Float(s.f1)));
            items.push((format!("{prefix}total"), PyValue::Int(s.total as i64)));
        };
        scores("", &self.all);
        if let Some(s) = &self.has_ans {
            scores("HasAns_", s);
        }
        if let Some(s) = &self.no_ans {
            scores("NoAns_", s);
        }
        if let Some(b) = &self.best {
            items.push(("best_exact".into(), PyValue::Float(b.best_exact)));
            items.push((
                "best_exact_thresh".into(),
                PyValue::Float(b.best_exact_thresh),
            ));
            items.push(("best_f1".into(), PyValue::Float(b.best_f1)));
            items.push(("best_f1_thresh".into(), PyValue::Float(b.best_f1_thresh)));
        }
        PyValue::Dict(items)
    }

    /// As the script prints it (`json.dumps(out_eval, indent=2)`; `--out-file` writes
    /// `json.dump(out_eval, f)`, i.e. `indent` `None`).
    pub fn to_json(&self, indent: Option<usize>) -> String {
        dumps(&self.to_value(), indent)
    }
}

/// `evaluate-v2.0.py` on `predictions`, with `--na-prob-file` as `na_probs` (`None`: every
/// question 0.0, and no threshold search) and `--na-prob-thresh` (the script's default is
/// 1.0). Errors: a question without a prediction, a prediction without a no-answer
/// probability, no questions with predictions (Python: `KeyError`, `ZeroDivisionError`).
pub fn evaluate_v2(
    dataset: &Dataset,
    predictions: &PyDict<String>,
    na_probs: Option<&PyDict<f64>>,
    na_prob_thresh: f64,
) -> Result<EvalV2> {
    let source = dataset.source.display();
    // `qid_to_has_ans`, `get_raw_scores`.
    let mut has_ans: PyDict<bool> = PyDict::new();
    let mut exact_raw: PyDict<f64> = PyDict::new();
    let mut f1_raw: PyDict<f64> = PyDict::new();
    for qa in dataset.questions() {
        let answers = qa.answers.as_deref().unwrap_or(&[]);
        has_ans.insert(qa.id.clone(), !answers.is_empty());
        let mut gold: Vec<&str> = answers
            .iter()
            .map(|a| a.text.as_str())
            .filter(|t| !normalize_answer(t).is_empty())
            .collect();
        if gold.is_empty() {
            // For unanswerable questions the only correct answer is "".
            gold.push("");
        }
        let Some(a_pred) = predictions.get(&qa.id) else {
            return Err(dataset.error(qa, "no prediction"));
        };
        let best = |f: fn(&str, &str) -> f64| {
            gold.iter()
                .map(|g| f(g, a_pred))
                .fold(f64::NEG_INFINITY, f64::max)
        };
        exact_raw.insert(qa.id.clone(), best(compute_exact));
        f1_raw.insert(qa.id.clone(), best(compute_f1));
    }
    let search_threshold = na_probs.is_some();
    let zeros: PyDict<f64>;
    let na_probs = match na_probs {
        Some(p) => p,
        None => {
            zeros = predictions
                .iter()
                .map(|(k, _)| (k.to_string(), 0.0))
                .collect();
            &zeros
        }
    };
    // `apply_no_ans_threshold`.
    let threshold = |scores: &PyDict<f64>| -> Result<PyDict<f64>> {
        scores
            .iter()
            .map(|(qid, &s)| {
                let p = na_probs.get(qid).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{source}: question {qid} has no no-answer probability"
                    ))
                })?;
                let s = if *p > na_prob_thresh {
                    f64::from(u8::from(!has_ans.get(qid).copied().unwrap_or(false)))
                } else {
                    s
                };
                Ok((qid.to_string(), s))
            })
            .collect()
    };
    let exact_thresh = threshold(&exact_raw)?;
    let f1_thresh = threshold(&f1_raw)?;
    if exact_thresh.is_empty() {
        return Err(Error::EmptyData(format!(
            "{source}: no questions to evaluate"
        )));
    }
    // `make_eval_dict`.
    let eval = |ids: &[&str]| -> Scores {
        let sum = |d: &PyDict<f64>| -> f64 { ids.iter().filter_map(|k| d.get(k)).sum() };
        let total = ids.len();
        Scores {
            exact: 100.0 * sum(&exact_thresh) / total as f64,
            f1: 100.0 * sum(&f1_thresh) / total as f64,
            total,
        }
    };
    let all_ids: Vec<&str> = exact_thresh.iter().map(|(k, _)| k).collect();
    let has_ids: Vec<&str> = has_ans.iter().filter(|(_, &v)| v).map(|(k, _)| k).collect();
    let no_ids: Vec<&str> = has_ans
        .iter()
        .filter(|(_, &v)| !v)
        .map(|(k, _)| k)
        .collect();
    let best = search_threshold.then(|| {
        let (best_exact, best_exact_thresh) =
            find_best_thresh(predictions, &exact_raw, na_probs, &has_ans);
        let (best_f1, best_f1_thresh) = find_best_thresh(predictions, &f1_raw, na_probs, &has_ans);
        BestThresholds {
            best_exact,
            best_exact_thresh,
            best_f1,
            best_f1_thresh,
        }
    });
    Ok(EvalV2 {
        all: eval(&all_ids),
        has_ans: (!has_ids.is_empty()).then(|| eval(&has_ids)),
        no_ans: (!no_ids.is_empty()).then(|| eval(&no_ids)),
        best,
    })
}

/// `find_best_thresh`: walking the questions by increasing no-answer probability, the
/// threshold below which predicting "" maximizes the score (raw scores, before
/// thresholding), as a percentage of the questions with predictions.
fn find_best_thresh(
    preds: &PyDict<String>,
    scores: &PyDict<f64>,
    na_probs: &PyDict<f64>,
    has_ans: &PyDict<bool>,
) -> (f64, f64) {
    let num_no_ans = has_ans.values().filter(|&&v| !v).count();
    let mut cur_score = num_no_ans as f64;
    let mut best_score = cur_score;
    let mut best_thresh = 0.0;
    // `sorted(na_probs, key=...)`: stable, so equal probabilities keep the file's order.
    let mut qid_list: Vec<(&str, f64)> = na_probs.iter().map(|(k, &p)| (k, p)).collect();
    qid_list.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    for (qid, p) in qid_list {
        let Some(&score) = scores.get(qid) else {
            continue;
        };
        let diff = if has_ans.get(qid).copied().unwrap_or(false) {
            score
        } else if preds.get(qid).is_some_and(|p| !p.is_empty()) {
            -1.0
        } else {
            0.0
        };
        cur_score += diff;
        if cur_score > best_score {
            best_score = cur_score;
            best_thresh = p;
        }
    }
    (100.0 * best_score / scores.len() as f64, best_thresh)
}

/// A predictions file (`predictions.json`) or a no-answer probability file
/// (`null_odds.json`): a JSON object keyed by question id, in file order.
pub fn read_json_dict<V: serde::de::DeserializeOwned>(path: &Path) -> Result<PyDict<V>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::format(path, None, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_the_official_script() {
        // Each expectation is normalize_answer's in evaluate-v2.0.py under CPython 3.11.
        for (s, want) in [
            ("The Denver Broncos!", "denver broncos"),
            ("an apple a day", "apple day"),
            ("Theory of a", "theory of"),
            ("a-b", "ab"),
            ("the_the", "thethe"),
            ("A\u{301}n the\u{301}", "\u{301}n \u{301}"),
            ("l'an", "lan"),
            ("  Tab\tand\u{a0}nbsp ", "tab and nbsp"),
            ("«the»", "« »"),
            ("ΣΑΣ an", "σας"),
            ("", ""),
        ] {
            assert_eq!(normalize_answer(s), want, "{s:?}");
        }
    }

    #[test]
    fn exact_and_f1() {
        assert!(exact_match_score("the Broncos", "Broncos."));
        assert_eq!(f1_score("Denver Broncos team", "Broncos"), 0.5);
        assert_eq!(f1_score("", "Broncos"), 0.0);
        assert_eq!(compute_f1("", ""), 1.0);
        assert_eq!(compute_f1("the", "a"), 1.0);
        assert_eq!(compute_f1("x", ""), 0.0);
        // Counter intersection counts repeats once per occurrence in both.
        assert_eq!(
            f1_score("a b b b", "b b c"),
            2.0 * (2.0 / 3.0) * (2.0 / 3.0) / (4.0 / 3.0)
        );
    }
}
