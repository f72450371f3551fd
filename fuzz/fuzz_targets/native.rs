//! libbert's `.bert` format (f32, packed f32, f16 and int8 files) from memory: header, tensor
//! table, checksums, and the model built from what it holds, in Google's layout and as an
//! inference model borrows it.
#![no_main]

use bert::weights::native::NativeModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = NativeModel::from_bytes(data.to_vec(), "fuzz.bert") else {
        return;
    };
    let _ = m.verify();
    if let Ok(w) = m.weights() {
        let _ = bert::BertModel::from_weights_as(m.config().clone(), w, None);
    }
    if let Ok(w) = m.weights_mapped() {
        let _ = bert::BertModel::from_weights(m.config().clone(), &w);
    }
});
