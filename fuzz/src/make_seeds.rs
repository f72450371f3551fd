//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/` from the real
//! files: Google's conformance texts and vocabularies, the fixture's TF checkpoint and config,
//! all-MiniLM-L6-v2's safetensors header and tensors, the repository's ONNX test graphs, and
//! `.bert` files (f32, f16, int8) and a training state made from the fixture's weights cut to
//! a tiny config. Usage: `make_seeds [CORPUS_DIR]`.

use std::path::{Path, PathBuf};

use bert::classifier::{checkpoint, FineTuneParams, FineTuner};
use bert::config::BertConfig;
use bert::tokenizer::{Tokenizer, Vocab};
use bert::weights::{native, quantize, safetensors, tf_checkpoint, DType, Tensor, Weights};
use bert_fuzz::{join_prefixed, shared_dir};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Res<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(name), bytes)?;
    Ok(())
}

fn main() -> Res<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("corpus"));
    let shared = shared_dir();
    let tok_dir = shared.join("data/tokenizer");
    let fixture = shared.join("fixtures/tf_bert_tiny");
    let cache = std::env::var_os("LIBBERT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/libbert")))
        .unwrap_or_default();

    // Tokenizer: every 5th conformance text, with varied casing / pair / max_seq_length.
    let conformance = std::fs::read_to_string(tok_dir.join("conformance.jsonl"))?;
    for (i, line) in conformance.lines().enumerate().filter(|(i, _)| i % 5 == 0) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let text = v["text"].as_str().unwrap_or_default();
        let mut seed = vec![(i % 4) as u8, [0u8, 2, 3, 8, 16, 128, 255][i % 7]];
        seed.extend_from_slice(text.as_bytes());
        put(&out, "tokenizer", &format!("conformance-{i}"), &seed)?;
    }

    // Vocabularies: the head and a slice of the middle of each real vocab.txt.
    for name in [
        "vocab-uncased.txt",
        "vocab-cased.txt",
        "vocab-multilingual-cased.txt",
    ] {
        let text = std::fs::read_to_string(tok_dir.join(name))?;
        let lines: Vec<&str> = text.lines().collect();
        for (k, range) in [(0, 0..2000), (1, 20000..21000), (2, 100..104)] {
            let part: Vec<&str> = lines.get(range).unwrap_or_default().to_vec();
            put(
                &out,
                "vocab",
                &format!("{name}-{k}"),
                (part.join("\n") + "\n").as_bytes(),
            )?;
        }
    }

    // Configs: Google's and Hugging Face's.
    put(
        &out,
        "config",
        "bert_config.json",
        &std::fs::read(fixture.join("bert_config.json"))?,
    )?;
    for model in ["all-MiniLM-L6-v2"] {
        if let Ok(b) = std::fs::read(cache.join(model).join("config.json")) {
            put(&out, "config", &format!("{model}-config.json"), &b)?;
        }
    }

    // TF checkpoint: the real index with the start of the real data shard.
    let index = std::fs::read(fixture.join("bert_model.ckpt.index"))?;
    let data = std::fs::read(fixture.join("bert_model.ckpt.data-00000-of-00001"))?;
    for (k, n) in [(0, 4096), (1, 65536)] {
        let seed = join_prefixed(&index, &data[..n.min(data.len())]);
        put(&out, "tf_checkpoint", &format!("tiny-{k}"), &seed)?;
    }

    // safetensors: all-MiniLM-L6-v2's LayerNorm and bias tensors with their real bytes, and
    // its whole header with no data.
    let minilm = cache.join("all-MiniLM-L6-v2/model.safetensors");
    if let Ok(bytes) = std::fs::read(&minilm) {
        let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + n])?;
        put(&out, "safetensors", "minilm-header-only", &bytes[..8 + n])?;
        let mut small = serde_json::Map::new();
        let mut body = Vec::new();
        for (name, info) in &header {
            let small_tensor = name.contains("LayerNorm") || name.ends_with(".bias");
            if !small_tensor || !name.contains("layer.0.") && !name.starts_with("embeddings") {
                continue;
            }
            let off = &info["data_offsets"];
            let (b, e) = (off[0].as_u64().unwrap_or(0), off[1].as_u64().unwrap_or(0));
            let raw = &bytes[8 + n + b as usize..8 + n + e as usize];
            let mut entry = info.clone();
            entry["data_offsets"] = serde_json::json!([body.len(), body.len() + raw.len()]);
            small.insert(name.clone(), entry);
            body.extend_from_slice(raw);
        }
        let mut text = serde_json::Value::Object(small).to_string().into_bytes();
        while text.len() % 8 != 0 {
            text.push(b' ');
        }
        let mut seed = (text.len() as u64).to_le_bytes().to_vec();
        seed.extend_from_slice(&text);
        seed.extend_from_slice(&body);
        safetensors::parse(&seed, Path::new("seed"))?;
        put(&out, "safetensors", "minilm-layer0", &seed)?;
    }

    // ONNX: the repository's tiny exports (f32 and quantized).
    for entry in std::fs::read_dir(root.join("../tests/data"))? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "onnx") {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            put(&out, "onnx", &name, &std::fs::read(&p)?)?;
        }
    }

    // .bert and the training state: the fixture's weights cut to a tiny config.
    let config = BertConfig {
        vocab_size: 104,
        hidden_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        ..BertConfig::default()
    };
    let real = tf_checkpoint::load(&fixture)?;
    let mut weights = Weights::new();
    for (name, shape) in google_shapes(&config) {
        // The fixture's values of the same tensor, cycled to the tiny shape.
        let src = real
            .tensor(&name)
            .map(|t| t.data.clone())
            .unwrap_or_else(|| vec![0.01]);
        let n: usize = shape.iter().product();
        let values: Vec<f32> = src.iter().cycle().take(n).copied().collect();
        weights.insert(name, Tensor::new(shape, values)?);
    }
    let vocab_text = std::fs::read_to_string(fixture.join("vocab.txt"))?;
    let vocab: Vec<String> = vocab_text.lines().take(104).map(str::to_owned).collect();
    let labels = vec!["0".to_string(), "1".to_string()];
    let tmp = bert_fuzz::scratch_dir();
    // An f32 file with packed kernels (format version 5).
    let path = tmp.join("seed.bert");
    let packed = quantize::pack_f32(weights.clone(), &config)?;
    native::save(&path, &config, &packed, &vocab, true)?;
    put(
        &out,
        "native",
        "tiny-f32-packed.bert",
        &std::fs::read(&path)?,
    )?;
    for dtype in [DType::F32, DType::F16, DType::Int8] {
        let w = quantize::convert(weights.clone(), &config, dtype)?;
        let path = tmp.join("seed.bert");
        native::save_with_labels(&path, &config, &w, &vocab, true, &labels)?;
        put(
            &out,
            "native",
            &format!("tiny-{dtype}.bert"),
            &std::fs::read(&path)?,
        )?;
        native::save(&path, &config, &w, &vocab, true)?;
        put(
            &out,
            "native",
            &format!("tiny-{dtype}-nolabels.bert"),
            &std::fs::read(&path)?,
        )?;
    }
    let tokenizer = Tokenizer::new(Vocab::from_tokens(vocab.iter().map(String::as_str))?, true)?;
    let hp = FineTuneParams {
        train_batch_size: 2,
        max_seq_length: 8,
        num_train_epochs: 1.0,
        threads: 1,
        ..FineTuneParams::default()
    };
    let mut ft = FineTuner::new(config.clone(), weights, tokenizer, labels, hp)?;
    ft.add_example("the a", None, "0")?;
    ft.add_example("a the", Some("the"), "1")?;
    ft.train(None, |_| std::ops::ControlFlow::Continue(()))?;
    let path = tmp.join(checkpoint::FILE_NAME);
    ft.save_checkpoint(&path)?;
    put(&out, "training_state", "tiny", &std::fs::read(&path)?)?;
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("make_seeds: wrote {}", out.display());
    Ok(())
}

