//! Writing TensorFlow checkpoints: the fixture checkpoint (written by TensorFlow) read,
//! written by us and read back bit for bit; both our files equal TensorFlow's byte for
//! byte (tensors in name order without padding; the same SSTable layout). That TensorFlow's own reader
//! loads our files was checked once by hand (see the commit message); here, the format's
//! rules are.

mod common;

use std::path::PathBuf;

use bert::weights::tf_checkpoint::{
    load, resolve_prefix, save, write_checkpoint_state, BundleReader, BundleWriter, DataType,
    TensorData,
};
use bert::weights::{Tensor, Weights};

fn fixture() -> PathBuf {
    common::shared_dir().join("fixtures/tf_bert_tiny/bert_model.ckpt")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-ckpt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn fixture_written_and_read_back_bit_for_bit() {
    let dir = scratch("roundtrip");
    let tf = BundleReader::open(fixture()).unwrap();
    let prefix = dir.join("model.ckpt-0");
    let mut w = BundleWriter::create(&prefix).unwrap();
    let mut count = 0;
    for (name, dtype, _) in tf.variables() {
        assert_eq!(dtype, DataType::Float, "{name}");
        w.add_tensor(name, &tf.read_f32(name).unwrap()).unwrap();
        count += 1;
    }
    assert_eq!(count, 46);
    w.finish().unwrap();

    let ours = BundleReader::open(&prefix).unwrap();
    let a: Vec<_> = tf.variables().collect();
    let b: Vec<_> = ours.variables().collect();
    assert_eq!(a, b, "same variables, types and shapes in the same order");
    for (name, _, _) in tf.variables() {
        let x = tf.read_f32(name).unwrap();
        let y = ours.read_f32(name).unwrap();
        assert_eq!(x.shape, y.shape);
        assert_eq!(bits(&x), bits(&y), "{name}");
    }
    // TensorFlow wrote the tensors in name order, unpadded: so do we, byte for byte.
    let file = |p: &std::path::Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        std::fs::read(PathBuf::from(s)).unwrap()
    };
    let data = ".data-00000-of-00001";
    assert!(
        file(&prefix, data) == file(&fixture(), data),
        "data files differ"
    );
    // And the index too: same entries, same LevelDB block layout and key shortening.
    assert!(
        file(&prefix, ".index") == file(&fixture(), ".index"),
        "index files differ"
    );
    // The whole-model loader agrees too.
    let (wa, wb) = (load(fixture()).unwrap(), load(&prefix).unwrap());
    assert_eq!(wa.len(), wb.len());
    for (name, t) in wa.iter() {
        assert_eq!(bits(t), bits(wb.tensor(name).unwrap()), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_with_global_step_and_the_checkpoint_file() {
    let dir = scratch("save");
    let mut weights = Weights::new();
    weights.insert(
        "bert/pooler/dense/bias",
        Tensor::new(vec![3], vec![1.5, -0.0, f32::MIN_POSITIVE]).unwrap(),
    );
    weights.insert("output_bias", Tensor::new(vec![], vec![7.0]).unwrap());
    weights.insert("empty", Tensor::new(vec![0, 4], vec![]).unwrap());
    for step in [1, 1000] {
        save(dir.join(format!("model.ckpt-{step}")), &weights, Some(step)).unwrap();
    }
    write_checkpoint_state(
        &dir,
        "model.ckpt-1000",
        &["model.ckpt-1", "model.ckpt-1000"],
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.join("checkpoint")).unwrap();
    assert_eq!(
        text,
        "model_checkpoint_path: \"model.ckpt-1000\"\n\
         all_model_checkpoint_paths: \"model.ckpt-1\"\n\
         all_model_checkpoint_paths: \"model.ckpt-1000\"\n"
    );
    assert_eq!(resolve_prefix(&dir).unwrap(), dir.join("model.ckpt-1000"));

    let r = BundleReader::open(&dir).unwrap();
    assert_eq!(r.read_i64("global_step").unwrap(), (vec![], vec![1000]));
    let names: Vec<&str> = r.variables().map(|v| v.0).collect();
    assert_eq!(
        names,
        [
            "bert/pooler/dense/bias",
            "empty",
            "global_step",
            "output_bias"
        ]
    );
    let back = load(&dir).unwrap();
    for (name, t) in weights.iter() {
        let u = back.tensor(name).unwrap();
        assert_eq!((&t.shape, bits(t)), (&u.shape, bits(u)), "{name}");
    }
    // global_step is listed but is not a weight.
    let e = back.get("global_step", &[]).unwrap_err();
    assert!(e.to_string().contains("int64"), "{e}");
    let e = r.read_f32("global_step").unwrap_err();
    assert!(
        e.to_string().contains("dtype int64, expected float32"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writer_refuses_bad_tensors_and_leaves_nothing_unfinished() {
    let dir = scratch("refuse");
    let prefix = dir.join("model.ckpt-5");
    let mut w = BundleWriter::create(&prefix).unwrap();
    w.add("a", &[2], TensorData::F32(&[1.0, 2.0])).unwrap();
    let e = w.add("a", &[2], TensorData::F32(&[1.0, 2.0])).unwrap_err();
    assert!(e.to_string().contains("added twice"), "{e}");
    let e = w.add("b", &[3], TensorData::I32(&[1, 2])).unwrap_err();
    assert!(e.to_string().contains("does not hold 2 values"), "{e}");
    let e = w.add("", &[], TensorData::I64(&[1])).unwrap_err();
    assert!(e.to_string().contains("needs a name"), "{e}");
    drop(w);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "unfinished writer left {left:?}");

    // int32 round trip, and quantized weights refused.
    let mut w = BundleWriter::create(&prefix).unwrap();
    w.add("ids", &[2, 2], TensorData::I32(&[1, -2, 3, i32::MAX]))
        .unwrap();
    w.finish().unwrap();
    let r = BundleReader::open(&prefix).unwrap();
    assert_eq!(
        r.read_i32("ids").unwrap(),
        (vec![2, 2], vec![1, -2, 3, i32::MAX])
    );
    let mut q = Weights::new();
    q.insert_int8("k", 2, 1, vec![1, 2], vec![0.5]).unwrap();
    let e = save(dir.join("q.ckpt"), &q, None).unwrap_err();
    assert!(e.to_string().contains("float32"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
