//! `bert_classifier`: a fine-tuned sentence (pair) classifier, and `bert_classify`.

use std::ffi::{c_char, CString};
use std::path::Path;

use bert::backend::cpu::softmax_rows;
use bert::classifier::{self, Classifier};
use bert::heads::ClassifierHead;
use bert::tokenizer::{EncodeOptions, Padding};
use bert::Inputs;

use crate::args;
use crate::context::{bert_context, Ctx};
use crate::handles::Owner;
use crate::log::{log, BERT_LOG_INFO};
use crate::model::{self, bert_model, bert_model_params, Device, Encoder};
use crate::status::{bert_status, guard, Failure, FfiResult, BERT_ERROR_BUFFER_TOO_SMALL};

/// A fine-tuned classifier: an encoder with its tokenizer (a `bert_model`, see
/// `bert_classifier_model`), a classification head and its labels. Immutable: share it
/// between threads, each with its own `bert_context` made from `bert_classifier_model()`.
pub struct bert_classifier {
    model: bert_model,
    head: Head,
    labels: Vec<CString>,
}

/// The head, on its encoder's back end (the pooled output it reads stays there).
enum Head {
    Cpu(ClassifierHead),
    #[cfg(feature = "vulkan")]
    Vulkan(ClassifierHead<bert::backend::Vulkan>),
}

/// Loads a classifier fine-tuned by `bert_trainer_save` or `bert classify --do_train`: a
/// `.bert` file with a label list and a head (`output_weights`, `output_bias`). `params` (may
/// be NULL: defaults) gives the back end, the encoder's `dtype` (the head stays f32) and
/// `verify_checksums`; the file brings its vocabulary and casing, so `vocab_path` must be
/// NULL and `do_lower_case` `BERT_LOWER_CASE_AUTO` (`BERT_ERROR_INVALID_ARGUMENT`
/// otherwise); `config_json` and `vocab_text` are ignored. With `BERT_BACKEND_VULKAN` the
/// encoder and the head run on the device (logits within 1e-4 of the CPU's);
/// `BERT_ERROR_UNSUPPORTED` where there is none. On failure `*out_classifier` is
/// NULL: `BERT_ERROR_IO`, `BERT_ERROR_FORMAT` (not a model, or a checksum that does not
/// match), `BERT_ERROR_NOT_A_CLASSIFIER` (a model without labels or head, e.g. a pre-trained
/// one).
#[no_mangle]
pub unsafe extern "C" fn bert_classifier_load_file(
    path: *const c_char,
    params: *const bert_model_params,
    out_classifier: *mut *mut bert_classifier,
) -> bert_status {
    guard(|| {
        let out = args::out(out_classifier, "out_classifier")?;
        *out = std::ptr::null_mut();
        let path = Path::new(args::c_str(path, "path")?);
        let p = model::read_params(params)?;
        let opts = model::classifier_options(&p)?;
        if path.exists() && !bert::weights::native::is_native_file(path) {
            return Err(bert::Error::NotAClassifier(format!(
                "{}: not a fine-tuned classifier (only a .bert file written by fine-tuning \
                 holds labels and a head)",
                path.display()
            ))
            .into());
        }
        let (encoder, tokenizer, labels, head) = match model::device(&p)? {
            Device::Cpu => {
                let (m, t, l, h) = Classifier::load_with(path, &opts)?.into_parts();
                (Encoder::Cpu(m), t, l, Head::Cpu(h))
            }
            #[cfg(feature = "vulkan")]
            Device::Vulkan(vk) => {
                let (m, t, l, h) = Classifier::load_on(vk, path, &opts)?.into_parts();
                (Encoder::Vulkan(m), t, l, Head::Vulkan(h))
            }
        };
        log(BERT_LOG_INFO, || {
            format!(
                "classifier {}: {} layers, hidden {}, labels {labels:?}, back end {}",
                path.display(),
                encoder.config().num_hidden_layers,
                encoder.config().hidden_size,
                encoder.backend_name()
            )
        });
        let labels = labels
            .iter()
            .map(|l| CString::new(l.replace('\0', "\\0")).unwrap_or_default())
            .collect();
        *out = Box::into_raw(Box::new(bert_classifier {
            model: bert_model::with_encoder(encoder, tokenizer, Owner::Classifier),
            head,
            labels,
        }));
        Ok(())
    })
}

/// Frees a classifier. NULL is a no-op. No context made from its model may be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn bert_classifier_free(classifier: *mut bert_classifier) {
    if !classifier.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(Box::from_raw(classifier));
        }));
    }
}

/// The classifier's encoder and tokenizer as a model, borrowed: valid as long as the
/// classifier, freed with it (`bert_model_free` on it frees nothing and sets
/// `bert_last_error()`). Make the contexts for `bert_classify` from it (they
/// also embed, tokenize and encode with it). NULL if `classifier` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_classifier_model(
    classifier: *const bert_classifier,
) -> *const bert_model {
    classifier
        .as_ref()
        .map_or(std::ptr::null(), |c| &c.model as *const bert_model)
}

/// Number of labels (classes); 0 if `classifier` is NULL.
#[no_mangle]
pub unsafe extern "C" fn bert_classifier_num_labels(classifier: *const bert_classifier) -> usize {
    classifier.as_ref().map_or(0, |c| c.labels.len())
}

/// Name of label `index` (NUL-terminated UTF-8, owned by the classifier, valid as long as
/// it); NULL if `classifier` is NULL or `index` is not below `bert_classifier_num_labels`.
#[no_mangle]
pub unsafe extern "C" fn bert_classifier_label(
    classifier: *const bert_classifier,
    index: usize,
) -> *const c_char {
    classifier
        .as_ref()
        .and_then(|c| c.labels.get(index))
        .map_or(std::ptr::null(), |l| l.as_ptr())
}

