//! Java Native Interface entry points for the Android Kotlin binding (feature `jni`): the
//! `external` functions of `libbert.jni.Native` (`bindings/kotlin/android`), over the Rust
//! API directly, not over the C ABI. `System.loadLibrary("bert")` finds them in libbert.so.
//!
//! - Handles are `Box` pointers handed to Kotlin as `long`; 0 is "closed". The Kotlin classes
//!   own them (`AutoCloseable`) and keep the thread rules of the C ABI: a model and a
//!   classifier are shared between threads, a context or a trainer is used by one thread at
//!   a time.
//! - Every entry point runs under `catch_unwind`: a `bert::Error` throws
//!   `libbert.jni.BertException(status, message)` with the C ABI's status numbers
//!   (`bert::Error::code`), a panic the same with `BERT_ERROR_INTERNAL`. No panic reaches
//!   the JVM.
//! - Text crosses as Java strings, converted from Java's modified UTF-8 (an unpaired
//!   surrogate becomes U+FFFD); token offsets are byte offsets into the text's UTF-8.
//! - `trainerTrain` calls the listener's `onStep` after each update on the calling thread;
//!   `false` stops training (the update kept), and an exception thrown there stops it and
//!   propagates to the caller of `train`.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use bert::classifier::{
    Classifier, FineTuneParams, FineTuner, InputExample, InputFeatures, ModelStart, Outcome,
    Processor, Split,
};
use bert::{Context, EmbedOptions, Pipeline, Pooling, QuestionAnswerer};
use jni::objects::{
    JClass, JDoubleArray, JFloatArray, JIntArray, JLongArray, JObject, JObjectArray, JString,
    JThrowable, JValue,
};
use jni::sys::{jboolean, jdoubleArray, jfloatArray, jint, jlong, jlongArray, jobjectArray};
use jni::JNIEnv;

/// `BERT_ERROR_INVALID_ARGUMENT` and `BERT_ERROR_INTERNAL` of the C ABI.
const INVALID_ARGUMENT: i32 = 7;
const INTERNAL: i32 = 12;

/// Why an entry point failed.
enum Failure {
    Bert(bert::Error),
    /// A JNI call failed; a Java exception may be pending (then it is what the caller sees).
    Jni(jni::errors::Error),
    Invalid(String),
}

impl From<bert::Error> for Failure {
    fn from(e: bert::Error) -> Self {
        Failure::Bert(e)
    }
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Self {
        Failure::Jni(e)
    }
}

type JniResult<T> = Result<T, Failure>;

/// What an entry point returns when it throws (the JVM ignores it).
trait Thrown {
    fn thrown() -> Self;
}
impl Thrown for () {
    fn thrown() {}
}
impl Thrown for jlong {
    fn thrown() -> Self {
        0
    }
}
impl Thrown for jint {
    fn thrown() -> Self {
        0
    }
}
impl Thrown for jboolean {
    fn thrown() -> Self {
        0
    }
}
impl Thrown for jni::sys::jobject {
    fn thrown() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs `body`, turning an error or a panic into a pending `BertException`.
fn run<'l, T: Thrown>(
    env: &mut JNIEnv<'l>,
    body: impl FnOnce(&mut JNIEnv<'l>) -> JniResult<T>,
) -> T {
    let (status, message) = match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(v)) => return v,
        Ok(Err(Failure::Bert(e))) => (e.code(), e.to_string()),
        Ok(Err(Failure::Invalid(m))) => (INVALID_ARGUMENT, m),
        Ok(Err(Failure::Jni(e))) => (INTERNAL, format!("JNI: {e}")),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            (
                INTERNAL,
                format!("internal error (a bug in libbert): {what}"),
            )
        }
    };
    throw(env, status, &message);
    T::thrown()
}

/// Throws `BertException(status, message)` unless an exception is already pending.
fn throw(env: &mut JNIEnv<'_>, status: i32, message: &str) {
    if env.exception_check().unwrap_or(true) {
        return;
    }
    let Ok(text) = env.new_string(message) else {
        return;
    };
    let made = env.new_object(
        "libbert/jni/BertException",
        "(ILjava/lang/String;)V",
        &[JValue::Int(status), JValue::Object(&text)],
    );
    let _ = match made {
        Ok(e) => env.throw(JThrowable::from(e)),
        Err(_) => env.throw_new("java/lang/RuntimeException", message),
    };
}

