//! Each training op of the Vulkan back end against the CPU f32 op, on ragged shapes: rows,
//! columns and depths that are not multiples of the shaders' tiles (64x64 dense tiles,
//! 16-deep k steps, 128-wide LayerNorm and 64-wide attention workgroups, 4096-value norm
//! chunks), batches with padded keys and query subsets, column views with offsets and
//! strides, repeated scatter targets, 1001-wide cross-entropy rows. Dropout masks must be
//! the same units on both.
//!
//! Tolerance: max abs diff ≤ 1e-4 · max |reference| (+1e-6 for values near zero): the
//! shaders sum in other orders than the CPU (tiles, tree reductions, f32 where the CPU
//! uses f64 moments); a dropped unit that differs moves a value by its whole size.
#![cfg(feature = "vulkan")]

mod common;

use bert::backend::vulkan::Vulkan;
use bert::backend::{
    Activation, AdamStep, Backend, Cpu, Dropout, Heads, Layout, Norm, NormRecord, Queries, Rows,
    Span, View,
};
use common::vulkan::{rows_of, values, Both, Checks};

/// Tolerance: max abs diff ≤ 1e-4 · max |reference| + 1e-6 (see above).
fn checks() -> Checks {
    Checks::new(|scale| 1e-4 * scale + 1e-6)
}

/// A mask whose key has both words set (the shader hashes each).
fn mask(rate: f32) -> Dropout {
    Dropout::new(0x9abc_def0_1234_5678, rate)
}

#[test]
fn dropout_drops_the_same_units_as_the_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let n = 1001;
    let mut want = values(n, 1);
    let mut got = t.up(&want);
    Cpu::dropout(&mut t.cx, &mut want, n, mask(0.1));
    Vulkan::dropout(&mut t.gx, &mut got, n, mask(0.1));
    let got = t.read(&got, n);
    c.check("dropout", &got, &want);
    let zeros = |v: &[f32]| v.iter().filter(|&&x| x == 0.0).count();
    assert_eq!(zeros(&got), zeros(&want));
    assert!(
        (60..140).contains(&zeros(&want)),
        "{} dropped",
        zeros(&want)
    );
}

#[test]
fn activation_derivatives_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let n = 777;
    let x: Vec<f32> = values(n, 2).iter().map(|v| v * 6.0).collect();
    let gxb = t.up(&x);
    for act in [
        Activation::Identity,
        Activation::GeluTanh,
        Activation::GeluErf,
        Activation::Relu,
        Activation::Tanh,
    ] {
        let mut want = values(n, 3);
        let mut got = t.up(&want);
        Cpu::activation_backward(&mut t.cx, &x, n, act, &mut want);
        Vulkan::activation_backward(&mut t.gx, &gxb, n, act, &mut got);
        c.check(&format!("{act:?}'"), &t.read(&got, n), &want);
    }
}

#[test]
fn dense_gradients_match_cpu_for_both_layouts() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 67 rows, in 37, out 70: ragged against the 64x64 tile and 16-deep k steps; x and dy
    // are column views with offsets and strides.
    let (rows, i, o) = (67, 37, 70);
    let (xs, xc, ds, dc) = (45, 3, 75, 5);
    let x = values(rows * xs, 4);
    let dy = values(rows * ds, 5);
    let w = values(i * o, 6);
    let (gxb, gdy, gw) = (t.up(&x), t.up(&dy), t.up(&w));
    for layout in [Layout::InOut, Layout::OutIn] {
        // dw accumulates onto what it holds.
        let mut want = values(i * o, 7);
        let mut got = t.up(&want);
        let (xv, dv) = (View::cols(&x, xc, xs), View::cols(&dy, dc, ds));
        Cpu::dense_weight_grad(&mut t.cx, xv, dv, rows, i, o, layout, &mut want);
        let (xv, dv) = (View::cols(&gxb, xc, xs), View::cols(&gdy, dc, ds));
        Vulkan::dense_weight_grad(&mut t.gx, xv, dv, rows, i, o, layout, &mut got);
        c.check(&format!("dw {layout:?}"), &t.read(&got, i * o), &want);
        for accumulate in [false, true] {
            let mut want = values(rows * i, 8);
            let mut got = t.up(&want);
            let dv = View::cols(&dy, dc, ds);
            Cpu::dense_input_grad(&mut t.cx, &w, layout, i, o, dv, rows, &mut want, accumulate);
            let dv = View::cols(&gdy, dc, ds);
            Vulkan::dense_input_grad(&mut t.gx, &gw, layout, i, o, dv, rows, &mut got, accumulate);
            let what = format!("dx {layout:?}, accumulate {accumulate}");
            c.check(&what, &t.read(&got, rows * i), &want);
        }
    }
}