/// Classifies `n_texts` texts or text pairs: row `i` is `[CLS] A [SEP]` with A = `lens_a[i]`
/// bytes of UTF-8 at `texts_a[i]`, or `[CLS] A [SEP] B [SEP]` when `texts_b` is not NULL and
/// `texts_b[i]` is not NULL (B = `lens_b[i]` bytes; a NULL `texts_b[i]` needs `lens_b[i]` 0).
/// A NULL `lens_a` / `lens_b` means the texts are NUL-terminated. Inputs are truncated to the
/// context's `max_seq_length` (set it to the fine-tuning `max_seq_length`, e.g. 128) as
/// Google's `_truncate_seq_pair` does.
///
/// `context` must have been made from `bert_classifier_model(classifier)`
/// (`BERT_ERROR_INVALID_ARGUMENT` otherwise). Writes `n_texts * num_labels` floats,
/// `[n_texts][num_labels]`, to `logits` and to `probabilities` (softmax of the logits); either
/// may be NULL to skip it. Each holds `capacity` floats; `*out_len` (may be NULL) receives
/// `n_texts * num_labels`. If `capacity` is smaller, nothing runs and
/// `BERT_ERROR_BUFFER_TOO_SMALL` is returned (both NULL with capacity 0 is a size query). A
/// row does not depend on the others in the batch. The abort callback of the context can stop
/// the call (`BERT_ERROR_CANCELLED`).
#[no_mangle]
pub unsafe extern "C" fn bert_classify(
    context: *mut bert_context,
    classifier: *const bert_classifier,
    texts_a: *const *const c_char,
    lens_a: *const usize,
    texts_b: *const *const c_char,
    lens_b: *const usize,
    n_texts: usize,
    logits: *mut f32,
    probabilities: *mut f32,
    capacity: usize,
    out_len: *mut usize,
) -> bert_status {
    guard(|| {
        if let Some(l) = out_len.as_mut() {
            *l = 0;
        }
        let c = crate::context::context(context)?;
        let clf = args::handle(classifier, "classifier")?;
        if !std::ptr::eq(c.model, &clf.model) {
            return Err(Failure::invalid(
                "context was not made from bert_classifier_model(classifier)",
            ));
        }
        let n = clf.labels.len();
        let needed = n_texts
            .checked_mul(n)
            .ok_or_else(|| Failure::invalid("n_texts * num_labels overflows"))?;
        if let Some(l) = out_len.as_mut() {
            *l = needed;
        }
        if needed > capacity {
            return Err(Failure::new(
                BERT_ERROR_BUFFER_TOO_SMALL,
                format!(
                    "{n_texts} rows of {n} labels need {needed} floats, capacity is {capacity}"
                ),
            ));
        }
        if n_texts == 0 {
            return Ok(());
        }
        let a = args::text_array(texts_a, lens_a, n_texts, "texts_a")?;
        let b: Vec<Option<&str>> = if texts_b.is_null() {
            vec![None; n_texts]
        } else {
            let ptrs = std::slice::from_raw_parts(texts_b, n_texts);
            let lens = (!lens_b.is_null()).then(|| std::slice::from_raw_parts(lens_b, n_texts));
            let mut v = Vec::with_capacity(n_texts);
            for (i, &p) in ptrs.iter().enumerate() {
                let len = match lens {
                    Some(l) => l[i],
                    None if p.is_null() => 0,
                    None => std::ffi::CStr::from_ptr(p).to_bytes().len(),
                };
                v.push(args::optional_text(p, len, &format!("texts_b[{i}]"))?);
            }
            v
        };
        let pairs: Vec<(&str, Option<&str>)> = a.into_iter().zip(b).collect();
        let opts = EncodeOptions {
            max_seq_length: Some(c.max_seq_length),
            padding: Padding::Longest,
        };
        let encodings = clf
            .model
            .tokenizer
            .tokenizer
            .encode_batch(&pairs, &opts, 1)?;
        let seq = encodings[0].len();
        c.set_inputs(&encodings);
        let inputs = Inputs {
            input_ids: &c.ids,
            segment_ids: &c.type_ids,
            input_mask: &c.mask,
            batch: n_texts,
            seq,
        };
        let mut row_logits = run_logits(clf, &mut c.ctx, &inputs)?;
        if !logits.is_null() {
            std::slice::from_raw_parts_mut(logits, needed).copy_from_slice(&row_logits);
        }
        if !probabilities.is_null() {
            softmax_rows(&mut row_logits, n);
            std::slice::from_raw_parts_mut(probabilities, needed).copy_from_slice(&row_logits);
        }
        Ok(())
    })
}

/// The logits `[batch, num_labels]` of `inputs`, on the classifier's back end.
fn run_logits(clf: &bert_classifier, ctx: &mut Ctx, inputs: &Inputs) -> FfiResult<Vec<f32>> {
    Ok(match (&clf.model.model, &clf.head, ctx) {
        (Encoder::Cpu(m), Head::Cpu(h), Ctx::Cpu(x)) => classifier::logits(m, h, x, inputs)?,
        #[cfg(feature = "vulkan")]
        (Encoder::Vulkan(m), Head::Vulkan(h), Ctx::Vulkan(x)) => {
            classifier::logits(m, h, x, inputs)?
        }
        #[cfg(feature = "vulkan")]
        _ => return Err(Failure::invalid("the context was made for another model")),
    })
}
