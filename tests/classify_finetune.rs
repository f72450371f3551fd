//! The library's fine-tuning driver ([`FineTuner`]) on Google's tiny BERT fixture and real
//! SST-2 rows: stopping and resuming (from a checkpoint file, or after a cancelled progress
//! callback) gives bit for bit the parameters of an uninterrupted run; a checkpoint of other
//! settings or a corrupt one is refused; bad input gives its own error.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use bert::classifier::{
    checkpoint, FineTuneParams, FineTuner, InputExample, ModelStart, Outcome, Processor, Split,
};
use bert::Error;

/// The first 40 rows of SST-2's training file.
fn examples() -> Vec<InputExample> {
    let p = Processor::glue("sst-2").unwrap();
    let mut ex = p
        .examples(&common::shared_dir().join("data/glue/SST-2"), Split::Train)
        .unwrap();
    ex.truncate(40);
    ex
}

/// Batch 4 in 2 micro-batches, 2 epochs of 40 examples: 20 updates, 2 of them warm-up.
fn hp() -> FineTuneParams {
    FineTuneParams {
        learning_rate: 1e-3,
        num_train_epochs: 2.0,
        train_batch_size: 4,
        warmup_proportion: 0.1,
        gradient_accumulation_steps: 2,
        seed: 7,
        max_seq_length: 32,
        threads: 2,
        gradient_checkpointing: false,
        max_grad_norm: 1.0,
    }
}

fn tuner(hp: FineTuneParams) -> FineTuner {
    let start = ModelStart::load(&common::tiny_dir(), None, Some(true)).unwrap();
    let mut ft = FineTuner::from_start(start, vec!["0".into(), "1".into()], hp).unwrap();
    ft.add_examples(&examples()).unwrap();
    ft
}

fn params_of(ft: &FineTuner) -> Vec<(String, Vec<f32>)> {
    ft.weights()
        .unwrap()
        .iter()
        .map(|(n, t)| (n.to_string(), t.data.clone()))
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("libbert-finetune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn go_on(_: &bert::classifier::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Bitwise equality, naming the first variable that differs.
fn assert_same(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)], what: &str) {
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        let same = va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same,
            "{what}: {na} differs (max abs diff {})",
            common::max_abs_diff(va, vb)
        );
    }
}

