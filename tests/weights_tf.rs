//! The Google TF checkpoint reader on the shared `tf_bert_tiny` fixture.

mod common;

use bert::weights::tf_checkpoint;

fn ckpt_dir() -> std::path::PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny")
}

#[test]
fn reads_every_variable_with_its_shape() {
    let w = tf_checkpoint::load(ckpt_dir()).unwrap();
    // README: 46 float32 tensors, 4,433,468 values.
    assert_eq!(w.len(), 46);
    let total: usize = w.iter().map(|(_, t)| t.data.len()).sum();
    assert_eq!(total, 4_433_468);
    w.get("bert/embeddings/word_embeddings", &[30522, 128])
        .unwrap();
    w.get(
        "bert/encoder/layer_1/intermediate/dense/kernel",
        &[128, 512],
    )
    .unwrap();
    w.get("cls/seq_relationship/output_weights", &[2, 128])
        .unwrap();
    let err = w
        .get("bert/encoder/layer_1/output/dense/kernel", &[128, 512])
        .unwrap_err();
    assert!(
        err.to_string().contains("layer_1/output/dense/kernel"),
        "{err}"
    );
    let err = w
        .get("bert/encoder/layer_2/output/dense/kernel", &[512, 128])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("missing tensor bert/encoder/layer_2"),
        "{err}"
    );
}

#[test]
fn prefix_index_and_directory_give_the_same_weights() {
    let a = tf_checkpoint::load(ckpt_dir()).unwrap();
    let b = tf_checkpoint::load(ckpt_dir().join("bert_model.ckpt")).unwrap();
    let c = tf_checkpoint::load(ckpt_dir().join("bert_model.ckpt.index")).unwrap();
    for (name, t) in a.iter() {
        assert_eq!(Some(t), b.tensor(name));
        assert_eq!(Some(t), c.tensor(name));
    }
}

#[test]
fn missing_checkpoint_is_an_error() {
    let err = tf_checkpoint::load(ckpt_dir().join("nope.ckpt")).unwrap_err();
    assert!(err.to_string().contains("nope.ckpt.index"), "{err}");
}
