//! A TF checkpoint: the `.index` SSTable and one data shard. Input: u32 length of the index,
//! the index, then the data file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((index, shard)) = bert_fuzz::split_prefixed(data) else {
        return;
    };
    let dir = bert_fuzz::scratch_dir();
    let prefix = dir.join("bert_model.ckpt");
    std::fs::write(dir.join("bert_model.ckpt.index"), index).expect("scratch write");
    std::fs::write(dir.join("bert_model.ckpt.data-00000-of-00001"), shard).expect("scratch");
    let _ = bert::weights::tf_checkpoint::load(&prefix);
});
