//! The SQuAD metric against the official `evaluate-v1.1.py` / `evaluate-v2.0.py`. Each
//! expected string below is what the official script printed (CPython 3.11.7) for the same
//! inputs: the fixture's predictions against its questions, and synthetic predictions for
//! every question of the shared dev halves (built here exactly as the generator script below
//! built them in Python).
//!
//! The generator (questions numbered `i` from 0 in file order, `ctx = context.split()`,
//! `ans` the answer texts):
//! ```text
//! no answers: '' if i % 3 == 0 else ' '.join(ctx[:3])
//! i % 7 == 0: ''            1: ans[0]               2: 'The ' + ans[0] + '!'
//!          3: ' '.join(ans[0].split()[:-1])         4: ' '.join(ctx[:5])
//!          5: ans[-1] + ' ' + ans[0]                6: 'a ' + ans[0]
//! na_prob: x = ((i * 37) % 101) / 100.0; x - 0.6 if ans else x
//! ```

mod common;

use std::path::PathBuf;

use bert::squad::pystr::split_whitespace;
use bert::squad::{evaluate_v1, evaluate_v2, read_json_dict, Dataset, PyDict};

fn fixture(version: &str, name: &str) -> PathBuf {
    common::shared_dir()
        .join("fixtures/squad_reference")
        .join(version)
        .join(name)
}

fn dev(version: &str) -> Dataset {
    Dataset::from_file(
        common::shared_dir()
            .join("data/squad")
            .join(format!("dev-{version}.json")),
    )
    .unwrap()
}

/// The generator of the module documentation.
fn synthetic(data: &Dataset) -> (PyDict<String>, PyDict<f64>) {
    let mut preds = PyDict::new();
    let mut na = PyDict::new();
    let mut i = 0usize;
    for p in &data.paragraphs {
        let ctx = split_whitespace(&p.context);
        for q in &p.qas {
            let ans: Vec<&str> = q
                .answers
                .iter()
                .flatten()
                .map(|a| a.text.as_str())
                .collect();
            let pred = match (ans.first(), i % 7) {
                (None, _) if i % 3 == 0 => String::new(),
                (None, _) => ctx[..3.min(ctx.len())].join(" "),
                (Some(_), 0) => String::new(),
                (Some(a), 1) => a.to_string(),
                (Some(a), 2) => format!("The {a}!"),
                (Some(a), 3) => {
                    let words = split_whitespace(a);
                    words[..words.len().saturating_sub(1)].join(" ")
                }
                (Some(_), 4) => ctx[..5.min(ctx.len())].join(" "),
                (Some(a), 5) => format!("{} {a}", ans[ans.len() - 1]),
                (Some(a), _) => format!("a {a}"),
            };
            preds.insert(q.id.clone(), pred);
            let x = ((i * 37) % 101) as f64 / 100.0;
            na.insert(q.id.clone(), if ans.is_empty() { x } else { x - 0.6 });
            i += 1;
        }
    }
    (preds, na)
}

#[test]
fn v1_1_fixture_predictions() {
    let data = Dataset::from_file(fixture("v1.1", "input_subset.json")).unwrap();
    let preds = read_json_dict(&fixture("v1.1", "predictions.json")).unwrap();
    let eval = evaluate_v1(&data, &preds).unwrap();
    assert_eq!(
        eval.to_json(),
        r#"{"exact_match": 0.0, "f1": 5.463076382345462}"#
    );
    assert_eq!(eval.total, 40);
}

#[test]
fn v2_0_fixture_predictions() {
    let data = Dataset::from_file(fixture("v2.0", "input_subset.json")).unwrap();
    let preds = read_json_dict(&fixture("v2.0", "predictions.json")).unwrap();
    let na = read_json_dict(&fixture("v2.0", "null_odds.json")).unwrap();
    let eval = evaluate_v2(&data, &preds, Some(&na), 1.0).unwrap();
    assert_eq!(
        eval.to_json(Some(2)),
        r#"{
  "exact": 2.5,
  "f1": 2.7500000000000004,
  "total": 40,
  "HasAns_exact": 0.0,
  "HasAns_f1": 0.5882352941176471,
  "HasAns_total": 17,
  "NoAns_exact": 4.3478260869565215,
  "NoAns_f1": 4.3478260869565215,
  "NoAns_total": 23,
  "best_exact": 57.5,
  "best_exact_thresh": 0.0,
  "best_f1": 57.5,
  "best_f1_thresh": 0.0
}"#
    );
}

