//! Token ids shared by the encoder and training benches.

/// `bench_ort.py: make_ids`: same LCG, `[CLS] x … x [SEP]`.
pub fn make_ids(b: usize, s: usize) -> Vec<u32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(b * s);
    for _ in 0..b {
        for j in 0..s {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.push(if j == 0 {
                101
            } else if j == s - 1 {
                102
            } else {
                1000 + ((state >> 33) % 29000) as u32
            });
        }
    }
    out
}
