//! Finite-difference checks of the backward pass through every head (classifier, SQuAD span,
//! masked LM + next sentence) on a tiny random BERT (vocab 11, hidden 8, 2 heads, 2 layers,
//! intermediate 12, sequences of 5 with padding), and the trainer's invariants: gradient
//! accumulation, checkpointing, thread count, trailing padding (STYLE §8).
//!
//! For every variable we compare the directional derivative along a random ±1 direction
//! restricted to that variable, `(L(θ+εr) − L(θ−εr)) / 2ε` with ε = 8e-3 and 4e-3, against `⟨∇L, r⟩`
//! from the backward pass, extrapolated from ε and ε/2 (Richardson: the O(ε²) truncation
//! term cancels, so ε can be large enough to keep the f32 rounding of the loss small after
//! dividing by 2ε). Measured worst `|fd − an| / (1 + |an|)`: 3e-5 (classifier, SQuAD) to
//! 1.2e-4 (pre-training); we require 5e-4, while a missing or wrong piece (a dropped factor,
//! a transposed kernel, a skipped softmax term) is off by O(|an|).
//! Dropout is on where the head has it (0.1 everywhere plus the classifier's 0.1), and every
//! evaluation starts from the same seed, so the masks — and the function — are fixed.

use bert::heads::pretraining::MaskedLmTargets;
use bert::heads::{ClassifierHead, Head, PreTrainingHeads, SquadHead};
use bert::train::{AdamWConfig, Rng, Schedule, Trainer};
use bert::weights::{Tensor, Weights};
use bert::{Activation, BertConfig, BertModel, Cpu, Inputs};

fn tiny_config(act: Activation, dropout: f32) -> BertConfig {
    BertConfig {
        vocab_size: 11,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 12,
        hidden_act: act,
        hidden_dropout_prob: dropout,
        attention_probs_dropout_prob: dropout,
        max_position_embeddings: 7,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
    }
}

/// Google's variables of a BERT of `c` and of every head, with random values (LayerNorm
/// gammas near 1).
fn random_weights(c: &BertConfig, seed: u64) -> Weights {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut vars: Vec<(String, Vec<usize>)> = vec![
        (
            "bert/embeddings/word_embeddings".into(),
            vec![c.vocab_size, h],
        ),
        (
            "bert/embeddings/token_type_embeddings".into(),
            vec![c.type_vocab_size, h],
        ),
        (
            "bert/embeddings/position_embeddings".into(),
            vec![c.max_position_embeddings, h],
        ),
    ];
    let norm = |s: &str| {
        [
            (format!("{s}/LayerNorm/beta"), vec![h]),
            (format!("{s}/LayerNorm/gamma"), vec![h]),
        ]
    };
    let dense = |s: &str, a: usize, b: usize| {
        [
            (format!("{s}/kernel"), vec![a, b]),
            (format!("{s}/bias"), vec![b]),
        ]
    };
    vars.extend(norm("bert/embeddings"));
    for l in 0..c.num_hidden_layers {
        let s = format!("bert/encoder/layer_{l}");
        for p in ["query", "key", "value"] {
            vars.extend(dense(&format!("{s}/attention/self/{p}"), h, h));
        }
        vars.extend(dense(&format!("{s}/attention/output/dense"), h, h));
        vars.extend(norm(&format!("{s}/attention/output")));
        vars.extend(dense(&format!("{s}/intermediate/dense"), h, i));
        vars.extend(dense(&format!("{s}/output/dense"), i, h));
        vars.extend(norm(&format!("{s}/output")));
    }
    vars.extend(dense("bert/pooler/dense", h, h));
    vars.extend([
        ("output_weights".into(), vec![3, h]),
        ("output_bias".into(), vec![3]),
        ("cls/squad/output_weights".into(), vec![2, h]),
        ("cls/squad/output_bias".into(), vec![2]),
        ("cls/predictions/output_bias".into(), vec![c.vocab_size]),
        ("cls/seq_relationship/output_weights".into(), vec![2, h]),
        ("cls/seq_relationship/output_bias".into(), vec![2]),
    ]);
    vars.extend(dense("cls/predictions/transform/dense", h, h));
    vars.extend(norm("cls/predictions/transform"));
    let mut rng = Rng::new(seed);
    let mut w = Weights::new();
    for (name, shape) in vars {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|_| {
                let x = rng.normal() as f32;
                if name.ends_with("gamma") {
                    1.0 + 0.2 * x
                } else {
                    0.5 * x
                }
            })
            .collect();
        w.insert(name, Tensor::new(shape, values).unwrap());
    }
    w
}