/// What Kotlin holds a handle to, and how an error names it.
trait Handle {
    const WHAT: &'static str;
}
impl Handle for Pipeline {
    const WHAT: &'static str = "model";
}
impl Handle for Context {
    const WHAT: &'static str = "context";
}
impl Handle for Trainer {
    const WHAT: &'static str = "trainer";
}
impl Handle for Classifier {
    const WHAT: &'static str = "classifier";
}
impl Handle for QuestionAnswerer {
    const WHAT: &'static str = "question answerer";
}

/// The object behind a handle. The Kotlin classes pass only handles they own and have not
/// closed (0 once closed), and never a context or trainer from two threads at once.
fn handle<'a, T: Handle>(h: jlong) -> JniResult<&'a mut T> {
    // SAFETY: a non-zero handle is a live `Box<T>` made by this module's `*New`/`*Load`
    // function for this `T` (the Kotlin classes keep each in its own typed field and zero it
    // when they free it); exclusive use follows the thread rules above.
    unsafe { (h as *mut T).as_mut() }
        .ok_or_else(|| Failure::Invalid(format!("{} is closed", T::WHAT)))
}

/// [`run`] on the object behind the handle `h`.
fn with<'l, T: Handle, R: Thrown>(
    env: &mut JNIEnv<'l>,
    h: jlong,
    body: impl FnOnce(&mut JNIEnv<'l>, &mut T) -> JniResult<R>,
) -> R {
    run(env, |env| body(env, handle::<T>(h)?))
}

/// [`run`] making a handle: `load` opens the file or folder at `path` (a Java string).
fn load<T: Handle>(
    env: &mut JNIEnv<'_>,
    path: &JString<'_>,
    load: impl FnOnce(&Path) -> JniResult<T>,
) -> jlong {
    run(env, |env| {
        let path = string(env, path, "path")?;
        Ok(into_handle(load(Path::new(&path))?))
    })
}

fn into_handle<T: Handle>(v: T) -> jlong {
    Box::into_raw(Box::new(v)) as jlong
}

/// Frees a handle made by [`into_handle`]; 0 is a no-op.
fn free<T: Handle>(h: jlong) {
    if h != 0 {
        // SAFETY: as in `handle`; Kotlin zeroes its field first, so this runs once.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(h as *mut T) }));
    }
}

/// The entry point `$name(handle)` that frees a `$t` handle.
macro_rules! free_entry_point {
    ($name:ident, $t:ty) => {
        #[no_mangle]
        pub extern "system" fn $name(_env: JNIEnv<'_>, _c: JClass<'_>, h: jlong) {
            free::<$t>(h)
        }
    };
}

fn string(env: &mut JNIEnv<'_>, s: &JString<'_>, what: &str) -> JniResult<String> {
    if s.is_null() {
        return Err(Failure::Invalid(format!("{what} is null")));
    }
    Ok(env.get_string(s)?.into())
}

fn optional_string(env: &mut JNIEnv<'_>, s: &JString<'_>) -> JniResult<Option<String>> {
    if s.is_null() {
        Ok(None)
    } else {
        Ok(Some(env.get_string(s)?.into()))
    }
}

/// The elements of a `String[]` (a null element is an error naming it).
fn strings(env: &mut JNIEnv<'_>, a: &JObjectArray<'_>, what: &str) -> JniResult<Vec<String>> {
    if a.is_null() {
        return Err(Failure::Invalid(format!("{what} is null")));
    }
    let n = env.get_array_length(a)?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let s = JString::from(env.get_object_array_element(a, i)?);
        out.push(string(env, &s, &format!("{what}[{i}]"))?);
        env.delete_local_ref(s)?;
    }
    Ok(out)
}

fn float_array(env: &mut JNIEnv<'_>, v: &[f32]) -> JniResult<jfloatArray> {
    let len = i32::try_from(v.len()).map_err(|_| Failure::Invalid("result too large".into()))?;
    let a: JFloatArray = env.new_float_array(len)?;
    env.set_float_array_region(&a, 0, v)?;
    Ok(a.into_raw())
}

