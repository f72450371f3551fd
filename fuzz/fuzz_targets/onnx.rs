//! ONNX exports (feature `onnx`): tract's protobuf parsing and our mapping of the graph onto
//! BERT's parts, f32 and int8.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = bert_fuzz::scratch_dir().join("model.onnx");
    std::fs::write(&path, data).expect("scratch write");
    let _ = bert::weights::onnx::load_with_report(&path);
});
