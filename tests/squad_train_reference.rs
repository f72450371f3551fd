//! Fine-tuning conformance with Google's `run_squad.py` (`create_model` + `compute_loss`) and
//! `optimization.py`: three steps of the span head on `tf_bert_tiny`
//! (`fixtures/tf_bert_tiny/squad_finetune_reference`, dropout off, lr 5e-5, 2 warm-up steps
//! of 10), on the first 8 training features of the shared SQuAD v1.1 reference.
//!
//! Tolerances as `train_reference.rs` (fixtures README §5): loss and logits 1e-5 absolute;
//! raw step-1 gradients 1e-4 × max|ref| per tensor, except those that are analytically zero
//! (see `analytically_zero`; TF stores ~1e-8 of rounding) which get 1e-8 absolute (1e-7
//! for the head's bias); every
//! variable after step 3 1e-6 absolute, the pooler (no gradient, never updated) included.

mod common;

use common::fixture::{self, FixtureBatch, StepReference};
use common::{max_abs_diff, npy_f32, npy_u32};

use std::path::PathBuf;

use bert::heads::SquadHead;
use bert::train::{AdamWConfig, Trainer};
use bert::weights::Weights;
use bert::{BertConfig, BertModel, Cpu};

const BATCH: usize = 8;
const SEQ: usize = 128;

fn dir() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny/squad_finetune_reference")
}

struct Fixture {
    json: serde_json::Value,
    config: BertConfig,
    weights: Weights,
    batch: FixtureBatch,
    spans: Vec<[u32; 2]>,
}

impl Fixture {
    fn load() -> Fixture {
        let json = fixture::index(&dir(), "index.json");
        let config = BertConfig::from_file(dir().join("bert_config.json")).unwrap();
        assert_eq!(config.hidden_dropout_prob, 0.0);
        assert_eq!(config.attention_probs_dropout_prob, 0.0);
        let mut weights = fixture::checkpoint(&dir());
        // The head is not in the checkpoint: its initial values (drawn by TF) are stored.
        weights.insert(
            "cls/squad/output_weights",
            fixture::tensor(&dir(), "initial/cls/squad/output_weights.npy", vec![2, 128]),
        );
        weights.insert(
            "cls/squad/output_bias",
            fixture::tensor(&dir(), "initial/cls/squad/output_bias.npy", vec![2]),
        );
        let starts = npy_u32(&dir(), "start_positions.npy");
        let ends = npy_u32(&dir(), "end_positions.npy");
        Fixture {
            json,
            config,
            weights,
            batch: FixtureBatch::load(&dir(), BATCH, SEQ),
            spans: starts.iter().zip(&ends).map(|(&s, &e)| [s, e]).collect(),
        }
    }

    /// `tf.trainable_variables()`, the pooler included.
    fn variables(&self) -> Vec<serde_json::Value> {
        self.json["trainable_variables"].as_array().unwrap().clone()
    }

    /// The variables the optimizer updates: those with a gradient (all but the pooler).
    fn trained(&self) -> Vec<serde_json::Value> {
        let mut v = self.variables();
        v.retain(|v| !v["grads_step1"].is_null());
        v
    }

    fn trainer(&self) -> Trainer<SquadHead> {
        let schedule = fixture::schedule(&self.json["optimizer"]);
        let model = BertModel::build(Cpu, self.config.clone(), &self.weights, true).unwrap();
        let head = SquadHead::load(&Cpu, &self.weights, 128, true).unwrap();
        let mut t = Trainer::new(model, head, schedule, AdamWConfig::default(), 0, 1).unwrap();
        t.set_dropout(false);
        t
    }
}

/// `[start logits of every example, end logits of every example]` as TF's `[2, B, S]`.
fn flat(l: &bert::heads::squad::SpanLogits) -> Vec<f32> {
    l.start.iter().chain(&l.end).copied().collect()
}

/// Gradients TF computes as rounding noise around an exact zero: the attention key biases,
/// and the biases after which only the linear span head follows (the last LayerNorm's beta
/// and the head's bias), since each sequence's soft-max gradient sums to zero over its
/// positions.
fn analytically_zero(name: &str) -> bool {
    name.contains("/key/bias")
        || name == "bert/encoder/layer_1/output/LayerNorm/beta"
        || name == "cls/squad/output_bias"
}

#[test]
fn variable_set_matches_create_model() {
    let f = Fixture::load();
    assert_eq!(f.variables().len(), 41);
    let vars = f.trained();
    assert_eq!(vars.len(), 39, "the pooler gets no gradient");
    fixture::check_variable_set(&vars, &f.trainer());
}