fn double_array(env: &mut JNIEnv<'_>, v: &[f64]) -> JniResult<jdoubleArray> {
    let a: JDoubleArray = env.new_double_array(v.len() as i32)?;
    env.set_double_array_region(&a, 0, v)?;
    Ok(a.into_raw())
}

fn long_array(env: &mut JNIEnv<'_>, v: &[i64]) -> JniResult<jlongArray> {
    let a: JLongArray = env.new_long_array(v.len() as i32)?;
    env.set_long_array_region(&a, 0, v)?;
    Ok(a.into_raw())
}

fn count(v: jint, what: &str) -> JniResult<usize> {
    usize::try_from(v).map_err(|_| Failure::Invalid(format!("{what} {v} is negative")))
}

/// The set a `split` argument names: 0 the training set, 1 the evaluation set (a GLUE
/// task's dev file).
fn split_of(v: jint) -> JniResult<Split> {
    match v {
        0 => Ok(Split::Train),
        1 => Ok(Split::Dev),
        v => Err(Failure::Invalid(format!(
            "split {v} is not 0 (train) or 1 (eval)"
        ))),
    }
}

/// `bert_version_number()`.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_version(_env: JNIEnv<'_>, _c: JClass<'_>) -> jint {
    bert::VERSION_NUMBER as jint
}

/// A model directory or file (as `bert_model_load_file`) with its tokenizer.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_modelLoad(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    path: JString<'_>,
) -> jlong {
    load(&mut env, &path, |path| Ok(Pipeline::load(path, None)?))
}

free_entry_point!(Java_libbert_jni_Native_modelFree, Pipeline);

#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_modelHiddenSize(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
) -> jint {
    with(&mut env, h, |_, p: &mut Pipeline| {
        Ok(p.model().config().hidden_size as jint)
    })
}

/// WordPiece tokens of `text` as `[id, start, end]` triples (byte offsets into its UTF-8).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_modelTokenize(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
    text: JString<'_>,
) -> jlongArray {
    with(&mut env, h, |env, p: &mut Pipeline| {
        let text = string(env, &text, "text")?;
        let triples: Vec<i64> = p
            .tokenizer()
            .tokenize(&text)
            .iter()
            .flat_map(|t| [i64::from(t.id), t.start as i64, t.end as i64])
            .collect();
        long_array(env, &triples)
    })
}

/// Per-thread scratch with `threads` threads (0: all cores).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_contextNew(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    threads: jint,
) -> jlong {
    run(&mut env, |_| {
        Ok(into_handle(Context::new(count(threads, "threads")?)))
    })
}

free_entry_point!(Java_libbert_jni_Native_contextFree, Context);

/// One embedding per text, `[texts.length * hidden]` (pooling: 0 CLS, 1 mean, 2 max, 3
/// pooler, as `bert_pooling`).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_embed(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    model: jlong,
    context: jlong,
    texts: JObjectArray<'_>,
    pooling: jint,
    normalize: jboolean,
) -> jfloatArray {
    run(&mut env, |env| {
        let p = handle::<Pipeline>(model)?;
        let ctx = handle::<Context>(context)?;
        let texts = strings(env, &texts, "texts")?;
        let pooling = match pooling {
            0 => Pooling::Cls,
            1 => Pooling::Mean,
            2 => Pooling::Max,
            3 => Pooling::Pooler,
            v => {
                return Err(Failure::Invalid(format!(
                    "pooling {v} is not a bert_pooling"
                )))
            }
        };
        let opts = EmbedOptions {
            pooling,
            normalize: normalize != 0,
            ..EmbedOptions::default()
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let v = p.embed(ctx, &refs, &opts)?;
        float_array(env, &v)
    })
}

/// A fine-tuning run and its evaluation examples.
struct Trainer {
    tuner: FineTuner,
    eval: Vec<InputFeatures>,
}

impl Trainer {
    /// Adds `examples` to the run's training set ([`Split::Train`]) or the evaluation set.
    fn add(&mut self, split: Split, examples: &[InputExample]) -> JniResult<()> {
        if split == Split::Train {
            self.tuner.add_examples(examples)?;
        } else {
            let f = self.tuner.convert(examples)?;
            self.eval.extend(f);
        }
        Ok(())
    }
}

/// `run_classifier.py`'s defaults: `[learning_rate, warmup_proportion, num_train_epochs,
/// train_batch_size, gradient_accumulation_steps, max_seq_length, seed, max_grad_norm,
/// gradient_checkpointing (0 or 1)]`.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerDefaults(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
) -> jdoubleArray {
    run(&mut env, |env| {
        let d = FineTuneParams::default();
        double_array(
            env,
            &[
                f64::from(d.learning_rate),
                d.warmup_proportion,
                d.num_train_epochs,
                d.train_batch_size as f64,
                d.gradient_accumulation_steps as f64,
                d.max_seq_length as f64,
                d.seed as f64,
                f64::from(d.max_grad_norm),
                f64::from(u8::from(d.gradient_checkpointing)),
            ],
        )
    })
}

