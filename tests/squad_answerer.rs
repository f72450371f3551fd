//! `QuestionAnswerer`: answers are byte spans of the context, ranked best first; long
//! contexts go through several windows; a question's answers do not depend on the other
//! questions of its batch; a saved model answers as the one in memory.
//!
//! The model is `tf_bert_tiny` with the SQuAD fixture's initial span head: its answers are
//! meaningless, but every invariant holds whatever the weights.

mod common;

use std::path::PathBuf;

use bert::squad::{self, FeatureOptions, SquadModel};
use bert::tokenizer::Tokenizer;
use bert::weights::{Tensor, Weights};
use bert::{Answer, BertConfig, Context, QuestionAnswerer};

fn tiny() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

fn npy_f32(rel: &str) -> Vec<f32> {
    let (_, raw, _) = common::npy(&tiny().join("squad_finetune_reference").join(rel));
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn parts() -> (BertConfig, Weights, Tokenizer) {
    let config = BertConfig::from_file(tiny().join("bert_config.json")).unwrap();
    let mut w = bert::weights::tf_checkpoint::load(tiny().join("bert_model.ckpt")).unwrap();
    let head = |f: &str, shape: Vec<usize>| Tensor::new(shape, npy_f32(f)).unwrap();
    w.insert(
        "cls/squad/output_weights",
        head("initial/cls/squad/output_weights.npy", vec![2, 128]),
    );
    w.insert(
        "cls/squad/output_bias",
        head("initial/cls/squad/output_bias.npy", vec![2]),
    );
    let tokenizer = Tokenizer::from_vocab_file(tiny().join("vocab.txt"), true).unwrap();
    (config, w, tokenizer)
}

fn answerer(windows: FeatureOptions) -> QuestionAnswerer {
    let (config, w, tokenizer) = parts();
    let model = SquadModel::from_weights(config, &w, tokenizer).unwrap();
    QuestionAnswerer::with_options(model, windows, 30, 4).unwrap()
}

const CONTEXT: &str = "Super Bowl 50 was an American football game to determine the champion of \
the National Football League (NFL) for the 2015 season. The American Football Conference  \
(AFC) champion Denver Broncos defeated the National Football Conference (NFC) champion \
Carolina Panthers 24–10 to earn their third Super Bowl title.\nThe game was played on \
February 7, 2016, at Levi's Stadium in the San Francisco Bay Area at Santa Clara, California.";

fn check(context: &str, answers: &[Answer], top_k: usize) {
    assert!(!answers.is_empty() && answers.len() <= top_k, "{answers:?}");
    for a in answers {
        assert_eq!(&context[a.start_byte..a.end_byte], a.text, "{a:?}");
        assert!(!a.text.is_empty() && a.text.trim() == a.text, "{a:?}");
        assert!(a.score > 0.0 && a.score <= 1.0, "{a:?}");
    }
    for w in answers.windows(2) {
        assert!(w[0].score >= w[1].score, "not ranked: {answers:?}");
    }
    let mut texts: Vec<&str> = answers.iter().map(|a| a.text.as_str()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), answers.len(), "duplicate answers: {answers:?}");
}

#[test]
fn answers_are_ranked_byte_spans_of_the_context() {
    let qa = answerer(FeatureOptions::default());
    let mut ctx = Context::new(1);
    for top_k in [1, 5, 25] {
        let answers = qa
            .answer(
                &mut ctx,
                "Which NFL team won Super Bowl 50?",
                CONTEXT,
                top_k,
            )
            .unwrap();
        check(CONTEXT, &answers, top_k);
        if top_k == 5 {
            assert_eq!(answers.len(), 5);
        }
    }
    // A context without words has no answer; nothing panics.
    for empty in ["", "  \n\t ", "\u{7}\u{fffd}"] {
        assert!(qa.answer(&mut ctx, "Who?", empty, 3).unwrap().is_empty());
    }
    let mixed = qa
        .answer_batch(&mut ctx, &[("Who?", ""), ("Who won?", CONTEXT)], 3)
        .unwrap();
    assert!(mixed[0].is_empty());
    check(CONTEXT, &mixed[1], 3);
    assert!(qa.answer(&mut ctx, "", CONTEXT, 3).is_ok());
}