#[test]
fn stop_resume_equals_straight_run() {
    let mut straight = tuner(hp());
    assert_eq!(
        (straight.num_train_steps(), straight.num_warmup_steps()),
        (20, 2)
    );
    let mut losses = Vec::new();
    let outcome = straight
        .train(None, |p| {
            losses.push(p.loss);
            assert!(p.examples_per_second > 0.0 && p.total_steps == 20);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(straight.global_step(), 20);
    assert_eq!(losses.len(), 20);
    let want = params_of(&straight);
    // The run did train: the head moved away from its initialisation.
    let fresh = params_of(&tuner(hp()));
    assert_ne!(fresh.last().unwrap().1, want.last().unwrap().1);

    // 7 updates (mid-epoch, mid-way through the example order), checkpoint, new process
    // state, resume, 13 more (across the epoch boundary: a fresh shuffle).
    let dir = tmp("resume");
    let state = dir.join(checkpoint::FILE_NAME);
    let mut first = tuner(hp());
    assert_eq!(first.train(Some(7), go_on).unwrap(), Outcome::Paused);
    assert_eq!(first.global_step(), 7);
    first.save_checkpoint(&state).unwrap();
    drop(first);
    let mut second = tuner(hp());
    second.resume(&state).unwrap();
    assert_eq!(second.global_step(), 7);
    assert_eq!(second.train(None, go_on).unwrap(), Outcome::Finished);
    assert_same(&params_of(&second), &want, "resumed at step 7");

    // A progress callback that cancels after step 3, then training goes on.
    let mut cancelled = tuner(hp());
    let outcome = cancelled
        .train(None, |p| {
            if p.step == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(cancelled.global_step(), 3);
    assert!(cancelled.add_examples(&examples()).is_err());
    assert_eq!(cancelled.train(None, go_on).unwrap(), Outcome::Finished);
    assert_same(&params_of(&cancelled), &want, "cancelled at step 3");

    // Gradient checkpointing changes memory, not numbers; resuming may switch it on.
    let mut ckpt = tuner(FineTuneParams {
        gradient_checkpointing: true,
        ..hp()
    });
    assert_eq!(ckpt.train(Some(7), go_on).unwrap(), Outcome::Paused);
    ckpt.save_checkpoint(&state).unwrap();
    let mut ckpt = tuner(hp());
    ckpt.resume(&state).unwrap();
    assert_eq!(ckpt.train(None, go_on).unwrap(), Outcome::Finished);
    assert_same(
        &params_of(&ckpt),
        &want,
        "gradient checkpointing, resumed without it",
    );

    // A finished run resumes to no further update.
    let mut done = tuner(hp());
    straight.save_checkpoint(&state).unwrap();
    done.resume(&state).unwrap();
    let mut calls = 0;
    assert_eq!(
        done.train(None, |_| {
            calls += 1;
            ControlFlow::Continue(())
        })
        .unwrap(),
        Outcome::Finished
    );
    assert_eq!(calls, 0);
    assert_same(&params_of(&done), &want, "finished run resumed");

    // Evaluation on the training rows of a trained classifier runs and is scored.
    let features = done.convert(&examples()).unwrap();
    let r = done.evaluate(&features, 8).unwrap();
    assert_eq!((r.num_examples, r.predictions.len()), (40, 40));
    assert!(r.f1.is_some() && r.mcc.is_some() && r.loss.is_finite());
    let text = r.to_eval_results_txt("mrpc", done.global_step());
    assert!(text.contains("global_step = 20\n") && text.contains("eval_f1 = "));

    // The saved classifier reloads with its labels.
    done.save(&dir.join("model.bert")).unwrap();
    let c = bert::classifier::Classifier::load(dir.join("model.bert")).unwrap();
    assert_eq!(c.labels(), ["0", "1"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_refuses_other_settings_and_corrupt_files() {
    let dir = tmp("refuse");
    let state = dir.join(checkpoint::FILE_NAME);
    let mut ft = tuner(hp());
    ft.train(Some(2), go_on).unwrap();
    ft.save_checkpoint(&state).unwrap();

    let mut other = tuner(FineTuneParams { seed: 8, ..hp() });
    let e = other.resume(&state).unwrap_err().to_string();
    assert!(e.contains("seed 7 (now 8)"), "{e}");
    let mut other = tuner(hp());
    other.add_example("one more", None, "1").unwrap();
    let e = other.resume(&state).unwrap_err().to_string();
    assert!(e.contains("num_examples 40 (now 41)"), "{e}");

    // One flipped bit in the data: the checksum catches it.
    let mut bytes = std::fs::read(&state).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    let bad = dir.join("flipped.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let e = tuner(hp()).resume(&bad).unwrap_err();
    assert!(
        matches!(e, Error::Format { .. }) && e.to_string().contains("checksum"),
        "{e}"
    );
    // Truncated, and not a state at all.
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        tuner(hp()).resume(&bad),
        Err(Error::Format { .. })
    ));
    let model = common::tiny_dir().join("vocab.txt");
    assert!(matches!(
        tuner(hp()).resume(&model),
        Err(Error::Format { .. })
    ));
    assert!(matches!(
        tuner(hp()).resume(Path::new("/nonexistent/state")),
        Err(Error::Io { .. })
    ));
    // Only finished files: no temporary file was left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gives_its_own_error() {
    let start = || ModelStart::load(&common::tiny_dir(), None, Some(true)).unwrap();
    let labels = || vec!["neg".to_string(), "pos".to_string()];
    let mut ft = FineTuner::from_start(start(), labels(), hp()).unwrap();
    assert_eq!(ft.train(None, go_on).unwrap_err().code(), 16); // EmptyData
    assert!(matches!(
        ft.add_example_id("text", None, 2),
        Err(Error::Label(_))
    ));
    assert!(matches!(
        ft.add_example("text", None, "neutral"),
        Err(Error::Label(_))
    ));
    assert_eq!(ft.num_examples(), 0);
    assert!(matches!(
        FineTuner::from_start(start(), Vec::new(), hp()),
        Err(Error::Label(_))
    ));
    for bad in [
        FineTuneParams {
            train_batch_size: 6,
            gradient_accumulation_steps: 4,
            ..hp()
        },
        FineTuneParams {
            max_seq_length: 1,
            ..hp()
        },
        FineTuneParams {
            learning_rate: f32::NAN,
            ..hp()
        },
    ] {
        assert!(matches!(
            FineTuner::from_start(start(), labels(), bad),
            Err(Error::InvalidArgument(_))
        ));
    }

    // A learning rate far too high: the loss stops being finite, the run says so and stays
    // unusable.
    let mut ft = FineTuner::from_start(
        start(),
        labels(),
        FineTuneParams {
            learning_rate: 1e30,
            warmup_proportion: 0.0,
            ..hp()
        },
    )
    .unwrap();
    for (i, e) in examples().iter().enumerate() {
        ft.add_example_id(&e.text_a, None, (i % 2) as u32).unwrap();
    }
    let e = ft.train(None, go_on).unwrap_err();
    assert!(matches!(e, Error::Diverged(_)), "{e}");
    assert_eq!(e.code(), 14);
    assert!(matches!(ft.train(None, go_on), Err(Error::Diverged(_))));
    assert!(ft.weights().is_err());
}

/// `bert classify --do_train` resumes from the training state in `--output_dir`, as
/// tf.estimator resumes from the last checkpoint in its `model_dir`: a finished run makes no
/// further update and writes the same classifier; other settings are refused before anything
/// is written.
#[test]
fn cli_resumes_from_output_dir() {
    let data = tmp("cli-data");
    let src = common::shared_dir().join("data/glue/SST-2/train.tsv");
    let rows: Vec<String> = std::fs::read_to_string(src)
        .unwrap()
        .lines()
        .take(33)
        .map(str::to_owned)
        .collect();
    std::fs::write(data.join("train.tsv"), rows.join("\n") + "\n").unwrap();
    let out = tmp("cli-out");
    let tiny = common::tiny_dir();
    let [config, checkpoint] = common::tiny_checkpoint_flags();
    let run = |seed: &str| {
        let o = common::bert_cli([
            "classify",
            "--task_name=sst-2",
            "--do_train",
            &format!("--data_dir={}", data.display()),
            &format!("--output_dir={}", out.display()),
            &config,
            &checkpoint,
            &format!("--vocab_file={}", tiny.join("vocab.txt").display()),
            "--max_seq_length=32",
            "--train_batch_size=8",
            "--num_train_epochs=1",
            "--save_checkpoints_steps=3",
            "--threads=2",
            &format!("--seed={seed}"),
        ]);
        (o.ok, o.stderr)
    };
    let (ok, log) = run("1");
    assert!(ok, "{log}");
    // 32 examples / 8 = 4 steps; a checkpoint at step 3, the last at step 4.
    assert!(log.contains("step 3: wrote"), "{log}");
    assert!(!log.contains("resuming"), "{log}");
    let model = std::fs::read(out.join("model.bert")).unwrap();
    let state = std::fs::read(out.join(checkpoint::FILE_NAME)).unwrap();

    let (ok, log) = run("1");
    assert!(ok, "{log}");
    assert!(
        log.contains("at step 4") && log.contains("trained 0 steps"),
        "{log}"
    );
    assert_eq!(std::fs::read(out.join("model.bert")).unwrap(), model);

    let (ok, log) = run("2");
    assert!(
        !ok && log.contains("cannot resume") && log.contains("seed 1 (now 2)"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(out.join(checkpoint::FILE_NAME)).unwrap(),
        state
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["model.bert", checkpoint::FILE_NAME]);
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}
