//! `bert convert --model PATH --output FILE.bert [--dtype f32|f16|int8] [--pack=true]`:
//! writes libbert's memory-mapped format (config, vocabulary, tokenizer flag and weights in
//! one file), atomically. `--output FILE.safetensors` writes the f32 weights under Hugging
//! Face's names instead (`bert.*`, `qa_outputs.*`, `classifier.*`) and `config.json` beside
//! it, for Python tools and ONNX exporters: a model fine-tuned here runs in `transformers` or
//! ONNX Runtime. `--dtype` stores the encoder's kernels and word embeddings as f16 or
//! int8 (`bert::weights::quantize`); a fine-tuned classifier keeps its labels and f32 head.
//! An f32 file has its encoder kernels packed for this CPU's f32 micro-kernel (`--pack=false`
//! for Google's layout): it then runs straight from the memory map, with no repacking at
//! load (`quantize::pack_f32`); other CPUs repack it at load as they would a plain file.

use bert::weights::{self, native, quantize, DType};

use crate::flags::Flags;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["do_lower_case", "pack"])?;
    let model = flags.required("model")?.to_string();
    let output = flags.required("output")?.to_string();
    let lower = match flags.get("do_lower_case") {
        Some(_) => Some(flags.bool("do_lower_case", true)?),
        None => None,
    };
    let dtype = crate::model_flags::dtype(&flags)?.unwrap_or(DType::F32);
    // For measuring the choice recorded in BENCHMARKS.md; the default follows `--dtype`.
    let embeddings = match flags.get("embeddings_dtype") {
        Some(d) => d
            .parse::<DType>()
            .map_err(|e| format!("--embeddings_dtype: {e}"))?,
        None => quantize::embeddings_dtype(dtype),
    };
    let pack = flags.bool("pack", true)? && dtype == DType::F32;
    flags.finish()?;
    let err = |e: bert::Error| e.to_string();
    let path = std::path::Path::new(&model);
    // The pipeline finds the vocabulary and the casing; the weights are read once more in
    // Google's layout, which is what the file stores.
    let (_, tokenizer) = bert::Pipeline::load(path, lower).map_err(err)?.into_parts();
    let (config, w) = weights::load_model_files(path).map_err(err)?;
    let labels = if native::is_native_file(path) {
        native::NativeModel::open(path)
            .map_err(err)?
            .labels()
            .to_vec()
    } else {
        Vec::new()
    };
    // As Google's scripts make their --output_dir: a new folder is not an error.
    let parent = std::path::Path::new(&output).parent();
    if let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--output {output}: cannot create {}: {e}", dir.display()))?;
    }
    if output.ends_with(".safetensors") {
        if dtype != DType::F32 {
            return Err("--output *.safetensors holds f32 weights only (--dtype f32)".into());
        }
        let out = std::path::Path::new(&output);
        weights::safetensors::save(out, &w).map_err(err)?;
        // Hugging Face reads the shape from config.json beside the weights.
        let config_path = out.with_file_name("config.json");
        let text = config.to_hugging_face_json() + "\n";
        crate::extract_features::write_atomically(&config_path, text.as_bytes())?;
        crate::note!(
            "bert: wrote {output} (f32, Hugging Face names) and {}",
            config_path.display()
        );
        return Ok(());
    }
    let w = quantize::convert_with(w, &config, dtype, embeddings).map_err(err)?;
    let w = if pack {
        quantize::pack_f32(w, &config).map_err(err)?
    } else {
        w
    };
    let vocab = tokenizer.vocab();
    let tokens: Vec<String> = (0..vocab.len() as u32)
        .map(|id| vocab.token(id).unwrap_or_default().to_string())
        .collect();
    native::save_with_labels(
        &output,
        &config,
        &w,
        &tokens,
        tokenizer.do_lower_case(),
        &labels,
    )
    .map_err(err)?;
    crate::note!("bert: wrote {output} ({dtype})");
    Ok(())
}
