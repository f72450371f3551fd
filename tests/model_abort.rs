//! The context's abort hook: asked before every encoder layer, it stops a forward pass with
//! `Error::Cancelled` (code 11, the C ABI's `BERT_ERROR_CANCELLED`) and the context stays
//! usable.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bert::{BertModel, Context, Error, Inputs};

#[test]
fn abort_hook_stops_between_layers() {
    let model = BertModel::load(common::shared_dir().join("fixtures/tf_bert_tiny")).unwrap();
    let inputs = Inputs {
        input_ids: &[101, 7592, 2088, 102],
        segment_ids: &[0; 4],
        input_mask: &[1; 4],
        batch: 1,
        seq: 4,
    };
    let mut ctx = Context::new(1);
    let want = model
        .forward(&mut ctx, &inputs, false)
        .unwrap()
        .sequence_output()
        .to_vec();

    // Stop at the second question: layer 0 ran, layer 1 did not.
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    ctx.set_abort(Some(Box::new(move || {
        a.fetch_add(1, Ordering::SeqCst) == 1
    })));
    let e = model.forward(&mut ctx, &inputs, false).unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
    assert_eq!(e.code(), 11);
    assert!(e.to_string().contains("before layer 1"), "{e}");
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // A hook that never stops is asked once per layer and changes nothing.
    let a = asked.clone();
    asked.store(0, Ordering::SeqCst);
    ctx.set_abort(Some(Box::new(move || {
        a.fetch_add(1, Ordering::SeqCst);
        false
    })));
    let got = model.forward(&mut ctx, &inputs, false).unwrap();
    assert_eq!(got.sequence_output(), &want[..]);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    ctx.set_abort(None);
    assert!(model.forward(&mut ctx, &inputs, false).is_ok());
}