#[test]
fn long_contexts_are_read_through_windows() {
    // 64 positions, 16 query tokens: 45 document tokens per window, a stride of 16.
    let windows = FeatureOptions {
        max_seq_length: 64,
        doc_stride: 16,
        max_query_length: 16,
    };
    let qa = answerer(windows);
    let long = [CONTEXT; 4].join(" ");
    let tokenizer = qa.model().tokenizer();
    let ex = squad::examples::SquadExample {
        qas_id: "q".into(),
        question_text: "Where was the game played?".into(),
        doc: std::sync::Arc::new(squad::examples::split_context(&long)),
        orig_answer_text: None,
        start_position: None,
        end_position: None,
        is_impossible: false,
    };
    let features = squad::convert_examples_to_features(&[ex], tokenizer, &windows, false).unwrap();
    assert!(features.len() > 10, "{} windows", features.len());
    let mut ctx = Context::new(1);
    let answers = qa
        .answer(&mut ctx, "Where was the game played?", &long, 20)
        .unwrap();
    check(&long, &answers, 20);
    // Candidates come from every part of the context, not only the first window.
    assert!(
        answers.iter().any(|a| a.start_byte > long.len() / 2),
        "{answers:?}"
    );
}

#[test]
fn batching_changes_no_answer_and_a_saved_model_answers_alike() {
    let windows = FeatureOptions {
        max_seq_length: 96,
        doc_stride: 24,
        max_query_length: 24,
    };
    let qa = answerer(windows);
    let long = [CONTEXT; 3].join("\n\n");
    let pairs = [
        ("Which NFL team won Super Bowl 50?", CONTEXT),
        ("Where was the game played?", long.as_str()),
        ("Who lost?", "The Panthers lost to the Broncos."),
    ];
    let mut ctx = Context::new(2);
    let batched = qa.answer_batch(&mut ctx, &pairs, 5).unwrap();
    assert_eq!(batched.len(), 3);
    for ((q, c), b) in pairs.iter().zip(&batched) {
        let alone = qa.answer(&mut ctx, q, c, 5).unwrap();
        check(c, b, 5);
        assert_eq!(alone.len(), b.len());
        for (x, y) in alone.iter().zip(b) {
            assert_eq!(
                (&x.text, x.start_byte, x.end_byte),
                (&y.text, y.start_byte, y.end_byte)
            );
            assert!((x.score - y.score).abs() <= 1e-5, "{x:?} vs {y:?}");
        }
    }

    let dir = std::env::temp_dir().join(format!("libbert-squad-answerer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("squad.bert");
    let (config, w, tokenizer) = parts();
    squad::model::save(&path, &config, &w, &tokenizer).unwrap();
    let loaded =
        QuestionAnswerer::with_options(SquadModel::load(&path).unwrap(), windows, 30, 4).unwrap();
    let again = loaded.answer_batch(&mut ctx, &pairs, 5).unwrap();
    assert_eq!(again, batched);
    // The defaults of `load` (384 positions) answer too.
    let default = QuestionAnswerer::load(&path).unwrap();
    check(
        CONTEXT,
        &default.answer(&mut ctx, "Who won?", CONTEXT, 3).unwrap(),
        3,
    );
    // A model without the span head is refused with a hint, not a panic.
    let plain = dir.join("plain.bert");
    let (config, mut w, tokenizer) = parts();
    w.remove("cls/squad/output_weights");
    w.remove("cls/squad/output_bias");
    assert!(squad::model::save(&plain, &config, &w, &tokenizer).is_err());
    let vocab: Vec<String> = (0..tokenizer.vocab().len() as u32)
        .map(|i| tokenizer.vocab().token(i).unwrap().to_string())
        .collect();
    bert::weights::native::save(&plain, &config, &w, &vocab, true).unwrap();
    let e = QuestionAnswerer::load(&plain).unwrap_err().to_string();
    assert!(e.contains("cls/squad/output_weights"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The inference path (`SquadModel::logits`, what `bert squad --do_predict` and the answerer
/// run) gives TensorFlow's logits of the fixture batch (before any update).
#[test]
fn inference_logits_match_tf() {
    let dir = tiny().join("squad_finetune_reference");
    let ints = |f: &str| -> Vec<u32> {
        let (_, raw, _) = common::npy(&dir.join(f));
        raw.chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as u32)
            .collect()
    };
    let (ids, segments, mask) = (
        ints("input_ids.npy"),
        ints("segment_ids.npy"),
        ints("input_mask.npy"),
    );
    let inputs = bert::Inputs {
        input_ids: &ids,
        segment_ids: &segments,
        input_mask: &mask,
        batch: 8,
        seq: 128,
    };
    let (config, w, tokenizer) = parts();
    let model = SquadModel::from_weights(config, &w, tokenizer).unwrap();
    let got = model.logits(&mut Context::new(1), &inputs).unwrap();
    let want = npy_f32("logits_per_step.npy");
    let flat: Vec<f32> = got.start.iter().chain(&got.end).copied().collect();
    let d = common::max_abs_diff(&flat, &want[..flat.len()]);
    eprintln!("max |Δlogits| {d:.3e}");
    assert!(d <= 1e-5, "{d}");
}
