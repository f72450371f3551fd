//! Fine-tuning against careless input (issue 21): the training state's metadata is
//! checksummed (editing `global_step` resumed at the wrong step, silently), absurd epoch
//! counts are refused, a read-only output directory is found before training. Each test
//! failed before its fix.

use std::ops::ControlFlow;

use bert::classifier::{checkpoint, FineTuneParams, FineTuner};
use bert::config::BertConfig;
use bert::tokenizer::{Tokenizer, Vocab};

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 8,
        hidden_size: 4,
        num_hidden_layers: 1,
        num_attention_heads: 1,
        intermediate_size: 8,
        max_position_embeddings: 8,
        type_vocab_size: 2,
        ..BertConfig::default()
    }
}

fn tiny_tuner(hp: FineTuneParams) -> bert::Result<FineTuner> {
    let config = tiny_config();
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d"];
    let tok = Tokenizer::new(Vocab::from_tokens(vocab).unwrap(), true).unwrap();
    let labels = vec!["x".to_string(), "y".to_string()];
    FineTuner::new(config.clone(), zero_weights(&config), tok, labels, hp)
}

/// Every `bert/*` variable of `c`, zero (the head is initialised by the fine-tuner).
fn zero_weights(c: &BertConfig) -> bert::weights::Weights {
    use bert::weights::{Tensor, Weights};
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut w = Weights::new();
    let mut put = |name: String, shape: Vec<usize>| {
        let n = shape.iter().product();
        let value = if name.ends_with("gamma") { 1.0 } else { 0.0 };
        w.insert(name, Tensor::new(shape, vec![value; n]).unwrap());
    };
    put(
        "bert/embeddings/word_embeddings".into(),
        vec![c.vocab_size, h],
    );
    put(
        "bert/embeddings/token_type_embeddings".into(),
        vec![c.type_vocab_size, h],
    );
    put(
        "bert/embeddings/position_embeddings".into(),
        vec![c.max_position_embeddings, h],
    );
    for s in ["bert/embeddings".to_string()]
        .into_iter()
        .chain((0..c.num_hidden_layers).flat_map(|l| {
            let s = format!("bert/encoder/layer_{l}");
            [format!("{s}/attention/output"), format!("{s}/output")]
        }))
    {
        put(format!("{s}/LayerNorm/beta"), vec![h]);
        put(format!("{s}/LayerNorm/gamma"), vec![h]);
    }
    for l in 0..c.num_hidden_layers {
        let s = format!("bert/encoder/layer_{l}");
        for (name, a, b) in [
            ("attention/self/query", h, h),
            ("attention/self/key", h, h),
            ("attention/self/value", h, h),
            ("attention/output/dense", h, h),
            ("intermediate/dense", h, i),
            ("output/dense", i, h),
        ] {
            put(format!("{s}/{name}/kernel"), vec![a, b]);
            put(format!("{s}/{name}/bias"), vec![b]);
        }
    }
    put("bert/pooler/dense/kernel".into(), vec![h, h]);
    put("bert/pooler/dense/bias".into(), vec![h]);
    w
}

fn tiny_params() -> FineTuneParams {
    FineTuneParams {
        train_batch_size: 2,
        max_seq_length: 8,
        num_train_epochs: 2.0,
        threads: 1,
        ..FineTuneParams::default()
    }
}

fn tiny_state(path: &std::path::Path) {
    let mut ft = tiny_tuner(tiny_params()).unwrap();
    ft.add_example("a b", None, "x").unwrap();
    ft.add_example("c d", None, "y").unwrap();
    ft.train(Some(1), |_| ControlFlow::Continue(())).unwrap();
    ft.save_checkpoint(path).unwrap();
}

#[test]
fn an_edited_global_step_is_an_error() {
    let path = std::env::temp_dir().join(format!("libbert-state-{}", std::process::id()));
    tiny_state(&path);
    let state = checkpoint::load(&path).unwrap();
    assert_eq!(state.global_step, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let key = b"\"global_step\":\"1\"";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at + key.len() - 2] = b'7';
    std::fs::write(&path, &bytes).unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("metadata checksum mismatch"), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn absurd_epoch_counts_are_refused() {
    // --num_train_epochs=1e30 saturated the step count and trained forever.
    for epochs in [1e30, f64::INFINITY, f64::NAN, 0.0, -1.0] {
        let hp = FineTuneParams {
            num_train_epochs: epochs,
            ..tiny_params()
        };
        let e = tiny_tuner(hp).unwrap_err().to_string();
        assert!(e.contains("num_train_epochs"), "{epochs}: {e}");
    }
    let hp = FineTuneParams {
        num_train_epochs: 1e6,
        ..tiny_params()
    };
    tiny_tuner(hp).unwrap();
}

#[test]
fn a_read_only_output_dir_is_refused_before_training() {
    // Even root cannot create files in /proc/self (a directory): the closest thing to a
    // read-only directory that holds for every user.
    let ro = std::path::Path::new("/proc/self");
    if !ro.is_dir() {
        return;
    }
    let glue =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/glue/SST-2");
    let model = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/tf_bert_tiny");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bert"))
        .args([
            "classify",
            "--task_name=sst-2",
            "--do_train",
            "--max_train_examples=2",
        ])
        .args([
            "--train_batch_size=2",
            "--num_train_epochs=1",
            "--max_seq_length=16",
        ])
        .arg(format!("--data_dir={}", glue.display()))
        .arg(format!("--model={}", model.display()))
        .arg(format!("--output_dir={}", ro.display()))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("/proc/self") && !e.contains("examples, batch"),
        "{e}"
    );
}

#[test]
fn a_training_state_whose_config_does_not_fit_its_data_is_an_error() {
    // A version 1 state (no metadata checksum) whose config claims 2^24 x 2^24 embeddings:
    // the parameters were allocated from the config before any tensor was read (an abort).
    let config = BertConfig {
        vocab_size: 1 << 24,
        hidden_size: 1 << 24,
        num_attention_heads: 1,
        ..tiny_config()
    };
    let meta = serde_json::json!({
        "format": "libbert-training-state", "version": "1", "global_step": "0",
        "dropout_rng_state": "0", "order_rng_state": "0", "order_position": "0",
        "labels": "[\"x\",\"y\"]", "config": serde_json::to_string(&config).unwrap(),
        "data_crc32c": "0",
    });
    let mut header = serde_json::json!({ "__metadata__": meta })
        .to_string()
        .into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    let path = std::env::temp_dir().join(format!("libbert-state-big-{}", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let e = checkpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("config"), "{e}");
    let _ = std::fs::remove_file(&path);
}