/// A trainer over a model (as `bert_trainer_new`); labels: the given names, else
/// `"0".."n-1"` for `num_labels > 0`, else the model's.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_libbert_jni_Native_trainerNew(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    model_path: JString<'_>,
    learning_rate: f32,
    warmup_proportion: f32,
    num_train_epochs: f64,
    train_batch_size: jint,
    gradient_accumulation_steps: jint,
    max_seq_length: jint,
    threads: jint,
    seed: jlong,
    labels: JObjectArray<'_>,
    num_labels: jint,
    gradient_checkpointing: jboolean,
    max_grad_norm: f32,
) -> jlong {
    run(&mut env, |env| {
        let path = string(env, &model_path, "modelPath")?;
        let hp = FineTuneParams {
            learning_rate,
            num_train_epochs,
            train_batch_size: count(train_batch_size, "trainBatchSize")?,
            warmup_proportion: f64::from(warmup_proportion),
            gradient_accumulation_steps: count(
                gradient_accumulation_steps,
                "gradientAccumulationSteps",
            )?,
            seed: seed as u64,
            max_seq_length: count(max_seq_length, "maxSeqLength")?,
            threads: count(threads, "threads")?,
            gradient_checkpointing: gradient_checkpointing != 0,
            max_grad_norm,
        };
        let names = if labels.is_null() {
            Vec::new()
        } else {
            strings(env, &labels, "labels")?
        };
        let start = ModelStart::load(Path::new(&path), None, None)?;
        let labels = if !names.is_empty() {
            names
        } else if num_labels > 0 {
            (0..num_labels).map(|i| i.to_string()).collect()
        } else if !start.labels.is_empty() {
            start.labels.clone()
        } else {
            return Err(bert::Error::Label(
                "no labels: give label names or a number of labels (the model is not a \
                 fine-tuned classifier with labels)"
                    .into(),
            )
            .into());
        };
        let tuner = FineTuner::from_start(start, labels, hp)?;
        Ok(into_handle(Trainer {
            tuner,
            eval: Vec::new(),
        }))
    })
}

free_entry_point!(Java_libbert_jni_Native_trainerFree, Trainer);

/// Adds an example to the training (`split` 0) or evaluation (1) set, labelled by
/// `label_name`, or when that is null by `label_id`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_libbert_jni_Native_trainerAddExample(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
    split: jint,
    text_a: JString<'_>,
    text_b: JString<'_>,
    label_id: jint,
    label_name: JString<'_>,
) {
    with(&mut env, h, |env, t: &mut Trainer| {
        let a = string(env, &text_a, "text")?;
        let b = optional_string(env, &text_b)?;
        let labels = t.tuner.labels();
        let label = match optional_string(env, &label_name)? {
            Some(name) if labels.contains(&name) => name,
            Some(name) => {
                let msg = format!("label {name:?} is not one of {labels:?}");
                return Err(bert::Error::Label(msg).into());
            }
            None => usize::try_from(label_id)
                .ok()
                .and_then(|i| labels.get(i))
                .cloned()
                .ok_or_else(|| {
                    let msg = format!("label id {label_id} is not in 0..{}", labels.len());
                    bert::Error::Label(msg)
                })?,
        };
        match split_of(split)? {
            Split::Train => Ok(t.tuner.add_example(&a, b.as_deref(), &label)?),
            split => {
                let n = t.eval.len();
                let example = InputExample {
                    guid: format!("dev-{n}"),
                    text_a: a,
                    text_b: b,
                    label: Some(label),
                    line: n + 1,
                };
                t.add(split, &[example])
            }
        }
    })
}

