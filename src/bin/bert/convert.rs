//! `bert convert --model PATH --output FILE.bert`: writes libbert's memory-mapped format
//! (config, vocabulary, tokenizer flag and weights in one file), atomically.

use bert::weights::{self, native};

use crate::flags::Flags;

pub fn run(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, &["do_lower_case"])?;
    let model = flags.required("model")?.to_string();
    let output = flags.required("output")?.to_string();
    let lower = match flags.get("do_lower_case") {
        Some(_) => Some(flags.bool("do_lower_case", true)?),
        None => None,
    };
    flags.finish()?;
    let err = |e: bert::Error| e.to_string();
    // The pipeline finds the vocabulary and the casing; the weights are read once more in
    // Google's layout, which is what the file stores.
    let pipeline = bert::Pipeline::load(&model, lower).map_err(err)?;
    let (config, w) = weights::load_model_files(std::path::Path::new(&model)).map_err(err)?;
    let vocab = pipeline.tokenizer().vocab();
    let tokens: Vec<String> = (0..vocab.len() as u32)
        .map(|id| vocab.token(id).unwrap_or_default().to_string())
        .collect();
    native::save(
        &output,
        &config,
        &w,
        &tokens,
        pipeline.tokenizer().do_lower_case(),
    )
    .map_err(err)?;
    eprintln!("bert: wrote {output}");
    Ok(())
}
