//! `modeling.py`'s initialisation of the variables a run does not load: kernels, embedding
//! tables and `output_weights` from `tf.truncated_normal_initializer(initializer_range)`,
//! biases (`output_bias` included) zeros, LayerNorm gamma ones and beta zeros.
//!
//! A run from scratch fills every variable; a run from an encoder without pre-training heads
//! (a sentence-transformers export, say) fills only `cls/*` (and a missing pooler), as
//! `init_from_checkpoint` leaves the variables absent from the checkpoint at their
//! initialisers.

use crate::config::BertConfig;
use crate::train::Rng;
use crate::weights::{Tensor, Weights};
use crate::Result;

/// How a variable starts.
#[derive(Clone, Copy)]
enum Init {
    Normal,
    Zeros,
    Ones,
}

/// Every variable of `BertModel` + the pre-training heads, in `tf.trainable_variables()`
/// order, with its shape and initialiser.
fn variables(c: &BertConfig) -> Vec<(String, Vec<usize>, Init)> {
    let (h, i, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
    let mut out = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, init| out.push((name, shape, init));
    let dense = |add: &mut dyn FnMut(String, Vec<usize>, Init), scope: &str, n_in, n_out| {
        add(format!("{scope}/kernel"), vec![n_in, n_out], Init::Normal);
        add(format!("{scope}/bias"), vec![n_out], Init::Zeros);
    };
    let norm = |add: &mut dyn FnMut(String, Vec<usize>, Init), scope: &str| {
        add(format!("{scope}/LayerNorm/beta"), vec![h], Init::Zeros);
        add(format!("{scope}/LayerNorm/gamma"), vec![h], Init::Ones);
    };
    let e = "bert/embeddings";
    add(format!("{e}/word_embeddings"), vec![v, h], Init::Normal);
    add(
        format!("{e}/token_type_embeddings"),
        vec![c.type_vocab_size, h],
        Init::Normal,
    );
    add(
        format!("{e}/position_embeddings"),
        vec![c.max_position_embeddings, h],
        Init::Normal,
    );
    norm(&mut add, e);
    for l in 0..c.num_hidden_layers {
        let s = format!("bert/encoder/layer_{l}");
        for q in ["query", "key", "value"] {
            dense(&mut add, &format!("{s}/attention/self/{q}"), h, h);
        }
        dense(&mut add, &format!("{s}/attention/output/dense"), h, h);
        norm(&mut add, &format!("{s}/attention/output"));
        dense(&mut add, &format!("{s}/intermediate/dense"), h, i);
        dense(&mut add, &format!("{s}/output/dense"), i, h);
        norm(&mut add, &format!("{s}/output"));
    }
    dense(&mut add, "bert/pooler/dense", h, h);
    dense(&mut add, "cls/predictions/transform/dense", h, h);
    norm(&mut add, "cls/predictions/transform");
    add("cls/predictions/output_bias".into(), vec![v], Init::Zeros);
    add(
        "cls/seq_relationship/output_weights".into(),
        vec![2, h],
        Init::Normal,
    );
    add(
        "cls/seq_relationship/output_bias".into(),
        vec![2],
        Init::Zeros,
    );
    out
}

/// Adds to `w` every variable of the model and the pre-training heads it lacks, initialised
/// as `modeling.py` does, the normal draws from `Rng::new(seed)` in variable order (the same
/// seed gives the same model). Returns the names added.
pub fn init_missing(w: &mut Weights, config: &BertConfig, seed: u64) -> Result<Vec<String>> {
    let mut rng = Rng::new(seed);
    let stddev = config.initializer_range;
    let mut added = Vec::new();
    for (name, shape, init) in variables(config) {
        if w.contains(&name) {
            continue;
        }
        let n = shape.iter().product();
        let values = match init {
            Init::Normal => (0..n).map(|_| rng.truncated_normal(stddev)).collect(),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
        };
        w.insert(name.clone(), Tensor::new(shape, values)?);
        added.push(name);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_scratch_has_googles_variables_and_initialisers() {
        let c = BertConfig {
            vocab_size: 50,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 20,
            type_vocab_size: 2,
            ..BertConfig::default()
        };
        let mut w = Weights::new();
        let added = init_missing(&mut w, &c, 1).unwrap();
        // 5 embedding + 16 per layer + 2 pooler + 7 heads.
        assert_eq!(added.len(), 5 + 2 * 16 + 2 + 7);
        let we = w.get("bert/embeddings/word_embeddings", &[50, 8]).unwrap();
        assert!(we.iter().all(|x| x.abs() <= 0.04) && we.iter().any(|&x| x != 0.0));
        let sd = (we.iter().map(|x| x * x).sum::<f32>() / we.len() as f32).sqrt();
        assert!((0.012..0.024).contains(&sd), "{sd}");
        let g = "bert/encoder/layer_1/output/LayerNorm/gamma";
        assert!(w.get(g, &[8]).unwrap().iter().all(|&x| x == 1.0));
        let b = "cls/predictions/output_bias";
        assert!(w.get(b, &[50]).unwrap().iter().all(|&x| x == 0.0));
        // Nothing more to add; existing tensors are kept.
        assert!(init_missing(&mut w, &c, 2).unwrap().is_empty());
    }
}