/// Adds the rows of a GLUE task's tab-separated file (`task`: "cola", "mnli", "mrpc",
/// "sst-2", "rte") to a set.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerAddTsv(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
    split: jint,
    path: JString<'_>,
    task: JString<'_>,
) {
    with(&mut env, h, |env, t: &mut Trainer| {
        let path = string(env, &path, "path")?;
        let processor = Processor::glue(&string(env, &task, "taskName")?)?;
        let split = split_of(split)?;
        t.add(split, &processor.read(Path::new(&path), split)?)
    })
}

/// `[examples in the training set, in the evaluation set, updates of the run, updates done]`.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerCounts(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
) -> jlongArray {
    with(&mut env, h, |env, t: &mut Trainer| {
        let v = [
            t.tuner.num_examples() as i64,
            t.eval.len() as i64,
            t.tuner.num_train_steps() as i64,
            t.tuner.global_step() as i64,
        ];
        long_array(env, &v)
    })
}

/// Trains up to `max_steps` updates (0: to the end), calling `listener.onStep(step,
/// totalSteps, loss, learningRate, gradNorm, examplesPerSecond, elapsedSeconds)` (may be
/// null) after each. False when `onStep` returned false (the run can go on with another
/// call); an exception thrown by `onStep` stops training and propagates.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerTrain(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
    max_steps: jlong,
    listener: JObject<'_>,
) -> jboolean {
    with(&mut env, h, |env, t: &mut Trainer| {
        let limit = u64::try_from(max_steps).ok().filter(|&m| m > 0);
        let mut failed: Option<jni::errors::Error> = None;
        let outcome = t.tuner.train(limit, |p| {
            if listener.is_null() {
                return ControlFlow::Continue(());
            }
            let args = [
                JValue::Long(p.step as i64),
                JValue::Long(p.total_steps as i64),
                JValue::Float(p.loss),
                JValue::Float(p.learning_rate),
                JValue::Double(p.grad_norm),
                JValue::Double(p.examples_per_second),
                JValue::Double(p.elapsed_seconds),
            ];
            match env
                .call_method(&listener, "onStep", "(JJFFDDD)Z", &args)
                .and_then(|v| v.z())
            {
                Ok(true) => ControlFlow::Continue(()),
                Ok(false) => ControlFlow::Break(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(match outcome {
            Outcome::Finished | Outcome::Paused => 1,
            Outcome::Cancelled => 0,
        })
    })
}

/// `[examples, global step, accuracy, loss, f1, mcc]` on the evaluation set (f1 and mcc NaN
/// unless there are two labels).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerEvaluate(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
) -> jdoubleArray {
    with(&mut env, h, |env, t: &mut Trainer| {
        let r = t.tuner.evaluate(&t.eval, 32)?;
        double_array(
            env,
            &[
                r.num_examples as f64,
                t.tuner.global_step() as f64,
                r.accuracy,
                r.loss,
                r.f1.unwrap_or(f64::NAN),
                r.mcc.unwrap_or(f64::NAN),
            ],
        )
    })
}

/// Writes the fine-tuned classifier (`.bert`) atomically.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_trainerSave(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
    path: JString<'_>,
) {
    with(&mut env, h, |env, t: &mut Trainer| {
        let path = string(env, &path, "path")?;
        Ok(t.tuner.save(Path::new(&path))?)
    })
}

/// A fine-tuned classifier (`.bert` written by fine-tuning).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_classifierLoad(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    path: JString<'_>,
) -> jlong {
    load(&mut env, &path, |path| {
        if path.exists() && !bert::weights::native::is_native_file(path) {
            return Err(bert::Error::NotAClassifier(format!(
                "{}: not a fine-tuned classifier (only a .bert file written by fine-tuning \
                 holds labels and a head)",
                path.display()
            ))
            .into());
        }
        Ok(Classifier::load(path)?)
    })
}

free_entry_point!(Java_libbert_jni_Native_classifierFree, Classifier);

#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_classifierLabels(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    h: jlong,
) -> jobjectArray {
    with(&mut env, h, |env, c: &mut Classifier| {
        let labels = c.labels();
        let a = env.new_object_array(labels.len() as i32, "java/lang/String", JObject::null())?;
        for (i, l) in labels.iter().enumerate() {
            let s = env.new_string(l)?;
            env.set_object_array_element(&a, i as i32, &s)?;
            env.delete_local_ref(s)?;
        }
        Ok(a.into_raw())
    })
}

