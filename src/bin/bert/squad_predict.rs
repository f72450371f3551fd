//! `bert squad --do_predict`: the fine-tuned model built on the back end `--backend` names
//! (the CPU unless said otherwise), Google's three prediction files, then the official
//! evaluation. Kept apart from the training half (squad.rs) so that where prediction runs
//! does not depend on where training ran.

use std::path::Path;
use std::time::Instant;

use bert::backend::Backend;
use bert::config::BertConfig;
use bert::squad::{self, Dataset, FeatureOptions, PredictOptions, SquadModel};
use bert::tokenizer::Tokenizer;
use bert::{Context, Weights};

use crate::classify::format_duration;
use crate::extract_features::write_atomically;
use crate::model_flags::OnDevice;

/// The model's parts and what to predict.
pub(crate) struct Predict<'a> {
    pub config: BertConfig,
    /// Including the span head (`cls/squad/*`).
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    pub run: Run<'a>,
}

/// What to predict, and where the files go.
pub(crate) struct Run<'a> {
    pub examples: &'a [squad::SquadExample],
    pub data: &'a Dataset,
    pub fo: &'a FeatureOptions,
    pub po: &'a PredictOptions,
    pub batch_size: usize,
    pub threads: usize,
    pub output_dir: &'a Path,
}

impl OnDevice for Predict<'_> {
    fn run<B: Backend>(self, backend: B) -> Result<(), String> {
        let model =
            SquadModel::from_weights_on(backend, self.config, &self.weights, self.tokenizer)
                .map_err(|e| format!("{e} (predicting needs a model fine-tuned on SQuAD)"))?;
        drop(self.weights);
        let on = model.model().backend().describe();
        crate::note!("bert squad: predicting on {on}");
        let po = PredictOptions {
            do_lower_case: model.tokenizer().do_lower_case(),
            ..*self.run.po
        };
        let mut ctx = Context::on(model.model().backend(), self.run.threads);
        predict_and_evaluate(&model, &mut ctx, &self.run, &po)
    }
}

/// Predicts, writes Google's prediction files, and evaluates them with the official script's
/// metric.
fn predict_and_evaluate<B: Backend>(
    model: &SquadModel<B>,
    ctx: &mut Context<B>,
    p: &Run<'_>,
    po: &PredictOptions,
) -> Result<(), String> {
    let err = |e: bert::Error| e.to_string();
    let (examples, output_dir) = (p.examples, p.output_dir);
    let started = Instant::now();
    let features = squad::convert_examples_to_features(examples, model.tokenizer(), p.fo, false)
        .map_err(err)?;
    let results = model
        .raw_results(ctx, &features, p.batch_size, |_, _| {})
        .map_err(err)?;
    let preds = squad::compute_predictions(examples, &features, &results, po).map_err(err)?;
    preds
        .write_files(
            &output_dir.join("predictions.json"),
            &output_dir.join("nbest_predictions.json"),
            &output_dir.join("null_odds.json"),
        )
        .map_err(err)?;
    let secs = started.elapsed().as_secs_f64();
    crate::note!(
        "bert squad: predicted {} questions ({} features) in {} ({:.1} examples/s); wrote \
         predictions.json, nbest_predictions.json{} in {}",
        examples.len(),
        features.len(),
        format_duration(secs),
        examples.len() as f64 / secs.max(1e-9),
        if po.version_2_with_negative {
            ", null_odds.json"
        } else {
            ""
        },
        output_dir.display()
    );
    let answers = preds.answers();
    let json = if po.version_2_with_negative {
        let odds = preds.null_odds();
        // Google's README: evaluate-v2.0.py with --na-prob-file null_odds.json.
        squad::evaluate_v2(p.data, &answers, odds.as_ref(), 1.0)
            .map_err(err)?
            .to_json(Some(2))
    } else {
        squad::evaluate_v1(p.data, &answers).map_err(err)?.to_json()
    };
    crate::print_stdout(&format!("{json}\n"))?;
    write_atomically(
        &output_dir.join("eval_results.json"),
        format!("{json}\n").as_bytes(),
    )
}