#[test]
fn column_sums_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let (rows, width, stride, col) = (131, 300, 310, 7);
    let dy = values(rows * stride, 9);
    let gdy = t.up(&dy);
    let mut want = values(width, 10);
    let mut got = t.up(&want);
    Cpu::column_sums(
        &mut t.cx,
        View::cols(&dy, col, stride),
        rows,
        width,
        &mut want,
    );
    Vulkan::column_sums(
        &mut t.gx,
        View::cols(&gdy, col, stride),
        rows,
        width,
        &mut got,
    );
    c.check("column sums", &t.read(&got, width), &want);
}

#[test]
fn layer_norm_with_dropout_record_and_backward_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 300 = two full 128-wide passes and a ragged one.
    let (rows, width) = (19, 300);
    let n = rows * width;
    let (gamma, beta) = (values(width, 11), values(width, 12));
    let (gg, gb) = (t.up(&gamma), t.up(&beta));
    let residual = values(n, 13);
    let gres = t.up(&residual);
    for (drop, res) in [(None, false), (Some(mask(0.1)), true)] {
        let x0: Vec<f32> = values(n, 14).iter().map(|v| v * 3.0 + 0.5).collect();
        let mut want = x0.clone();
        let mut got = t.up(&x0);
        let mut crec = NormRecord::<Cpu>::default();
        let mut grec = NormRecord::<Vulkan>::default();
        let norm = Norm {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
        };
        let r = res.then_some(&residual);
        Cpu::layer_norm(
            &mut t.cx,
            &mut want,
            rows,
            width,
            r,
            drop,
            norm,
            Some(&mut crec),
        );
        let norm = Norm {
            gamma: &gg,
            beta: &gb,
            eps: 1e-12,
        };
        let r = res.then_some(&gres);
        Vulkan::layer_norm(
            &mut t.gx,
            &mut got,
            rows,
            width,
            r,
            drop,
            norm,
            Some(&mut grec),
        );
        let what = format!("layer norm, dropout {}", drop.is_some());
        c.check(&what, &t.read(&got, n), &want);
        c.check(
            &format!("{what}: x̂"),
            &t.read(&grec.xhat, n),
            &crec.xhat[..n],
        );
        c.check(
            &format!("{what}: 1/σ"),
            &t.read(&grec.rstd, rows),
            &crec.rstd[..rows],
        );

        let dy = values(n, 15);
        let gdy = t.up(&dy);
        let (mut cdg, mut cdb) = (values(width, 16), values(width, 17));
        let (mut gdg, mut gdb) = (t.up(&cdg), t.up(&cdb));
        let (mut cds, mut cz) = (Vec::new(), Vec::new());
        let (mut gds, mut gz) = Default::default();
        let branch = res.then_some((drop, &mut cz));
        Cpu::layer_norm_backward(
            &mut t.cx, &dy, rows, width, &crec, &gamma, &mut cdg, &mut cdb, &mut cds, branch,
        );
        let branch = res.then_some((drop, &mut gz));
        Vulkan::layer_norm_backward(
            &mut t.gx, &gdy, rows, width, &grec, &gg, &mut gdg, &mut gdb, &mut gds, branch,
        );
        c.check(&format!("{what}: dsum"), &t.read(&gds, n), &cds);
        c.check(&format!("{what}: dgamma"), &t.read(&gdg, width), &cdg);
        c.check(&format!("{what}: dbeta"), &t.read(&gdb, width), &cdb);
        if res {
            c.check(&format!("{what}: branch"), &t.read(&gz, n), &cz);
        }
    }
}

