//! The fine-tuning reference the Android (JNI) binding test compares with, bit for bit: two
//! updates of a two-label classifier on four examples, through the Rust API.
//!
//! `cargo run --release --example finetune_reference -- MODEL_DIR SST2_DIR OUT_FILE`
//!
//! Writes, one `name value` per line (shortest text that reads back to the same float): the
//! loss, learning rate and gradient norm of each update, the evaluation loss and accuracy on
//! `SST2_DIR/dev.tsv`, and the class probabilities of two inputs after saving and reloading
//! the classifier. `bindings/kotlin/android/test/JniTest.kt`
//! runs the same steps (learning rate 5e-5, batch 2, 1 epoch, max_seq_length 32, 2 threads,
//! seed 12345) and must print the same values.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use bert::classifier::{
    Classifier, FineTuneParams, FineTuner, ModelStart, Outcome, Processor, Split,
};
use bert::Context;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, sst2, out] = args.as_slice() else {
        return Err("usage: finetune_reference MODEL_DIR SST2_DIR OUT_FILE".into());
    };
    let hp = FineTuneParams {
        train_batch_size: 2,
        num_train_epochs: 1.0,
        max_seq_length: 32,
        threads: 2,
        ..FineTuneParams::default()
    };
    let start = ModelStart::load(Path::new(model), None, None)?;
    let mut tuner = FineTuner::from_start(start, vec!["0".into(), "1".into()], hp)?;
    for (text, label) in [
        ("a gorgeous , witty , seductive movie .", "1"),
        ("dull and lifeless", "0"),
        ("an absolute joy from start to finish", "1"),
        ("the plot is nothing but boilerplate", "0"),
    ] {
        tuner.add_example(text, None, label)?;
    }
    let dev = Processor::glue("sst-2")?.read(&Path::new(sst2).join("dev.tsv"), Split::Dev)?;
    let eval = tuner.convert(&dev)?;
    let mut text = String::new();
    // Stopped by the callback after the first update, then run to the end, as the test does.
    for stop_at_one in [true, false] {
        let outcome = tuner.train(None, |p| {
            let _ = writeln!(text, "step{}.loss {:e}", p.step, p.loss);
            let _ = writeln!(text, "step{}.learning_rate {:e}", p.step, p.learning_rate);
            let _ = writeln!(text, "step{}.grad_norm {:e}", p.step, p.grad_norm);
            if stop_at_one && p.step == 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let want = if stop_at_one {
            Outcome::Cancelled
        } else {
            Outcome::Finished
        };
        if outcome != want {
            return Err(format!("training ended {outcome:?}, expected {want:?}").into());
        }
    }
    let r = tuner.evaluate(&eval, 32)?;
    writeln!(text, "eval.loss {:e}", r.loss)?;
    writeln!(text, "eval.accuracy {:e}", r.accuracy)?;
    let saved =
        std::env::temp_dir().join(format!("finetune-reference-{}.bert", std::process::id()));
    tuner.save(&saved)?;
    let classifier = Classifier::load(&saved);
    let _ = std::fs::remove_file(&saved);
    let mut ctx = Context::new(2);
    let p = classifier?.classify(
        &mut ctx,
        &[("a fine film", Some("")), ("A man plays.", Some("Music."))],
        32,
        32,
    )?;
    for (i, v) in p.iter().enumerate() {
        writeln!(text, "p{}.{} {v:e}", i / 2, i % 2)?;
    }
    print!("{text}");
    std::fs::write(out, text)?;
    Ok(())
}
