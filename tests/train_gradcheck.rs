//! Finite-difference checks of the backward pass on a tiny random BERT (vocab 11, hidden 8,
//! 2 heads, 2 layers, intermediate 12, batch 2 × seq 5 with padding), and the
//! gradient-accumulation invariant (STYLE §8).
//!
//! For every variable we compare the directional derivative along a random ±1 direction
//! restricted to that variable, `(L(θ+εr) − L(θ−εr)) / 2ε` with ε = 2e-3, against `⟨∇L, r⟩`
//! from the backward pass. The loss is f32 (≈1e-7 relative rounding, so ≈3e-5 noise after
//! dividing by 2ε) plus the O(ε²) truncation term (ε = 1e-2 gave 9e-4, so ≈4e-5 here);
//! measured worst `|fd − an| / (1 + |an|)` is 1.2e-4, we require 5e-4, while a missing or
//! wrong piece (a dropped factor, a transposed kernel, a skipped softmax term) is off by
//! O(|an|).
//! Dropout is on (0.1 everywhere plus the head's 0.1), with the same seed for every
//! evaluation, so the masks — and the function — are fixed.

use bert::backend::Pool;
use bert::train::{self, AdamWConfig, Batch, Params, Rng, Schedule, Trainer};
use bert::{Activation, BertConfig};

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

fn random_params(config: &BertConfig, seed: u64) -> Params {
    let mut p = Params::zeros(config, 3).unwrap();
    let mut rng = Rng::new(seed);
    let names: Vec<String> = p.names().map(str::to_owned).collect();
    for name in names {
        let vals = p.get_mut(&name).unwrap();
        for v in vals.iter_mut() {
            let n = rng.normal() as f32;
            *v = if name.ends_with("gamma") {
                1.0 + 0.2 * n
            } else {
                0.5 * n
            };
        }
    }
    p
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

fn batch(d: &Data, from: usize, to: usize) -> Batch<'_> {
    let seq = 5;
    Batch {
        input_ids: &d.ids[from * seq..to * seq],
        segment_ids: &d.segs[from * seq..to * seq],
        input_mask: &d.mask[from * seq..to * seq],
        labels: &d.labels[from..to],
        batch: to - from,
        seq,
    }
}