/// Attention forward with a record and dropout, then backward, on both back ends.
fn attention_case(
    t: &mut Both,
    c: &mut Checks,
    rows: &Rows,
    queries: Option<&Queries>,
    drop: Option<Dropout>,
) {
    let heads = Heads { n: 3, size: 20 };
    let h = heads.n * heads.size;
    let r = rows.len();
    let nq = queries.map_or(r, Queries::len);
    // Separate buffers, as a trainable model keeps them; k and v as views of one.
    let q: Vec<f32> = values(nq * h, 20).iter().map(|v| v * 2.0).collect();
    let kv: Vec<f32> = values(r * 2 * h, 21).iter().map(|v| v * 2.0).collect();
    let (gq, gkv) = (t.up(&q), t.up(&kv));
    let what = format!(
        "attention, queries {}, dropout {}",
        queries.is_some(),
        drop.is_some()
    );
    let mut want = Vec::new();
    let mut crec = Vec::new();
    let (qv, kvv, vv) = (
        View::rows(&q, h),
        View::cols(&kv, 0, 2 * h),
        View::cols(&kv, h, 2 * h),
    );
    Cpu::attention(
        &mut t.cx,
        qv,
        kvv,
        vv,
        rows,
        queries,
        heads,
        &mut want,
        Some(&mut crec),
        drop,
    );
    let mut got = Default::default();
    let mut grec = Default::default();
    let (gqv, gkv_, gvv) = (
        View::rows(&gq, h),
        View::cols(&gkv, 0, 2 * h),
        View::cols(&gkv, h, 2 * h),
    );
    Vulkan::attention(
        &mut t.gx,
        gqv,
        gkv_,
        gvv,
        rows,
        queries,
        heads,
        &mut got,
        Some(&mut grec),
        drop,
    );
    c.check(&what, &t.read(&got, nq * h), &want[..nq * h]);
    c.check(
        &format!("{what}: record"),
        &t.read(&grec, crec.len()),
        &crec,
    );

    let dout = values(nq * h, 22);
    let gdout = t.up(&dout);
    let (mut cq, mut ck, mut cv) = (Vec::new(), Vec::new(), Vec::new());
    Cpu::attention_backward(
        &mut t.cx, qv, kvv, vv, rows, queries, heads, &crec, drop, &dout, &mut cq, &mut ck, &mut cv,
    );
    let (mut dq, mut dk, mut dv) = Default::default();
    Vulkan::attention_backward(
        &mut t.gx, gqv, gkv_, gvv, rows, queries, heads, &grec, drop, &gdout, &mut dq, &mut dk,
        &mut dv,
    );
    c.check(&format!("{what}: dq"), &t.read(&dq, nq * h), &cq[..nq * h]);
    c.check(&format!("{what}: dk"), &t.read(&dk, r * h), &ck[..r * h]);
    c.check(&format!("{what}: dv"), &t.read(&dv, r * h), &cv[..r * h]);
}

#[test]
fn attention_record_dropout_and_backward_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 70 keys: more than one 64-wide pass; padded sequences; one of a single token.
    let rows = rows_of(&[5, 13, 1, 70], &[0, 4, 0, 9]);
    let queries = Queries {
        seqs: vec![
            Span { start: 0, len: 2 },
            Span { start: 2, len: 1 },
            Span { start: 3, len: 1 },
            Span { start: 4, len: 2 },
        ],
        rows: vec![0, 3, 5, 18, 19, 60],
    };
    for drop in [None, Some(mask(0.1))] {
        attention_case(&mut t, &mut c, &rows, None, drop);
        attention_case(&mut t, &mut c, &rows, Some(&queries), drop);
    }
}

#[test]
fn scatters_and_embedding_gradients_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let width = 37;
    // Repeated targets, out of order.
    let targets = [4u32, 0, 4, 9, 4, 0];
    let d = values(targets.len() * width, 30);
    let mut want = values(10 * width, 31);
    let mut got = t.up(&want);
    Cpu::scatter_add(&mut t.cx, &d, width, &targets, &mut want);
    let gd = t.up(&d);
    Vulkan::scatter_add(&mut t.gx, &gd, width, &targets, &mut got);
    c.check("scatter_add", &t.read(&got, want.len()), &want);

    let rows = rows_of(&[5, 13, 1, 40], &[0, 4, 0, 9]);
    let dy = values(rows.len() * width, 32);
    let (mut cw, mut ct, mut cp) = (
        values(50 * width, 33),
        values(2 * width, 34),
        values(40 * width, 35),
    );
    let (mut gw, mut gt, mut gp) = (t.up(&cw), t.up(&ct), t.up(&cp));
    let want_sq = Cpu::embed_backward(&mut t.cx, &dy, &rows, width, &mut cw, &mut ct, &mut cp);
    let gdy = t.up(&dy);
    let got_sq = Vulkan::embed_backward(&mut t.gx, &gdy, &rows, width, &mut gw, &mut gt, &mut gp);
    c.check("dword", &t.read(&gw, cw.len()), &cw);
    c.check("dtoken_type", &t.read(&gt, ct.len()), &ct);
    c.check("dposition", &t.read(&gp, cp.len()), &cp);
    eprintln!("Σ‖dy‖²: {got_sq} vs {want_sq}");
    assert!(
        (got_sq - want_sq).abs() <= 1e-5 * want_sq,
        "{got_sq} vs {want_sq}"
    );
}

