//! Reading pre-training TFRecords back (`run_pretraining.py`'s `input_fn`): Google's
//! fixture decodes to what `instances.jsonl` says, and corrupt files, wrong feature names,
//! types and shapes are errors naming the file and the record.

mod common;

use std::path::{Path, PathBuf};

use bert::train::pretraining_data::{
    frame_record, Example, Feature, FeatureShapes, PretrainingFeatures, PretrainingRecords,
    TfRecordReader, TfRecordWriter,
};

const S128: FeatureShapes = FeatureShapes {
    max_seq_length: 128,
    max_predictions_per_seq: 20,
};

fn fixture() -> PathBuf {
    common::shared_dir().join("fixtures/pretraining_data/sample_text_s128/tf_examples.tfrecord")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-records-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read_all(files: &[PathBuf], shapes: FeatureShapes) -> bert::Result<Vec<PretrainingFeatures>> {
    PretrainingRecords::open(files, shapes).collect()
}

/// The error of reading `file`, as text.
fn error_of(file: &Path, shapes: FeatureShapes) -> String {
    let e = read_all(&[file.to_path_buf()], shapes).unwrap_err();
    assert_eq!(e.code(), 5, "{e}");
    e.to_string()
}

#[test]
fn google_fixture_decodes_as_instances_jsonl() {
    let got = read_all(&[fixture()], S128).unwrap();
    let jsonl = std::fs::read_to_string(fixture().with_file_name("instances.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 60);
    let u32s = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for (f, row) in got.iter().zip(&rows) {
        assert_eq!(f.input_ids, u32s(&row["input_ids"]));
        assert_eq!(f.input_mask, u32s(&row["input_mask"]));
        assert_eq!(f.segment_ids, u32s(&row["segment_ids"]));
        assert_eq!(f.masked_lm_positions, u32s(&row["masked_lm_positions"]));
        assert_eq!(f.masked_lm_ids, u32s(&row["masked_lm_ids"]));
        assert_eq!(
            vec![f.next_sentence_labels],
            u32s(&row["next_sentence_labels"])
        );
        let w: Vec<f32> = row["masked_lm_weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(f.masked_lm_weights, w);
    }
    // Two files are read one after the other.
    let twice = read_all(&[fixture(), fixture()], S128).unwrap();
    assert_eq!(twice.len(), 120);
    assert_eq!(twice[60], got[0]);
}

#[test]
fn corrupt_files_name_the_file_and_record() {
    let dir = scratch("corrupt");
    let bytes = std::fs::read(fixture()).unwrap();
    // Offsets of the records, from their length fields.
    let mut starts = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        starts.push(pos);
        let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap()) as usize;
        pos += 16 + len;
    }
    assert_eq!(starts.len(), 60);
    let file = dir.join("bad.tfrecord");
    let third = starts[3];

    // A flipped byte in record 3's data.
    let mut bad = bytes.clone();
    bad[third + 40] ^= 0x04;
    std::fs::write(&file, &bad).unwrap();
    let msg = error_of(&file, S128);
    assert!(msg.contains("bad.tfrecord"), "{msg}");
    assert!(
        msg.contains(&format!("record 3 (at byte {third})")),
        "{msg}"
    );
    assert!(msg.contains("data CRC mismatch"), "{msg}");

    // A flipped byte in its length.
    let mut bad = bytes.clone();
    bad[third + 1] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let msg = error_of(&file, S128);
    assert!(
        msg.contains("record 3") && msg.contains("length CRC mismatch"),
        "{msg}"
    );

    // Cut inside record 3's data, and inside its header.
    std::fs::write(&file, &bytes[..third + 100]).unwrap();
    let msg = error_of(&file, S128);
    assert!(
        msg.contains("record 3") && msg.contains("truncated"),
        "{msg}"
    );
    std::fs::write(&file, &bytes[..third + 5]).unwrap();
    let msg = error_of(&file, S128);
    assert!(
        msg.contains("record 3") && msg.contains("truncated"),
        "{msg}"
    );

    // Cut exactly between records: a shorter, valid file.
    std::fs::write(&file, &bytes[..third]).unwrap();
    assert_eq!(
        read_all(std::slice::from_ref(&file), S128).unwrap().len(),
        3
    );

    // Every single-bit flip anywhere is caught (both checksums cover every byte), never a
    // panic or a huge allocation.
    for pos in (0..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[pos] ^= 1 << (pos % 8);
        std::fs::write(&file, &bad).unwrap();
        assert!(
            read_all(std::slice::from_ref(&file), S128).is_err(),
            "flip at {pos}"
        );
    }

    // A missing file is an I/O error naming it.
    let e = read_all(&[dir.join("missing.tfrecord")], S128).unwrap_err();
    assert_eq!(e.code(), 1);
    assert!(e.to_string().contains("missing.tfrecord"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change to an Example.
type Edit = Box<dyn FnOnce(&mut Example)>;

/// Writes the fixture's first record changed by `edit` as a one-record file.
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Example)) -> PathBuf {
    let record = TfRecordReader::open(fixture())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut ex = Example::decode(&record).unwrap();
    edit(&mut ex);
    let path = dir.join(name);
    let mut w = TfRecordWriter::create(&path).unwrap();
    w.write(&ex.encode()).unwrap();
    w.finish().unwrap();
    path
}

#[test]
fn wrong_features_name_what_is_wrong() {
    let dir = scratch("features");
    // Unchanged, re-encoded by us: decodes.
    let same = edited(&dir, "same.tfrecord", |_| {});
    assert_eq!(read_all(&[same], S128).unwrap().len(), 1);
    // An extra feature is ignored, as tf.parse_single_example ignores it.
    let extra = edited(&dir, "extra.tfrecord", |ex| {
        ex.features
            .insert("note".into(), Feature::Bytes(vec![b"x".to_vec()]));
    });
    assert_eq!(read_all(&[extra], S128).unwrap().len(), 1);

    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "renamed",
            Box::new(|ex| {
                let v = ex.features.remove("input_ids").unwrap();
                ex.features.insert("input_idz".into(), v);
            }),
            "no feature input_ids (features present: input_idz, input_mask",
        ),
        (
            "type",
            Box::new(|ex| {
                ex.features
                    .insert("masked_lm_weights".into(), Feature::Int64(vec![1; 20]));
            }),
            "feature masked_lm_weights is a int64_list, expected a float_list",
        ),
        (
            "short",
            Box::new(|ex| {
                ex.features
                    .insert("segment_ids".into(), Feature::Int64(vec![0; 64]));
            }),
            "feature segment_ids has 64 values, expected 128",
        ),
        (
            "negative",
            Box::new(|ex| {
                let mut v = vec![0i64; 128];
                v[7] = -3;
                ex.features.insert("input_ids".into(), Feature::Int64(v));
            }),
            "feature input_ids: value -3 at index 7 is out of range",
        ),
        (
            "position",
            Box::new(|ex| {
                let mut v = vec![0i64; 20];
                v[0] = 128;
                ex.features
                    .insert("masked_lm_positions".into(), Feature::Int64(v));
            }),
            "position 128 is outside max_seq_length 128",
        ),
        (
            "labels",
            Box::new(|ex| {
                ex.features
                    .insert("next_sentence_labels".into(), Feature::Int64(vec![]));
            }),
            "feature next_sentence_labels has 0 values, expected 1",
        ),
    ];
    for (name, edit, want) in cases {
        let path = edited(&dir, &format!("{name}.tfrecord"), edit);
        let msg = error_of(&path, S128);
        assert!(
            msg.contains(&format!("{name}.tfrecord: record 0: ")),
            "{msg}"
        );
        assert!(msg.contains(want), "{name}: {msg}");
    }

    // Shapes other than the data's: the flags do not match.
    let same = dir.join("same.tfrecord");
    let msg = error_of(
        &same,
        FeatureShapes {
            max_seq_length: 64,
            max_predictions_per_seq: 20,
        },
    );
    assert!(msg.contains("has 128 values, expected 64"), "{msg}");

    // Not an Example at all.
    let junk = dir.join("junk.tfrecord");
    let mut framed = Vec::new();
    frame_record(&mut framed, b"\x0a\xff\xff");
    std::fs::write(&junk, framed).unwrap();
    let msg = error_of(&junk, S128);
    assert!(msg.contains("record 0: malformed Example"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}