fn check_gradients(act: Activation) {
    let config = tiny_config(act, 0.1);
    let params = random_params(&config, 5);
    let d = data();
    let b = batch(&d, 0, 2);
    let pool = Pool::new(1);
    let seed = Rng::new(99);
    let mut grads = params.zeros_like();
    train::loss_and_grads(&params, &b, Some(&mut seed.clone()), &mut grads, 1.0, &pool).unwrap();
    let loss_at = |p: &Params| {
        let mut g = p.zeros_like();
        train::loss_and_grads(p, &b, Some(&mut seed.clone()), &mut g, 1.0, &pool)
            .unwrap()
            .loss as f64
    };
    let eps = 2e-3f32;
    let mut dir_rng = Rng::new(17);
    let mut worst = 0.0f64;
    let names: Vec<String> = params.names().map(str::to_owned).collect();
    for name in &names {
        let n = params.get(name).unwrap().len();
        let r: Vec<f32> = (0..n)
            .map(|_| {
                if dir_rng.next_u32() & 1 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let an: f64 = grads
            .get(name)
            .unwrap()
            .iter()
            .zip(&r)
            .map(|(&g, &x)| g as f64 * x as f64)
            .sum();
        let shifted = |sign: f32| {
            let mut p = params.clone();
            for (v, x) in p.get_mut(name).unwrap().iter_mut().zip(&r) {
                *v += sign * eps * x;
            }
            loss_at(&p)
        };
        let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps as f64);
        let err = (fd - an).abs() / (1.0 + an.abs());
        worst = worst.max(err);
        eprintln!("{act:?} {name}: analytic {an:.6e}, finite difference {fd:.6e}");
        assert!(
            err <= 5e-4,
            "{name}: analytic {an} vs finite difference {fd}"
        );
    }
    eprintln!("{act:?}: worst scaled error {worst:.2e}");
    // Key biases get no gradient (softmax is shift-invariant per query row).
    for l in 0..2 {
        let kb = grads
            .get(&format!("bert/encoder/layer_{l}/attention/self/key/bias"))
            .unwrap();
        assert!(kb.iter().all(|v| v.abs() < 1e-5), "{kb:?}");
    }
}

#[test]
fn backward_matches_finite_differences_gelu_tanh_with_dropout() {
    check_gradients(Activation::GeluTanh);
}

#[test]
fn backward_matches_finite_differences_gelu_erf_with_dropout() {
    check_gradients(Activation::GeluErf);
}

#[test]
fn dropout_is_off_without_rng_and_changes_outputs_with_it() {
    let config = tiny_config(Activation::GeluTanh, 0.1);
    let params = random_params(&config, 5);
    let d = data();
    let b = batch(&d, 0, 4);
    let pool = Pool::new(1);
    let e1 = train::evaluate(&params, &b, &pool).unwrap();
    let e2 = train::evaluate(&params, &b, &pool).unwrap();
    assert_eq!(e1.logits, e2.logits);
    let mut g = params.zeros_like();
    let t = train::loss_and_grads(&params, &b, Some(&mut Rng::new(1)), &mut g, 1.0, &pool).unwrap();
    assert_ne!(t.logits, e1.logits);
}

fn trainer(params: &Params) -> Trainer {
    let mut t = Trainer::new(
        params.clone(),
        Schedule {
            init_lr: 1e-2,
            num_train_steps: 10,
            num_warmup_steps: 1,
        },
        AdamWConfig::default(),
        0,
        Pool::new(1),
    );
    t.set_dropout(false);
    t
}

/// k accumulated micro-batches (sizes 1 and 3) give the update of one batch k times larger
/// (dropout off). Only the f32 summation order over examples differs: the first update's
/// pending gradients agree to 1e-6 of each tensor's largest entry (measured ≤ 3e-7; plus 1e-8 absolute for the
/// attention key biases, whose gradient is analytically zero and numerically ~1e-8 noise).
/// After three updates the parameters agree to 3e-4 of the largest parameter change
/// (measured 1.0e-4: 8.1e-6 vs a change of 7.8e-2): Adam divides each gradient entry by its
/// own RMS, which turns last-bit differences of near-zero entries into visible ones.
#[test]
fn accumulated_micro_batches_equal_one_large_batch() {
    let config = tiny_config(Activation::GeluTanh, 0.1);
    let params = random_params(&config, 8);
    let d = data();
    let mut big = trainer(&params);
    let mut acc = trainer(&params);
    let mut worst_grad = 0.0f32;
    for step in 0..3 {
        big.accumulate(&batch(&d, 0, 4)).unwrap();
        acc.accumulate(&batch(&d, 0, 1)).unwrap();
        acc.accumulate(&batch(&d, 1, 4)).unwrap();
        // Later steps start from parameters that already differ by rounding.
        let pending = if step == 0 {
            0..acc.params().len()
        } else {
            0..0
        };
        for ((name, _, a), (_, _, b)) in acc
            .pending_grads()
            .iter()
            .zip(big.pending_grads().iter())
            .take(pending.len())
        {
            let largest = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (x, y) in a.iter().zip(b) {
                let diff = (x - y).abs();
                if largest > 1e-6 {
                    worst_grad = worst_grad.max(diff / largest);
                }
                assert!(diff <= 1e-6 * largest + 1e-8, "{name}: {x} vs {y}");
            }
        }
        let rb = big.apply().unwrap();
        let ra = acc.apply().unwrap();
        assert!((ra.loss - rb.loss).abs() < 1e-6, "{ra:?} {rb:?}");
        assert!((ra.grad_norm - rb.grad_norm).abs() < 1e-5 * rb.grad_norm);
        assert_eq!(ra.learning_rate, rb.learning_rate);
    }
    let mut worst = 0.0f32;
    let mut moved = 0.0f32;
    for ((name, _, a), (_, _, b)) in acc.params().iter().zip(big.params().iter()) {
        let p0 = params.get(name).unwrap();
        for ((x, y), z) in a.iter().zip(b).zip(p0) {
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
    let config = tiny_config(Activation::GeluTanh, 0.0);
    let params = random_params(&config, 1);
    let d = data();
    let pool = Pool::new(1);
    let mut b = batch(&d, 0, 2);
    let labels = [2, 3];
    b.labels = &labels;
    assert!(train::evaluate(&params, &b, &pool).is_err());
    let ids = [11u32; 10];
    let mut b = batch(&d, 0, 2);
    b.input_ids = &ids;
    assert!(train::evaluate(&params, &b, &pool).is_err());
}

/// `(loss, logits, gradients)` of one forward + backward pass of `t` on `b`.
fn pass(t: &mut Trainer, b: &Batch) -> (f32, Vec<f32>, Params) {
    let out = t.accumulate(b).unwrap();
    (out.loss, out.logits, t.pending_grads().clone())
}

/// Largest `|a − b|` over every variable, relative to each tensor's largest entry (1e-8
/// absolute floor for the analytically-zero key-bias gradients).
fn worst_grad_diff(a: &Params, b: &Params) -> f32 {
    let mut worst = 0.0f32;
    for ((_, _, x), (_, _, y)) in a.iter().zip(b.iter()) {
        let largest = y.iter().fold(1e-8f32, |m, v| m.max(v.abs()));
        for (u, v) in x.iter().zip(y) {
            worst = worst.max((u - v).abs() / largest);
        }
    }
    worst
}

/// Gradient checkpointing recomputes each layer from its saved input with the same dropout
/// masks, i.e. the same operations on the same values: the gradients must agree to 1e-6 of
/// each tensor's largest entry (they are in fact identical), with dropout on and padding.
#[test]
fn checkpointing_gives_the_same_gradients() {
    let config = tiny_config(Activation::GeluErf, 0.1);
    let params = random_params(&config, 11);
    let d = data();
    let b = batch(&d, 0, 4);
    let mut plain = trainer(&params);
    let mut ckpt = trainer(&params);
    plain.set_dropout(true);
    ckpt.set_dropout(true);
    ckpt.set_checkpointing(true);
    assert!(ckpt.checkpointing() && !plain.checkpointing());
    for _ in 0..2 {
        let (la, ga, pa) = pass(&mut plain, &b);
        let (lb, gb, pb) = pass(&mut ckpt, &b);
        assert_eq!((la, ga), (lb, gb));
        let worst = worst_grad_diff(&pb, &pa);
        eprintln!("checkpointing: worst relative gradient difference {worst:.2e}");
        assert!(worst <= 1e-6, "{worst}");
        plain.apply().unwrap();
        ckpt.apply().unwrap();
    }
}

/// Work is split into fixed chunks whatever the thread count, so a seeded run gives the
/// same bits with 1 and 3 threads (dropout on, two updates).
#[test]
fn training_does_not_depend_on_the_thread_count() {
    let config = tiny_config(Activation::GeluTanh, 0.1);
    let params = random_params(&config, 12);
    let d = data();
    let run = |threads: usize| {
        let mut t = Trainer::new(
            params.clone(),
            Schedule {
                init_lr: 1e-2,
                num_train_steps: 10,
                num_warmup_steps: 1,
            },
            AdamWConfig::default(),
            7,
            Pool::new(threads),
        );
        let reports: Vec<_> = (0..2).map(|_| t.step(&batch(&d, 0, 4)).unwrap()).collect();
        (reports, t.params().clone())
    };
    let ((ra, pa), (rb, pb)) = (run(1), run(3));
    assert_eq!(ra, rb);
    for ((name, _, x), (_, _, y)) in pa.iter().zip(pb.iter()) {
        assert_eq!(x, y, "{name}");
    }
}

/// Trailing padding is dropped before the encoder (nothing the loss depends on reads it):
/// the same examples padded to 5 or to 7 positions give the same loss, logits and
/// gradients (to f32 rounding of sums that see extra zeros: 1e-6 relative).
#[test]
fn trailing_padding_does_not_change_the_result() {
    let config = tiny_config(Activation::GeluTanh, 0.1);
    let params = random_params(&config, 13);
    let d = data();
    let widen = |v: &[u32]| -> Vec<u32> {
        v.chunks(5)
            .flat_map(|r| r.iter().copied().chain([0, 0]))
            .collect()
    };
    let (ids, segs, mask) = (widen(&d.ids), widen(&d.segs), widen(&d.mask));
    let wide = Batch {
        input_ids: &ids,
        segment_ids: &segs,
        input_mask: &mask,
        labels: &d.labels,
        batch: 4,
        seq: 7,
    };
    let mut a = trainer(&params);
    let mut b = trainer(&params);
    a.set_dropout(false);
    b.set_dropout(false);
    let (la, ga, pa) = pass(&mut a, &batch(&d, 0, 4));
    let (lb, gb, pb) = pass(&mut b, &wide);
    assert!((la - lb).abs() <= 1e-6, "{la} vs {lb}");
    for (x, y) in ga.iter().zip(&gb) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
    }
    let worst = worst_grad_diff(&pb, &pa);
    assert!(worst <= 1e-6, "{worst}");
    // Positions 5 and 6 are padding everywhere: their embeddings get no gradient.
    let pos = pb.get("bert/embeddings/position_embeddings").unwrap();
    assert!(pos[5 * 8..].iter().all(|&v| v == 0.0));
}