/// Class probabilities `[textsA.length * labels]` of texts, or of pairs when `texts_b` is
/// not null, truncated to `max_seq_length`.
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_classify(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    classifier: jlong,
    context: jlong,
    texts_a: JObjectArray<'_>,
    texts_b: JObjectArray<'_>,
    max_seq_length: jint,
) -> jfloatArray {
    run(&mut env, |env| {
        let c = handle::<Classifier>(classifier)?;
        let ctx = handle::<Context>(context)?;
        let a = strings(env, &texts_a, "textsA")?;
        let b = if texts_b.is_null() {
            vec![None; a.len()]
        } else {
            let b = strings(env, &texts_b, "textsB")?;
            if b.len() != a.len() {
                return Err(Failure::Invalid(format!(
                    "textsB has {} texts, textsA {}",
                    b.len(),
                    a.len()
                )));
            }
            b.into_iter().map(Some).collect()
        };
        let pairs: Vec<(&str, Option<&str>)> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| (a.as_str(), b.as_deref()))
            .collect();
        let p = c.classify(ctx, &pairs, count(max_seq_length, "maxSeqLength")?, 32)?;
        float_array(env, &p)
    })
}

/// A SQuAD-fine-tuned model (what `bert squad --do_predict` loads).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_qaLoad(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    path: JString<'_>,
) -> jlong {
    load(&mut env, &path, |path| Ok(QuestionAnswerer::load(path)?))
}

free_entry_point!(Java_libbert_jni_Native_qaFree, QuestionAnswerer);

/// The best answers to `question` in `context`, best first: `[start_byte, end_byte, score]`
/// per answer (byte offsets into the context's UTF-8; doubles hold both exactly). `options`
/// are `bert_qa_params`' fields after its size: n_best, max_answer_length, max_seq_length,
/// doc_stride, max_query_length, batch_size (0: the default, as there).
#[no_mangle]
pub extern "system" fn Java_libbert_jni_Native_qaAnswer(
    mut env: JNIEnv<'_>,
    _c: JClass<'_>,
    qa: jlong,
    context: jlong,
    question: JString<'_>,
    text: JString<'_>,
    options: JIntArray<'_>,
) -> jdoubleArray {
    run(&mut env, |env| {
        let qa = handle::<QuestionAnswerer>(qa)?;
        let ctx = handle::<Context>(context)?;
        let question = string(env, &question, "question")?;
        let text = string(env, &text, "context")?;
        if options.is_null() || env.get_array_length(&options)? != 6 {
            return Err(Failure::Invalid("options must hold 6 ints".into()));
        }
        let mut o = [0i32; 6];
        env.get_int_array_region(&options, 0, &mut o)?;
        let defaults = crate::bert_qa_default_params();
        let or = |v: i32, d: u32| if v == 0 { d } else { v.max(0) as u32 };
        let p = crate::bert_qa_params {
            n_best: or(o[0], defaults.n_best),
            max_answer_length: or(o[1], defaults.max_answer_length),
            max_seq_length: o[2].max(0) as u32,
            doc_stride: o[3].max(0) as u32,
            max_query_length: o[4].max(0) as u32,
            batch_size: or(o[5], defaults.batch_size),
            ..defaults
        };
        let m = qa.model();
        let (n_best, opts) = crate::qa::answer_options(&p, m.config().max_position_embeddings)
            .map_err(|f| Failure::Invalid(f.message))?;
        let answers = bert::squad::answer_batch_with(
            m.tokenizer(),
            &opts,
            ctx,
            &[(&question, &text)],
            n_best,
            |ctx, inputs| m.logits(ctx, inputs),
        )?;
        let flat: Vec<f64> = answers
            .iter()
            .flatten()
            .flat_map(|a| [a.start_byte as f64, a.end_byte as f64, f64::from(a.score)])
            .collect();
        double_array(env, &flat)
    })
}
