//! `bert convert --output model.safetensors`: Google's tf_bert_tiny checkpoint (encoder,
//! pooler, masked-LM and next-sentence heads) written under Hugging Face's names with
//! `config.json` beside it reads back as the same model: every tensor equal, same config.

mod common;

#[test]
fn google_checkpoint_to_safetensors_and_back() {
    let tiny = common::shared_dir().join("fixtures/tf_bert_tiny");
    let dir = std::env::temp_dir().join(format!("libbert-convert-st-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A folder that does not exist yet: convert makes it, as Google's scripts make theirs.
    let root = dir.clone();
    let dir = dir.join("new/export");
    let out = dir.join("model.safetensors");
    let o = common::bert_cli([
        "convert",
        "--model",
        &tiny.display().to_string(),
        &format!("--output={}", out.display()),
    ]);
    assert!(o.ok, "{}", o.stderr);
    std::fs::copy(tiny.join("vocab.txt"), dir.join("vocab.txt")).unwrap();
    let (c0, w0) = bert::weights::load_model_files(&tiny).unwrap();
    let (c1, w1) = bert::weights::load_model_files(&dir).unwrap();
    assert_eq!(c0, c1);
    let names: Vec<&str> = w0.names().collect();
    assert!(
        names.contains(&"cls/predictions/transform/dense/kernel"),
        "{names:?}"
    );
    assert_eq!(w1.len(), w0.len(), "{:?}", w1.names().collect::<Vec<_>>());
    for (name, t) in w0.iter() {
        assert_eq!(w1.tensor(name), Some(t), "{name}");
    }
    // Hugging Face's names in the file itself (BertForPreTraining's).
    let bytes = std::fs::read(&out).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&bytes[8..8 + n]);
    for hf in [
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.embeddings.LayerNorm.weight",
        "cls.predictions.bias",
        "cls.seq_relationship.weight",
    ] {
        assert!(header.contains(hf), "{hf} missing: {header}");
    }
    // A quantized output is refused with a reason, not written.
    let o = common::bert_cli([
        "convert",
        "--dtype=int8",
        "--model",
        &tiny.display().to_string(),
        &format!("--output={}", dir.join("q.safetensors").display()),
    ]);
    assert!(!o.ok && o.stderr.contains("f32"), "{}", o.stderr);
    std::fs::remove_dir_all(&root).unwrap();
}
