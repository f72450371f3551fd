//! The training state's metadata is checksummed (issue 21 case 5): editing `global_step` in
//! `training_state.safetensors` resumed at the wrong step, silently. The test failed before
//! the fix.

use std::ops::ControlFlow;

use bert::classifier::{checkpoint, FineTuneParams, FineTuner};
use bert::config::BertConfig;
use bert::tokenizer::{Tokenizer, Vocab};
use bert::train::Params;

fn tiny_state(path: &std::path::Path) {
    let config = BertConfig {
        vocab_size: 8,
        hidden_size: 4,
        num_hidden_layers: 1,
        num_attention_heads: 1,
        intermediate_size: 8,
        max_position_embeddings: 8,
        type_vocab_size: 2,
        ..BertConfig::default()
    };
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d"];
    let tok = Tokenizer::new(Vocab::from_tokens(vocab).unwrap(), true).unwrap();
    let params = Params::zeros(&config, 2).unwrap();
    let hp = FineTuneParams {
        train_batch_size: 2,
        max_seq_length: 8,
        num_train_epochs: 2.0,
        threads: 1,
        ..FineTuneParams::default()
    };
    let labels = vec!["x".to_string(), "y".to_string()];
    let mut ft = FineTuner::new(params, tok, labels, hp).unwrap();
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