struct Data {
    ids: Vec<u32>,
    segs: Vec<u32>,
    mask: Vec<u32>,
    labels: Vec<u32>,
}

fn data() -> Data {
    Data {
        ids: vec![1, 4, 7, 4, 2, 1, 9, 3, 0, 0, 1, 5, 5, 2, 0, 1, 10, 6, 8, 2],
        segs: vec![0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1],
        mask: vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1],
        labels: vec![2, 0, 1, 1],
    }
}

fn inputs(d: &Data, from: usize, to: usize) -> Inputs<'_> {
    let seq = 5;
    Inputs {
        input_ids: &d.ids[from * seq..to * seq],
        segment_ids: &d.segs[from * seq..to * seq],
        input_mask: &d.mask[from * seq..to * seq],
        batch: to - from,
        seq,
    }
}

fn schedule() -> Schedule {
    Schedule {
        init_lr: 1e-2,
        num_train_steps: 10,
        num_warmup_steps: 1,
    }
}

fn classifier(c: &BertConfig, w: &Weights, seed: u64, threads: usize) -> Trainer<ClassifierHead> {
    let model = BertModel::build(Cpu, c.clone(), w, true).unwrap();
    let head = ClassifierHead::load(&Cpu, w, c.hidden_size, 3, true).unwrap();
    Trainer::new(
        model,
        head,
        schedule(),
        AdamWConfig::default(),
        seed,
        threads,
    )
    .unwrap()
}

fn squad(c: &BertConfig, w: &Weights, seed: u64) -> Trainer<SquadHead> {
    let model = BertModel::build(Cpu, c.clone(), w, true).unwrap();
    let head = SquadHead::load(&Cpu, w, c.hidden_size, true).unwrap();
    Trainer::new(model, head, schedule(), AdamWConfig::default(), seed, 1).unwrap()
}

fn pretraining(c: &BertConfig, w: &Weights, seed: u64) -> Trainer<PreTrainingHeads> {
    let model = BertModel::build(Cpu, c.clone(), w, true).unwrap();
    let head = PreTrainingHeads::load(&Cpu, w, c, true).unwrap();
    Trainer::new(model, head, schedule(), AdamWConfig::default(), seed, 1).unwrap()
}