#[test]
fn v1_1_dev_half() {
    let data = dev("v1.1");
    let (preds, _) = synthetic(&data);
    let eval = evaluate_v1(&data, &preds).unwrap();
    assert_eq!(
        eval.to_json(),
        r#"{"exact_match": 43.64466292134831, "f1": 60.901522907999535}"#
    );
    assert!(eval.unanswered.is_empty());
}

#[test]
fn v2_0_dev_half() {
    let data = dev("v2.0");
    let (preds, na) = synthetic(&data);
    // No --na-prob-file: no threshold search.
    let eval = evaluate_v2(&data, &preds, None, 1.0).unwrap();
    assert_eq!(
        eval.to_json(None),
        r#"{"exact": 38.40070298769771, "f1": 46.79804076872119, "total": 5690, "HasAns_exact": 43.87166546503244, "HasAns_f1": 61.09619753930226, "HasAns_total": 2774, "NoAns_exact": 33.19615912208505, "NoAns_f1": 33.19615912208505, "NoAns_total": 2916}"#
    );
    let eval = evaluate_v2(&data, &preds, Some(&na), 1.0).unwrap();
    assert_eq!(
        eval.to_json(Some(2)),
        r#"{
  "exact": 38.40070298769771,
  "f1": 46.79804076872119,
  "total": 5690,
  "HasAns_exact": 43.87166546503244,
  "HasAns_f1": 61.09619753930226,
  "HasAns_total": 2774,
  "NoAns_exact": 33.19615912208505,
  "NoAns_f1": 33.19615912208505,
  "NoAns_total": 2916,
  "best_exact": 63.98945518453427,
  "best_exact_thresh": -0.010000000000000009,
  "best_f1": 69.13783298707445,
  "best_f1_thresh": 0.09999999999999998
}"#
    );
    // --na-prob-thresh 0.2 -o out.json
    let eval = evaluate_v2(&data, &preds, Some(&na), 0.2).unwrap();
    assert_eq!(
        eval.to_json(None),
        r#"{"exact": 61.107205623901585, "f1": 67.80526959750556, "total": 5690, "HasAns_exact": 34.78731074260995, "HasAns_f1": 48.526310025165124, "HasAns_total": 2774, "NoAns_exact": 86.14540466392319, "NoAns_f1": 86.14540466392319, "NoAns_total": 2916, "best_exact": 63.98945518453427, "best_exact_thresh": -0.010000000000000009, "best_f1": 69.13783298707445, "best_f1_thresh": 0.09999999999999998}"#
    );
}

#[test]
fn missing_predictions() {
    let data = dev("v1.1");
    let (preds, _) = synthetic(&data);
    let first = data.questions().next().unwrap().id.clone();
    let kept: PyDict<String> = preds
        .iter()
        .filter(|(k, _)| *k != first)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // v1.1 scores a missing question 0 and counts it.
    let eval = evaluate_v1(&data, &kept).unwrap();
    assert_eq!(eval.unanswered, [first]);
    assert_eq!(eval.total, 5696);
    // v2.0 fails on it (Python: KeyError in the HasAns split).
    let data = dev("v2.0");
    let (v2, _) = synthetic(&data);
    let first = data.questions().next().unwrap().id.clone();
    let kept: PyDict<String> = v2
        .iter()
        .filter(|(k, _)| *k != first)
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let msg = evaluate_v2(&data, &kept, None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&first) && msg.contains("dev-v2.0.json"),
        "{msg}"
    );
}
