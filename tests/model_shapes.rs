//! Every BERT size works (L 2–24, H 128–1024), with seeded random weights: a sequence's result
//! does not depend on the rest of its batch, nor on the context's thread count.

mod common;

use bert::weights::{Tensor, Weights};
use bert::{Activation, BertConfig, BertModel, Context, Inputs};
use common::max_abs_diff;

struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn random_weights(c: &BertConfig, seed: u64) -> Weights {
    let mut rng = Rng(seed);
    let mut w = Weights::new();
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut put = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        let data = (0..n).map(|_| offset + scale * rng.uniform()).collect();
        w.insert(name, Tensor::new(shape, data).unwrap());
    };
    put(
        "bert/embeddings/word_embeddings".into(),
        vec![c.vocab_size, h],
        0.05,
        0.0,
    );
    put(
        "bert/embeddings/token_type_embeddings".into(),
        vec![c.type_vocab_size, h],
        0.05,
        0.0,
    );
    put(
        "bert/embeddings/position_embeddings".into(),
        vec![c.max_position_embeddings, h],
        0.05,
        0.0,
    );
    let ln = |put: &mut dyn FnMut(String, Vec<usize>, f32, f32), scope: &str| {
        put(format!("{scope}/LayerNorm/gamma"), vec![h], 0.1, 1.0);
        put(format!("{scope}/LayerNorm/beta"), vec![h], 0.1, 0.0);
    };
    ln(&mut put, "bert/embeddings");
    let std = |fan_in: usize| 1.7 / (fan_in as f32).sqrt();
    for l in 0..c.num_hidden_layers {
        let s = format!("bert/encoder/layer_{l}");
        for m in ["query", "key", "value"] {
            put(
                format!("{s}/attention/self/{m}/kernel"),
                vec![h, h],
                std(h),
                0.0,
            );
            put(format!("{s}/attention/self/{m}/bias"), vec![h], 0.1, 0.0);
        }
        put(
            format!("{s}/attention/output/dense/kernel"),
            vec![h, h],
            std(h),
            0.0,
        );
        put(
            format!("{s}/attention/output/dense/bias"),
            vec![h],
            0.1,
            0.0,
        );
        ln(&mut put, &format!("{s}/attention/output"));
        put(
            format!("{s}/intermediate/dense/kernel"),
            vec![h, i],
            std(h),
            0.0,
        );
        put(format!("{s}/intermediate/dense/bias"), vec![i], 0.1, 0.0);
        put(format!("{s}/output/dense/kernel"), vec![i, h], std(i), 0.0);
        put(format!("{s}/output/dense/bias"), vec![h], 0.1, 0.0);
        ln(&mut put, &format!("{s}/output"));
    }
    put("bert/pooler/dense/kernel".into(), vec![h, h], std(h), 0.0);
    put("bert/pooler/dense/bias".into(), vec![h], 0.1, 0.0);
    w
}

fn check(layers: usize, hidden: usize, heads: usize, act: Activation) {
    let c = BertConfig {
        vocab_size: 97,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: 4 * hidden,
        hidden_act: act,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        ..BertConfig::default()
    };
    let model = BertModel::from_weights(c.clone(), &random_weights(&c, hidden as u64)).unwrap();
    let lens = [13usize, 5, 1];
    let seq = 13;
    let batch = lens.len();
    let mut ids = vec![0u32; batch * seq];
    let mut segs = vec![0u32; batch * seq];
    let mut mask = vec![0u32; batch * seq];
    for (b, &n) in lens.iter().enumerate() {
        for t in 0..n {
            ids[b * seq + t] = ((b * 31 + t * 7) % 97) as u32;
            segs[b * seq + t] = (t >= n / 2) as u32;
            mask[b * seq + t] = 1;
        }
        // Padding holds junk ids: they must not matter.
        for t in n..seq {
            ids[b * seq + t] = (t % 97) as u32;
        }
    }
    let inputs = Inputs {
        input_ids: &ids,
        segment_ids: &segs,
        input_mask: &mask,
        batch,
        seq,
    };
    let mut one = Context::new(1);
    let mut two = Context::new(2);
    let batched = model
        .forward(&mut one, &inputs, false)
        .unwrap()
        .sequence_output()
        .to_vec();
    let batched2 = model
        .forward(&mut two, &inputs, false)
        .unwrap()
        .sequence_output()
        .to_vec();
    assert!(
        max_abs_diff(&batched, &batched2) <= 1e-5,
        "threads changed the result"
    );
    let h = hidden;
    for (b, &n) in lens.iter().enumerate() {
        let alone = model
            .forward(
                &mut one,
                &Inputs {
                    input_ids: &ids[b * seq..][..n],
                    segment_ids: &segs[b * seq..][..n],
                    input_mask: &[],
                    batch: 1,
                    seq: n,
                },
                false,
            )
            .unwrap();
        let out = alone.sequence_output();
        assert!(out.iter().all(|v| v.is_finite()));
        let d = max_abs_diff(out, &batched[b * seq * h..][..n * h]);
        // f32 noise only: the masked keys contribute exact zeros, summation order may differ.
        assert!(
            d <= 1e-4,
            "L={layers} H={hidden}: sequence {b} alone vs batched: {d:e}"
        );
    }
}

#[test]
fn tiny_deep_and_wide_shapes() {
    check(2, 128, 2, Activation::GeluTanh);
    check(24, 128, 2, Activation::GeluErf);
    check(3, 384, 12, Activation::Relu);
    check(2, 1024, 16, Activation::GeluTanh);
}