#[test]
fn step1_loss_logits_and_gradients_match_tf() {
    let f = Fixture::load();
    let mut t = f.trainer();
    let (loss, out) = t.accumulate(&f.batch.inputs(), &f.spans).unwrap();
    // The trainer sums gradients over the batch's examples: the mean loss's gradient is
    // the sum / B.
    let grads = fixture::mean_grads(t.pending_grads(), BATCH);
    let logits = npy_f32(&dir(), "logits_per_step.npy");
    let per_step = 2 * BATCH * SEQ;
    let want_loss = f.json["steps"][0]["loss"].as_f64().unwrap() as f32;
    let dl = (loss as f32 - want_loss).abs();
    let dlog = max_abs_diff(&flat(&out), &logits[..per_step]);
    eprintln!("step 1: |Δloss| {dl:.3e}, max |Δlogits| {dlog:.3e}");
    assert!(dl <= 1e-5 && dlog <= 1e-5);

    let mut worst = 0.0f32;
    for v in f.trained() {
        let name = v["name"].as_str().unwrap();
        let want = fixture::values(&dir(), &v, "grads_step1");
        let got = f.batch.stored(name, &grads[name]);
        let diff = max_abs_diff(&got, &want);
        if analytically_zero(name) {
            eprintln!("{name}: max |Δ| {diff:.3e} (analytically zero)");
            // The head's bias gradient is directly a float32 sum of 128 soft-max terms per
            // row minus one (TF's own value is 2.4e-8): rounding of a few ε.
            let bound = if name == "cls/squad/output_bias" {
                1e-7
            } else {
                1e-8
            };
            assert!(diff <= bound, "{name}: {diff}");
            continue;
        }
        let scale = fixture::max_abs(&want);
        let rel = diff / scale;
        worst = worst.max(rel);
        eprintln!("{name}: max |Δ| {diff:.3e}, relative to max|ref| {rel:.3e}");
        assert!(rel <= 1e-4, "{name}: {diff} vs max|ref| {scale}");
    }
    eprintln!("worst relative gradient difference {worst:.3e}");
    let norm = t.apply().unwrap().grad_norm;
    let want_norm = f.json["steps"][0]["global_grad_norm_before_clipping"]
        .as_f64()
        .unwrap();
    eprintln!("global norm {norm} vs {want_norm}");
    assert!((norm - want_norm).abs() <= 1e-5 * want_norm);
}

#[test]
fn three_optimizer_steps_match_adam_weight_decay_optimizer() {
    let f = Fixture::load();
    let mut t = f.trainer();
    let logits = npy_f32(&dir(), "logits_per_step.npy");
    let per_step = 2 * BATCH * SEQ;
    for (s, step) in f.json["steps"].as_array().unwrap().iter().enumerate() {
        let (_, before) = t.evaluate(&f.batch.inputs(), &f.spans).unwrap();
        let dlog = max_abs_diff(&flat(&before), &logits[s * per_step..][..per_step]);
        let r = t.step(&f.batch.inputs(), &f.spans).unwrap();
        let want = StepReference::of(step);
        eprintln!(
            "step {}: |Δloss| {:.3e}, max |Δlogits| {dlog:.3e}, lr {} (ref {}), |Δnorm| {:.3e}",
            s + 1,
            (r.loss - want.loss).abs(),
            r.learning_rate,
            want.learning_rate,
            (r.grad_norm - want.grad_norm).abs()
        );
        assert!((r.loss - want.loss).abs() <= 1e-5 && dlog <= 1e-5);
        assert!((r.learning_rate - want.learning_rate).abs() <= 1e-6 * want.learning_rate); // f32 schedule
        assert!((r.grad_norm - want.grad_norm).abs() <= 1e-5 * want.grad_norm);
        assert_eq!(r.global_step, s as u64 + 1);
    }
    let (loss, out) = t.evaluate(&f.batch.inputs(), &f.spans).unwrap();
    let want_loss = f.json["after_step3"]["loss"].as_f64().unwrap() as f32;
    let dl = (loss as f32 - want_loss).abs();
    let dlog = max_abs_diff(&flat(&out), &npy_f32(&dir(), "after_step3/logits.npy"));
    eprintln!("after step 3: |Δloss| {dl:.3e}, max |Δlogits| {dlog:.3e}");
    assert!(dl <= 1e-5 && dlog <= 1e-5);

    // Every variable, the pooler included (TF's optimizer skips it: it must not move, not
    // even by weight decay).
    let after = t.weights().unwrap();
    let mut worst = 0.0f32;
    for v in f.variables() {
        let name = v["name"].as_str().unwrap();
        let want = fixture::values(&dir(), &v, "after_step3");
        let got = f
            .batch
            .stored(name, after.get(name, &fixture::shape(&v)).unwrap());
        let diff = max_abs_diff(&got, &want);
        worst = worst.max(diff);
        assert!(diff <= 1e-6, "{name}: max |Δ| {diff}");
    }
    eprintln!("after step 3: worst max |Δ| over all variables {worst:.3e}");
    let stats = &f.variables()[0]["after_step3_full_stats"];
    let we = t.param("bert/embeddings/word_embeddings").unwrap();
    let (sum, sq, _) = fixture::full_stats(&we);
    let (ws, wq) = (
        stats["sum"].as_f64().unwrap(),
        stats["sum_of_squares"].as_f64().unwrap(),
    );
    eprintln!(
        "word_embeddings sum Δ {:.3e}, sum of squares Δ {:.3e}",
        sum - ws,
        sq - wq
    );
    // Weight decay reaches the rows absent from the batch too (see train_reference.rs).
    assert!((sum - ws).abs() <= 1e-5 && (sq - wq).abs() <= 1e-5);
}
