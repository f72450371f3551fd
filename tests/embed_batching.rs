//! A text's vector does not depend on its batch (issue 20): alone, in any batch, in any
//! order, cut by any token budget, it is the same vector bit for bit (the encoder runs each
//! sequence only to its last real token, and every other step is per row or per
//! sequence). Long texts as windows: a text that fits in one window gets exactly its
//! truncated vector, and a long one is pooled over its windows.

mod common;

use bert::{Context, EmbedOptions, LongText, Pipeline, Pooling};

fn texts() -> Vec<String> {
    let mut t: Vec<String> = [
        "A man is playing a guitar.",
        "The quick brown fox jumps over the lazy dog.",
        "Hello",
        "",
        "Accented: café, naïve, Ångström; CJK: 北京大学; symbols ☃ ♥",
        "Paris is the capital and most populous city of France, with an estimated population \
         of 2,102,650 residents in January 2023 in an area of more than 105 km2.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A paragraph longer than the model's 256 positions.
    t.push(
        "Normans were the people who in the 10th and 11th centuries gave their name to Normandy. "
            .repeat(20),
    );
    for i in 0..25 {
        t.push(format!(
            "Sentence number {i} talks about {} things.",
            i * 7 % 13
        ));
    }
    t
}

fn embed(p: &Pipeline, texts: &[&str], opts: &EmbedOptions, threads: usize) -> Vec<Vec<f32>> {
    let h = p.model().config().hidden_size;
    let mut ctx = Context::new(threads);
    let v = p.embed(&mut ctx, texts, opts).unwrap();
    v.chunks_exact(h).map(<[f32]>::to_vec).collect()
}

#[test]
fn a_texts_vector_does_not_depend_on_its_batch() {
    let p = Pipeline::load(common::minilm_dir(), None).unwrap();
    let owned = texts();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let base = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
        ..EmbedOptions::default()
    };
    let alone: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| embed(&p, &[t], &base, 1).remove(0))
        .collect();
    for (batch_size, tokens, threads) in [(256, 8192, 2), (3, 0, 1), (7, 50, 2), (32, 1, 1)] {
        let opts = EmbedOptions {
            batch_size,
            max_batch_tokens: tokens,
            ..base
        };
        let got = embed(&p, &texts, &opts, threads);
        assert_eq!(
            got, alone,
            "batch_size {batch_size}, max_batch_tokens {tokens}"
        );
    }
    // Reversed order: each vector follows its text.
    let rev: Vec<&str> = texts.iter().rev().copied().collect();
    let got = embed(&p, &rev, &base, 2);
    let want: Vec<Vec<f32>> = alone.iter().rev().cloned().collect();
    assert_eq!(got, want);
}

#[test]
fn long_texts_as_windows() {
    let p = Pipeline::load(common::minilm_dir(), None).unwrap();
    let owned = texts();
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let long = texts.iter().position(|t| t.len() > 1000).unwrap();
    for pooling in [Pooling::Mean, Pooling::Max, Pooling::Cls] {
        let truncate = EmbedOptions {
            pooling,
            normalize: true,
            ..EmbedOptions::default()
        };
        let windows = EmbedOptions {
            long_text: LongText::Windows { stride: 64 },
            ..truncate
        };
        let (a, b) = (
            embed(&p, &texts, &truncate, 2),
            embed(&p, &texts, &windows, 2),
        );
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let cos: f32 = x.iter().zip(y).map(|(u, v)| u * v).sum();
            if i != long {
                assert_eq!(
                    x, y,
                    "{pooling:?}: text {i} fits, so windows change nothing"
                );
            } else if pooling == Pooling::Cls {
                // The first window is the truncated text; its [CLS] row is the same.
                assert!(cos > 1.0 - 1e-6, "{pooling:?}: cosine {cos}");
            } else {
                // Pooled over all ~700 tokens instead of the first 254: close, not equal.
                assert!(cos > 0.9 && cos < 1.0 - 1e-6, "{pooling:?}: cosine {cos}");
            }
        }
    }
}
