//! Times opening a `.bert` file (header parse + mmap, no weight read) against building the
//! runnable model from it (f32 weights read and packed for the kernels; f16 and int8 weights
//! borrowed from the mapping, not read).
//!
//! cargo run --release --example open_native -- model.bert

use std::time::Instant;

use bert::weights::native::NativeModel;
use bert::BertModel;

fn main() -> Result<(), bert::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "model.bert".to_string());
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let m = NativeModel::open(&path)?;
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(m.config());
    }
    println!("NativeModel::open  {:.3} ms (best of 5)", best * 1e3);
    let t = Instant::now();
    let model = BertModel::load(&path)?;
    println!(
        "BertModel::load    {:.1} ms ({} layers, {})",
        t.elapsed().as_secs_f64() * 1e3,
        model.config().num_hidden_layers,
        model.dtype()
    );
    Ok(())
}