/// Compares the backward pass of a fresh trainer (`make`) with finite differences of its
/// training loss, variable by variable; returns the gradients.
fn check_gradients<H: Head<Cpu>>(
    what: &str,
    make: &dyn Fn() -> Trainer<H>,
    x: &Inputs,
    targets: &H::Targets,
) -> Vec<(String, Vec<f32>)> {
    let mut t = make();
    t.accumulate(x, targets).unwrap();
    // The trainer sums over the batch's examples.
    let scale = 1.0 / x.batch as f64;
    let grads = t.pending_grads();
    let loss_at = |name: &str, values: &[f32]| {
        let mut t = make();
        t.set_param(name, values).unwrap();
        t.accumulate(x, targets).unwrap().0
    };
    let eps = 8e-3f32;
    let mut dir_rng = Rng::new(17);
    let mut worst = 0.0f64;
    for (name, g) in &grads {
        let p0 = t.param(name).unwrap();
        let r: Vec<f32> = (0..g.len())
            .map(|_| {
                if dir_rng.next_u32() & 1 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let an: f64 = g
            .iter()
            .zip(&r)
            .map(|(&g, &x)| g as f64 * x as f64)
            .sum::<f64>()
            * scale;
        let central = |e: f32| {
            let at = |s: f32| {
                let p: Vec<f32> = p0.iter().zip(&r).map(|(v, x)| v + s * e * x).collect();
                loss_at(name, &p)
            };
            (at(1.0) - at(-1.0)) / (2.0 * e as f64)
        };
        // Richardson extrapolation removes the O(ε²) term (at ε = 2e-3 without it, the word
        // embeddings of the pre-training heads, also their output layer, kept 1.5e-3 of it).
        let fd = (4.0 * central(eps / 2.0) - central(eps)) / 3.0;
        let err = (fd - an).abs() / (1.0 + an.abs());
        worst = worst.max(err);
        if std::env::var_os("FD_VERBOSE").is_some() {
            eprintln!("{what} {name}: analytic {an:.6e}, finite difference {fd:.6e}, {err:.1e}");
        }
        assert!(
            err <= 5e-4,
            "{what} {name}: analytic {an} vs finite difference {fd}"
        );
    }
    eprintln!(
        "{what}: {} variables, worst scaled error {worst:.2e}",
        grads.len()
    );
    grads
}

fn check_classifier(act: Activation) {
    let c = tiny_config(act, 0.1);
    let w = random_weights(&c, 5);
    let d = data();
    let grads = check_gradients(
        &format!("classifier {act:?}"),
        &|| classifier(&c, &w, 99, 1),
        &inputs(&d, 0, 2),
        &d.labels[..2],
    );
    // Key biases get no gradient (softmax is shift-invariant per query row).
    for (name, g) in &grads {
        if name.ends_with("key/bias") {
            assert!(g.iter().all(|v| v.abs() < 1e-5), "{name}: {g:?}");
        }
    }
    assert_eq!(grads.len(), 41, "the classifier trains the pooler");
}

#[test]
fn classifier_backward_matches_finite_differences_gelu_tanh_with_dropout() {
    check_classifier(Activation::GeluTanh);
}

#[test]
fn classifier_backward_matches_finite_differences_gelu_erf_with_dropout() {
    check_classifier(Activation::GeluErf);
}

/// The span head's loss covers every position of every sequence, padding included, so the
/// encoder keeps them all; the pooler is not trained (it gets no gradient).
#[test]
fn squad_backward_matches_finite_differences() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 6);
    let d = data();
    let spans = [[1, 3], [0, 0], [2, 2]];
    let grads = check_gradients("squad", &|| squad(&c, &w, 5), &inputs(&d, 0, 3), &spans);
    assert!(grads.iter().all(|(n, _)| !n.starts_with("bert/pooler")));
    assert!(grads.iter().any(|(n, _)| n == "cls/squad/output_weights"));
}

/// Masked LM (tied to the word embeddings) and next sentence, with padding slots of weight 0
/// and a position repeated in two slots.
#[test]
fn pretraining_backward_matches_finite_differences() {
    let c = tiny_config(Activation::GeluErf, 0.1);
    let w = random_weights(&c, 7);
    let d = data();
    let targets = MaskedLmTargets {
        positions: vec![1, 3, 0, 2, 2, 0],
        ids: vec![4, 9, 0, 3, 3, 0],
        weights: vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0],
        next_sentence: vec![0, 1],
        per_seq: 3,
    };
    let grads = check_gradients(
        "pretraining",
        &|| pretraining(&c, &w, 5),
        &inputs(&d, 0, 2),
        &targets,
    );
    let names: Vec<&str> = grads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 46, "{names:?}");
    assert_eq!(
        names[39..],
        [
            "cls/predictions/transform/dense/kernel",
            "cls/predictions/transform/dense/bias",
            "cls/predictions/transform/LayerNorm/beta",
            "cls/predictions/transform/LayerNorm/gamma",
            "cls/predictions/output_bias",
            "cls/seq_relationship/output_weights",
            "cls/seq_relationship/output_bias",
        ]
    );
}

#[test]
fn dropout_is_off_in_evaluation_and_changes_outputs_in_training() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 5);
    let d = data();
    let mut t = classifier(&c, &w, 1, 1);
    let x = inputs(&d, 0, 4);
    let (_, e1) = t.evaluate(&x, &d.labels).unwrap();
    let (_, e2) = t.evaluate(&x, &d.labels).unwrap();
    assert_eq!(e1, e2);
    let (_, train) = t.accumulate(&x, &d.labels).unwrap();
    assert_ne!(train, e1);
}

/// A classifier's inference (prepared kernels, fused projections, the inference context)
/// equals the trainer's forward pass in evaluation mode on the same parameters.
#[test]
fn inference_equals_the_training_forward_in_evaluation_mode() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 9);
    let d = data();
    let mut t = classifier(&c, &w, 1, 1);
    t.step(&inputs(&d, 0, 4), &d.labels).unwrap();
    let trained = t.weights().unwrap();
    let (_, train) = t.evaluate(&inputs(&d, 0, 4), &d.labels).unwrap();
    let model = BertModel::from_weights(c.clone(), &trained).unwrap();
    let head = ClassifierHead::load(&Cpu, &trained, 8, 3, false).unwrap();
    let mut ctx = bert::Context::new(1);
    let inference = bert::classifier::logits(&model, &head, &mut ctx, &inputs(&d, 0, 4)).unwrap();
    let worst = train
        .iter()
        .zip(&inference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("inference vs training forward: max |Δlogits| {worst:.2e}");
    assert!(worst <= 1e-6, "{worst}");
}