#[test]
fn cross_entropy_losses_and_gradients_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 1001 wide: 7 full 128-wide passes and a ragged one; labels at both ends.
    let width = 1001;
    let labels = [0u32, 1000, 517, 3, 128, 999, 64, 700, 2];
    let rows = labels.len();
    let logits: Vec<f32> = values(rows * width, 50).iter().map(|v| v * 8.0).collect();
    let scales: Vec<f32> = (0..rows).map(|r| 0.25 + r as f32 * 0.5).collect();
    let (mut lp, mut dl) = (Vec::new(), Vec::new());
    let want = Cpu::softmax_cross_entropy(
        &mut t.cx,
        &logits,
        width,
        &labels,
        Some(&mut lp),
        Some((&mut dl, &scales)),
    );
    let g = t.up(&logits);
    let (mut glp, mut gdl) = Default::default();
    let got = Vulkan::softmax_cross_entropy(
        &mut t.gx,
        &g,
        width,
        &labels,
        Some(&mut glp),
        Some((&mut gdl, &scales)),
    );
    let as32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    c.check("losses", &as32(&got), &as32(&want));
    c.check("log-probabilities", &t.read(&glp, rows * width), &lp);
    c.check("dlogits", &t.read(&gdl, rows * width), &dl);
    // Without the optional outputs: the losses alone.
    let alone = Vulkan::softmax_cross_entropy(&mut t.gx, &g, width, &labels, None, None);
    Vulkan::status(&t.gx).unwrap();
    c.check("losses alone", &as32(&alone), &as32(&want));
}

#[test]
fn norm_and_adamw_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // Two full 4096-value chunks and a ragged one.
    let n = 2 * 4096 + 1234;
    let mut want = values(n, 40);
    let mut got = t.up(&want);
    let ws = Cpu::scale_and_square_sum(&mut t.cx, &mut want, 0.25);
    let gs = Vulkan::scale_and_square_sum(&mut t.gx, &mut got, 0.25);
    c.check("scaled", &t.read(&got, n), &want);
    eprintln!("Σx²: {gs} vs {ws}");
    assert!((gs - ws).abs() <= 1e-6 * ws, "{gs} vs {ws}");

    for decay in [0.0, 0.01] {
        let step = AdamStep {
            lr: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            one_minus_beta_1: 0.1,
            one_minus_beta_2: 0.001,
            epsilon: 1e-6,
            weight_decay: decay,
            grad_scale: 0.5,
        };
        let (mut p, mut g) = (values(n, 41), values(n, 42));
        let mut m = values(n, 43);
        let mut v: Vec<f32> = values(n, 44).iter().map(|x| x.abs()).collect();
        let (mut gp, mut gg, mut gm, mut gv) = (t.up(&p), t.up(&g), t.up(&m), t.up(&v));
        Cpu::adamw(&mut t.cx, &mut p, &mut g, &mut m, &mut v, &step);
        Vulkan::adamw(&mut t.gx, &mut gp, &mut gg, &mut gm, &mut gv, &step);
        c.check(&format!("adamw {decay}: value"), &t.read(&gp, n), &p);
        c.check(&format!("adamw {decay}: m"), &t.read(&gm, n), &m);
        c.check(&format!("adamw {decay}: v"), &t.read(&gv, n), &v);
        assert!(
            t.read(&gg, n).iter().all(|&x| x == 0.0),
            "the gradient is zeroed"
        );
    }
}