/// Google's variable names and shapes of a BERT encoder with a pooler (`modeling.py`).
fn google_shapes(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut v = vec![
        (
            "bert/embeddings/word_embeddings".to_string(),
            vec![c.vocab_size, h],
        ),
        (
            "bert/embeddings/position_embeddings".into(),
            vec![c.max_position_embeddings, h],
        ),
        (
            "bert/embeddings/token_type_embeddings".into(),
            vec![c.type_vocab_size, h],
        ),
        ("bert/embeddings/LayerNorm/gamma".into(), vec![h]),
        ("bert/embeddings/LayerNorm/beta".into(), vec![h]),
        ("bert/pooler/dense/kernel".into(), vec![h, h]),
        ("bert/pooler/dense/bias".into(), vec![h]),
    ];
    for l in 0..c.num_hidden_layers {
        let s = format!("bert/encoder/layer_{l}");
        for part in ["query", "key", "value"] {
            v.push((format!("{s}/attention/self/{part}/kernel"), vec![h, h]));
            v.push((format!("{s}/attention/self/{part}/bias"), vec![h]));
        }
        for (dense, rows, cols) in [
            ("attention/output/dense", h, h),
            ("intermediate/dense", h, i),
            ("output/dense", i, h),
        ] {
            v.push((format!("{s}/{dense}/kernel"), vec![rows, cols]));
            v.push((format!("{s}/{dense}/bias"), vec![cols]));
        }
        for norm in ["attention/output/LayerNorm", "output/LayerNorm"] {
            v.push((format!("{s}/{norm}/gamma"), vec![h]));
            v.push((format!("{s}/{norm}/beta"), vec![h]));
        }
    }
    v
}