/// k accumulated micro-batches (sizes 1 and 3) give the update of one batch k times larger
/// (dropout off). Only the f32 summation order over examples differs: the first update's
/// pending gradients agree to 1e-6 of each tensor's largest entry (plus 1e-8 absolute for
/// the attention key biases, whose gradient is analytically zero and numerically ~1e-8
/// noise). After three updates the parameters agree to 3e-4 of the largest parameter change:
/// Adam divides each gradient entry by its own RMS, which turns last-bit differences of
/// near-zero entries into visible ones.
#[test]
fn accumulated_micro_batches_equal_one_large_batch() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 8);
    let d = data();
    let mut big = classifier(&c, &w, 0, 1);
    let mut acc = classifier(&c, &w, 0, 1);
    big.set_dropout(false);
    acc.set_dropout(false);
    let mut worst_grad = 0.0f32;
    for step in 0..3 {
        big.accumulate(&inputs(&d, 0, 4), &d.labels).unwrap();
        acc.accumulate(&inputs(&d, 0, 1), &d.labels[..1]).unwrap();
        acc.accumulate(&inputs(&d, 1, 4), &d.labels[1..]).unwrap();
        // Later steps start from parameters that already differ by rounding.
        if step == 0 {
            for ((name, a), (_, b)) in acc.pending_grads().iter().zip(&big.pending_grads()) {
                let largest = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (x, y) in a.iter().zip(b) {
                    let diff = (x - y).abs();
                    if largest > 1e-6 {
                        worst_grad = worst_grad.max(diff / largest);
                    }
                    assert!(diff <= 1e-6 * largest + 1e-8, "{name}: {x} vs {y}");
                }
            }
        }
        let rb = big.apply().unwrap();
        let ra = acc.apply().unwrap();
        assert!((ra.loss - rb.loss).abs() < 1e-6, "{ra:?} {rb:?}");
        assert!((ra.grad_norm - rb.grad_norm).abs() < 1e-5 * rb.grad_norm);
        assert_eq!(ra.learning_rate, rb.learning_rate);
    }
    let (wa, wb) = (acc.weights().unwrap(), big.weights().unwrap());
    let (mut worst, mut moved) = (0.0f32, 0.0f32);
    for (name, t) in wb.iter() {
        let a = &wa.tensor(name).unwrap().data;
        let p0 = &w.tensor(name).unwrap().data;
        for ((x, y), z) in a.iter().zip(&t.data).zip(p0) {
            worst = worst.max((x - y).abs());
            moved = moved.max((y - z).abs());
        }
    }
    eprintln!(
        "accumulation: gradients within {worst_grad:.2e} of each tensor's largest entry; \
         parameters max |Δ| {worst:.2e}, largest parameter change {moved:.2e}"
    );
    assert!(moved > 1e-3, "the updates must move the parameters");
    assert!(worst <= 3e-4 * moved, "{worst}");
    assert!(acc.apply().is_err(), "apply without accumulated gradients");
}

#[test]
fn invalid_batches_are_rejected() {
    let c = tiny_config(Activation::GeluTanh, 0.0);
    let w = random_weights(&c, 1);
    let d = data();
    let mut t = classifier(&c, &w, 0, 1);
    assert!(
        t.evaluate(&inputs(&d, 0, 2), &[2, 3]).is_err(),
        "label 3 of 3"
    );
    assert!(
        t.evaluate(&inputs(&d, 0, 2), &[2]).is_err(),
        "one label for two"
    );
    let ids = [11u32; 10];
    let mut x = inputs(&d, 0, 2);
    x.input_ids = &ids;
    assert!(t.evaluate(&x, &[0, 1]).is_err(), "id 11 of vocab 11");
    let mut s = squad(&c, &w, 0);
    assert!(
        s.evaluate(&inputs(&d, 0, 2), &[[0, 5], [0, 0]]).is_err(),
        "end 5 of 5"
    );
    let mut p = pretraining(&c, &w, 0);
    let bad = MaskedLmTargets {
        positions: vec![5, 0],
        ids: vec![1, 1],
        weights: vec![1.0, 1.0],
        next_sentence: vec![0, 1],
        per_seq: 1,
    };
    assert!(
        p.evaluate(&inputs(&d, 0, 2), &bad).is_err(),
        "position 5 of 5"
    );
}

