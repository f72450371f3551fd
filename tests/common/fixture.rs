//! What the training references of `fixtures/tf_bert_tiny` (`finetune_reference`,
//! `squad_finetune_reference`, `pretrain_reference`; fixtures README §5) store alike: the
//! batch (`input_ids.npy`, `segment_ids.npy`, `input_mask.npy`) and the word-embedding rows
//! it touches (`word_embeddings_row_ids.npy`), an index JSON with the optimizer's schedule,
//! the steps and one entry per trainable variable, and the checkpoint in the folder above.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bert::backend::Backend;
use bert::heads::Head;
use bert::train::{Schedule, Trainer};
use bert::weights::{Tensor, Weights};
use bert::{BertConfig, Inputs};
use serde_json::Value;

use super::{npy_f32, npy_u32, shared_dir, stored_rows, TinyBatch};

/// `tf_bert_tiny`'s hidden size: the width of the word-embedding rows a fixture stores.
pub const HIDDEN: usize = 128;

/// A fixture's batch and the word-embedding rows it touches.
pub struct FixtureBatch {
    pub tokens: TinyBatch,
    /// Of the word-embedding table the fixture stores only these rows.
    pub row_ids: Vec<u32>,
}

impl FixtureBatch {
    /// `dir`'s batch, which has `batch` examples of `seq` positions.
    pub fn load(dir: &Path, batch: usize, seq: usize) -> FixtureBatch {
        let tokens = TinyBatch::from_npy(dir, "");
        assert_eq!((tokens.batch, tokens.seq), (batch, seq));
        FixtureBatch {
            tokens,
            row_ids: npy_u32(dir, "word_embeddings_row_ids.npy"),
        }
    }

    pub fn inputs(&self) -> Inputs<'_> {
        self.tokens.inputs()
    }

    /// The examples `range` of the batch.
    pub fn examples(&self, range: Range<usize>) -> Inputs<'_> {
        self.tokens.examples(range)
    }

    /// What the fixture stores of the variable `name` whose values are `full` (see
    /// [`stored_rows`]).
    pub fn stored(&self, name: &str, full: &[f32]) -> Vec<f32> {
        stored_rows(name, full, &self.row_ids, HIDDEN)
    }
}

/// The index JSON `dir/name`.
pub fn index(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// `tf_bert_tiny`'s checkpoint, in the folder above a reference's.
pub fn checkpoint(dir: &Path) -> Weights {
    bert::weights::tf_checkpoint::load(dir.join("../bert_model.ckpt")).unwrap()
}

/// A tensor stored as `dir/file` (`.npy`): a head's initial values, drawn by TF and not in
/// the checkpoint.
pub fn tensor(dir: &Path, file: &str, shape: Vec<usize>) -> Tensor {
    Tensor::new(shape, npy_f32(dir, file)).unwrap()
}

/// The schedule of an `optimizer` entry (`optimization.py`'s warm-up then linear decay).
pub fn schedule(optimizer: &Value) -> Schedule {
    Schedule {
        init_lr: optimizer["init_lr"].as_f64().unwrap() as f32,
        num_train_steps: optimizer["num_train_steps"].as_u64().unwrap(),
        num_warmup_steps: optimizer["num_warmup_steps"].as_u64().unwrap(),
    }
}

/// The `.npy` a variable entry names under `key` (`grads_step1`, `after_step3`).
pub fn values(dir: &Path, variable: &Value, key: &str) -> Vec<f32> {
    npy_f32(dir, variable[key].as_str().unwrap())
}

/// A variable entry's `shape`.
pub fn shape(variable: &Value) -> Vec<usize> {
    variable["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap() as usize)
        .collect()
}

/// The trainer's parameters are the variables `vars`, in order: the same names and shapes,
/// and AdamW decays the same ones.
pub fn check_variable_set<H: Head<B>, B: Backend>(vars: &[Value], t: &Trainer<H, B>) {
    let mut ours = Vec::new();
    t.visit_params(&mut |name, p| ours.push((name.to_string(), p.shape.clone())));
    assert_eq!(ours.len(), vars.len());
    let opt = t.optimizer();
    for (v, (name, shape)) in vars.iter().zip(&ours) {
        assert_eq!(v["name"].as_str().unwrap(), name);
        assert_eq!(&self::shape(v), shape, "{name}");
        assert_eq!(
            v["weight_decay"].as_bool().unwrap(),
            opt.decays(name),
            "{name}"
        );
    }
}

/// The trainer's pending gradients (summed over the batch's examples) divided by `batch`:
/// the gradients of the batch's mean loss, which TF stores.
pub fn mean_grads(pending: Vec<(String, Vec<f32>)>, batch: usize) -> HashMap<String, Vec<f32>> {
    pending
        .into_iter()
        .map(|(n, g)| (n, g.iter().map(|x| x / batch as f32).collect()))
        .collect()
}

/// Largest |x|: the scale a gradient's difference is measured against.
pub fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |a, &x| a.max(x.abs()))
}

/// float64 sum, sum of squares and max |x| (a fixture's `*_full_stats`, and
/// `word_embeddings_full_sum*`).
pub fn full_stats(x: &[f32]) -> (f64, f64, f64) {
    x.iter().fold((0.0, 0.0, 0.0), |(s, q, m), &v| {
        let v = v as f64;
        (s + v, q + v * v, f64::max(m, v.abs()))
    })
}

/// One entry of a reference's `steps`.
pub struct StepReference {
    pub loss: f32,
    pub learning_rate: f32,
    /// `global_grad_norm_before_clipping`.
    pub grad_norm: f64,
}

impl StepReference {
    pub fn of(step: &Value) -> StepReference {
        StepReference {
            loss: step["loss"].as_f64().unwrap() as f32,
            learning_rate: step["learning_rate"].as_f64().unwrap() as f32,
            grad_norm: step["global_grad_norm_before_clipping"].as_f64().unwrap(),
        }
    }
}

/// `fixtures/tf_bert_tiny/finetune_reference`: `run_classifier.py`'s three steps on a batch of
/// 4 × 128 with 3 labels (tests/train_reference.rs on the CPU, tests/vulkan_train_reference.rs
/// on the device).
pub struct FinetuneReference {
    /// `finetune.json`.
    pub json: Value,
    pub config: BertConfig,
    /// The checkpoint and the classifier head's initial values (drawn by TF).
    pub weights: Weights,
    pub batch: FixtureBatch,
    pub labels: Vec<u32>,
}

impl FinetuneReference {
    pub fn dir() -> PathBuf {
        shared_dir().join("fixtures/tf_bert_tiny/finetune_reference")
    }

    pub fn load() -> FinetuneReference {
        let dir = Self::dir();
        let mut weights = checkpoint(&dir);
        weights.insert(
            "output_weights",
            tensor(&dir, "initial/output_weights.npy", vec![3, 128]),
        );
        weights.insert(
            "output_bias",
            tensor(&dir, "initial/output_bias.npy", vec![3]),
        );
        FinetuneReference {
            json: index(&dir, "finetune.json"),
            config: BertConfig::from_file(dir.join("bert_config.json")).unwrap(),
            weights,
            batch: FixtureBatch::load(&dir, 4, 128),
            labels: npy_u32(&dir, "label_ids.npy"),
        }
    }
}