/// Largest `|a − b|` over every variable, relative to each tensor's largest entry (1e-8
/// absolute floor for the analytically-zero key-bias gradients).
fn worst_grad_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    let mut worst = 0.0f32;
    for ((_, x), (_, y)) in a.iter().zip(b) {
        let largest = y.iter().fold(1e-8f32, |m, v| m.max(v.abs()));
        for (u, v) in x.iter().zip(y) {
            worst = worst.max((u - v).abs() / largest);
        }
    }
    worst
}

/// Gradient checkpointing recomputes each layer from its saved input with the same dropout
/// masks, i.e. the same operations on the same values: the gradients are identical, with
/// dropout on and padding.
#[test]
fn checkpointing_gives_the_same_gradients() {
    let c = tiny_config(Activation::GeluErf, 0.1);
    let w = random_weights(&c, 11);
    let d = data();
    let mut plain = classifier(&c, &w, 3, 1);
    let mut ckpt = classifier(&c, &w, 3, 1);
    ckpt.set_checkpointing(true);
    assert!(ckpt.checkpointing() && !plain.checkpointing());
    for _ in 0..2 {
        let a = plain.accumulate(&inputs(&d, 0, 4), &d.labels).unwrap();
        let b = ckpt.accumulate(&inputs(&d, 0, 4), &d.labels).unwrap();
        assert_eq!(a, b);
        let worst = worst_grad_diff(&ckpt.pending_grads(), &plain.pending_grads());
        assert!(
            worst == 0.0,
            "checkpointing changed a gradient by {worst:.2e}"
        );
        plain.apply().unwrap();
        ckpt.apply().unwrap();
    }
}

/// Work is split into fixed chunks whatever the thread count, so a seeded run gives the
/// same bits with 1 and 3 threads (dropout on, two updates).
#[test]
fn training_does_not_depend_on_the_thread_count() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 12);
    let d = data();
    let run = |threads: usize| {
        let mut t = classifier(&c, &w, 7, threads);
        let reports: Vec<_> = (0..2)
            .map(|_| t.step(&inputs(&d, 0, 4), &d.labels).unwrap())
            .collect();
        let mut params = Vec::new();
        t.visit_params(&mut |n, p| params.push((n.to_string(), p.value.clone())));
        (reports, params)
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(a, b);
}

/// Trailing padding is dropped before the encoder (nothing the loss depends on reads it):
/// the same examples padded to 5 or to 7 positions give the same loss, logits and
/// gradients, bit for bit.
#[test]
fn trailing_padding_does_not_change_the_result() {
    let c = tiny_config(Activation::GeluTanh, 0.1);
    let w = random_weights(&c, 13);
    let d = data();
    let widen = |v: &[u32]| -> Vec<u32> {
        v.chunks(5)
            .flat_map(|r| r.iter().copied().chain([0, 0]))
            .collect()
    };
    let (ids, segs, mask) = (widen(&d.ids), widen(&d.segs), widen(&d.mask));
    let wide = Inputs {
        input_ids: &ids,
        segment_ids: &segs,
        input_mask: &mask,
        batch: 4,
        seq: 7,
    };
    let mut a = classifier(&c, &w, 4, 1);
    let mut b = classifier(&c, &w, 4, 1);
    let ra = a.accumulate(&inputs(&d, 0, 4), &d.labels).unwrap();
    let rb = b.accumulate(&wide, &d.labels).unwrap();
    assert_eq!(ra, rb);
    let (ga, gb) = (a.pending_grads(), b.pending_grads());
    assert_eq!(worst_grad_diff(&gb, &ga), 0.0);
    // Positions 5 and 6 are padding everywhere: their embeddings get no gradient.
    let pos = &gb
        .iter()
        .find(|(n, _)| n.ends_with("position_embeddings"))
        .unwrap()
        .1;
    assert!(pos[5 * 8..].iter().all(|&v| v == 0.0));
}
