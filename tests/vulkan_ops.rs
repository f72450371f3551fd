//! Each Vulkan kernel against the CPU f32 reference op, on ragged shapes: sequence lengths
//! and widths that are not multiples of the shaders' tiles (64-row dense tiles, 16-deep k
//! steps, 128-wide LayerNorm workgroups, 64-wide attention workgroups), padded keys, column
//! views with offsets and strides.
//!
//! Tolerance: max abs diff ≤ 2e-5 · (1 + max |reference|); the two back ends sum in different
//! orders (tiles, tree reductions) and the shaders use their own erf/tanh (≤ 1.2e-7), while
//! every seeded bug tried (an off-by-one in a mask, a tile edge, a stride) moved values by
//! 1e-2 or more.
#![cfg(feature = "vulkan")]

mod common;

use std::borrow::Cow;

use bert::backend::vulkan::Vulkan;
use bert::backend::{
    Activation, Backend, Cpu, Heads, Layout, MatrixSource, Norm, Queries, Reduce, Span, TableRef,
    TableSource, View, Weight,
};
use bert::weights::QuantizedTensor;
use common::vulkan::{rows_of, values, Both, Checks};

/// Tolerance: max abs diff ≤ 2e-5 · (1 + max |reference|) (see above).
fn checks() -> Checks {
    Checks::new(|scale| 2e-5 * (1.0 + scale))
}

#[test]
fn embed_matches_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let width = 37;
    let (word, tt, pos) = (
        values(50 * width, 1),
        values(2 * width, 2),
        values(40 * width, 3),
    );
    let rows = rows_of(&[5, 13, 1, 40], &[0, 4, 0, 9]);
    let ct = Cpu.table(TableSource::F32(&word), 50, width).unwrap();
    let mut want = Vec::new();
    Cpu::embed(
        &mut t.cx,
        TableRef::Prepared(&ct),
        &tt,
        &pos,
        &rows,
        width,
        &mut want,
    );
    let gt = t.gpu.table(TableSource::F32(&word), 50, width).unwrap();
    let (gtt, gpos) = (t.gpu.upload(&tt), t.gpu.upload(&pos));
    let mut got = Default::default();
    Vulkan::embed(
        &mut t.gx,
        TableRef::Prepared(&gt),
        &gtt,
        &gpos,
        &rows,
        width,
        &mut got,
    );
    c.check("embed", &t.read(&got, want.len()), &want);
    // The table split into chunks of 7 rows, as a device with a small maxStorageBufferRange
    // needs it (one dispatch per chunk; ids 0..50 fall in all 8 chunks).
    let small = t.gpu.clone().with_binding_limit(7 * width as u64 * 4);
    let split = small.table(TableSource::F32(&word), 50, width).unwrap();
    let mut got = Default::default();
    let words = TableRef::Prepared(&split);
    Vulkan::embed(&mut t.gx, words, &gtt, &gpos, &rows, width, &mut got);
    c.check("embed, table in chunks", &t.read(&got, want.len()), &want);
}

#[test]
fn dense_matches_cpu_for_every_activation_and_layout() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 67 rows and 70 columns: one full 64-tile and a ragged one each way; k = 37 is two full
    // 16-deep steps and a ragged one. The input is a column view (offset 3, stride 45).
    let (rows, i, o, stride, col) = (67, 37, 70, 45, 3);
    let x = values(rows * stride, 4);
    let w = values(i * o, 5);
    let bias = values(o, 6);
    let (gx_buf, gb) = (t.gpu.upload(&x), t.gpu.upload(&bias));
    let cm = Cpu
        .matrix(MatrixSource::F32(&w, Layout::InOut), i, o)
        .unwrap();
    let gm = t
        .gpu
        .matrix(MatrixSource::F32(&w, Layout::InOut), i, o)
        .unwrap();
    let gw_plain = t.gpu.upload(&w);
    for act in [
        Activation::Identity,
        Activation::GeluTanh,
        Activation::GeluErf,
        Activation::Relu,
        Activation::Tanh,
    ] {
        let mut want = Vec::new();
        let xv = View::cols(&x, col, stride);
        Cpu::dense(
            &mut t.cx,
            Weight::Prepared(&cm),
            i,
            o,
            Some(&bias),
            xv,
            rows,
            &mut want,
            act,
        );
        let mut got = Default::default();
        let gv = View::cols(&gx_buf, col, stride);
        Vulkan::dense(
            &mut t.gx,
            Weight::Prepared(&gm),
            i,
            o,
            Some(&gb),
            gv,
            rows,
            &mut got,
            act,
        );
        c.check(&format!("dense {act:?}"), &t.read(&got, rows * o), &want);
    }
    // A plain [out, in] kernel (a head's output_weights), no bias: read through strides.
    let wt = values(o * i, 7);
    let gwt = t.gpu.upload(&wt);
    let mut want = Vec::new();
    let plain = Weight::Plain(&wt, Layout::OutIn);
    Cpu::dense(
        &mut t.cx,
        plain,
        i,
        o,
        None,
        View::cols(&x, col, stride),
        rows,
        &mut want,
        Activation::Identity,
    );
    let mut got = Default::default();
    let plain = Weight::Plain(&gwt, Layout::OutIn);
    let gv = View::cols(&gx_buf, col, stride);
    Vulkan::dense(
        &mut t.gx,
        plain,
        i,
        o,
        None,
        gv,
        rows,
        &mut got,
        Activation::Identity,
    );
    c.check("dense plain [out, in]", &t.read(&got, rows * o), &want);
    // f16 storage (i · o = 2590 halves: 1295 words, the shader unpacks two per word), against
    // the CPU's f16 kernel: the same rounded weights.
    let q = QuantizedTensor::f16_from_f32(vec![i, o], &w);
    let cm = Cpu.matrix(MatrixSource::Quantized(&q), i, o).unwrap();
    let gm = t.gpu.matrix(MatrixSource::Quantized(&q), i, o).unwrap();
    let act = Activation::GeluTanh;
    let mut want = Vec::new();
    let xv = View::cols(&x, col, stride);
    Cpu::dense(
        &mut t.cx,
        Weight::Prepared(&cm),
        i,
        o,
        Some(&bias),
        xv,
        rows,
        &mut want,
        act,
    );
    let mut got = Default::default();
    let gv = View::cols(&gx_buf, col, stride);
    Vulkan::dense(
        &mut t.gx,
        Weight::Prepared(&gm),
        i,
        o,
        Some(&gb),
        gv,
        rows,
        &mut got,
        act,
    );
    c.check("dense f16 storage", &t.read(&got, rows * o), &want);
    drop(gw_plain);
}

/// Query, key and value columns of a fused `[rows, 3h]` projection.
fn views<B: Backend>(b: &B::Buf, h: usize) -> (View<'_, B>, View<'_, B>, View<'_, B>) {
    (
        View::cols(b, 0, 3 * h),
        View::cols(b, h, 3 * h),
        View::cols(b, 2 * h, 3 * h),
    )
}

#[test]
fn attention_matches_cpu_with_padding_and_query_subsets() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // Three heads of 20; sequences of 7, 70 (over one 64-wide workgroup pass) and 1 rows,
    // the second with 9 padded keys; q, k, v are column views of one fused [rows, 3h] buffer.
    let heads = Heads { n: 3, size: 20 };
    let h = heads.n * heads.size;
    let rows = rows_of(&[7, 70, 1], &[0, 9, 0]);
    let r = rows.len();
    let qkv = values(r * 3 * h, 8);
    let g = t.gpu.upload(&qkv);
    let (q, k, v) = views::<Cpu>(&qkv, h);
    let mut want = Vec::new();
    Cpu::attention(
        &mut t.cx, q, k, v, &rows, None, heads, &mut want, None, None,
    );
    let (gq, gk, gv) = views::<Vulkan>(&g, h);
    let mut got = Default::default();
    Vulkan::attention(
        &mut t.gx, gq, gk, gv, &rows, None, heads, &mut got, None, None,
    );
    c.check("attention", &t.read(&got, r * h), &want);

    // The last layer of a classifier: only some query rows (compacted), all keys.
    let queries = Queries {
        seqs: vec![
            Span { start: 0, len: 2 },
            Span { start: 2, len: 1 },
            Span { start: 3, len: 1 },
        ],
        rows: vec![0, 5, 7, 77],
    };
    let qrows: Vec<f32> = queries
        .rows
        .iter()
        .flat_map(|&row| qkv[row as usize * 3 * h..][..h].to_vec())
        .collect();
    let gqrows = t.gpu.upload(&qrows);
    let mut want = Vec::new();
    let qv = View::rows(&qrows, h);
    Cpu::attention(
        &mut t.cx,
        qv,
        k,
        v,
        &rows,
        Some(&queries),
        heads,
        &mut want,
        None,
        None,
    );
    let mut got = Default::default();
    let gqv = View::rows(&gqrows, h);
    Vulkan::attention(
        &mut t.gx,
        gqv,
        gk,
        gv,
        &rows,
        Some(&queries),
        heads,
        &mut got,
        None,
        None,
    );
    c.check("attention, query subset", &t.read(&got, 4 * h), &want);
}

#[test]
fn layer_norm_matches_cpu_with_and_without_residual() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    // 300 columns: two full 128-wide passes and a ragged one.
    let (rows, width) = (9, 300);
    let x = values(rows * width, 9)
        .iter()
        .map(|v| 3.0 * v + 0.5)
        .collect::<Vec<_>>();
    let res = values(rows * width, 10);
    let (gamma, beta) = (values(width, 11), values(width, 12));
    let (gg, gbeta, gres) = (
        t.gpu.upload(&gamma),
        t.gpu.upload(&beta),
        t.gpu.upload(&res),
    );
    for residual in [false, true] {
        let mut want = x.clone();
        let norm = Norm {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-12,
        };
        Cpu::layer_norm(
            &mut t.cx,
            &mut want,
            rows,
            width,
            residual.then_some(&res),
            None,
            norm,
            None,
        );
        let mut got = t.gpu.upload(&x);
        let norm = Norm {
            gamma: &gg,
            beta: &gbeta,
            eps: 1e-12,
        };
        Vulkan::layer_norm(
            &mut t.gx,
            &mut got,
            rows,
            width,
            residual.then_some(&gres),
            None,
            norm,
            None,
        );
        c.check(
            &format!("layer_norm residual={residual}"),
            &t.read(&got, rows * width),
            &want,
        );
    }
}

#[test]
fn gathers_poolings_and_normalisation_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let width = 33;
    // The third sequence is all padding: Mean and Max give zeros there.
    let rows = rows_of(&[4, 11, 3], &[1, 0, 3]);
    let n = rows.len();
    let x = values(n * width, 13);
    let gxb = t.gpu.upload(&x);
    for how in [Reduce::First, Reduce::Mean, Reduce::Max] {
        let mut want = Vec::new();
        Cpu::reduce(&mut t.cx, &x, &rows, width, how, &mut want);
        let mut got = Default::default();
        Vulkan::reduce(&mut t.gx, &gxb, &rows, width, how, &mut got);
        c.check(&format!("reduce {how:?}"), &t.read(&got, 3 * width), &want);
    }
    let idx = [17u32, 0, 4, 4, 2];
    let mut want = Vec::new();
    Cpu::gather(&mut t.cx, &x, width, &idx, &mut want);
    let mut got = Default::default();
    Vulkan::gather(&mut t.gx, &gxb, width, &idx, &mut got);
    c.check("gather", &t.read(&got, idx.len() * width), &want);

    let mut want = x.clone();
    Cpu::l2_normalize(&mut t.cx, &mut want, n, width);
    let mut got = t.gpu.upload(&x);
    Vulkan::l2_normalize(&mut t.gx, &mut got, n, width);
    c.check("l2_normalize", &t.read(&got, n * width), &want);

    let mut want = Vec::new();
    Cpu::transpose(&mut t.cx, &x, n, width, &mut want);
    let mut got = Default::default();
    Vulkan::transpose(&mut t.gx, &gxb, n, width, &mut got);
    c.check("transpose", &t.read(&got, n * width), &want);

    // Activations over a range where tanh and erf saturate, and a fill.
    let wide: Vec<f32> = values(1000, 14).iter().map(|v| 12.0 * v).collect();
    let gw = t.gpu.upload(&wide);
    for act in [
        Activation::GeluTanh,
        Activation::GeluErf,
        Activation::Relu,
        Activation::Tanh,
    ] {
        let mut want = Vec::new();
        Cpu::activate(&mut t.cx, &wide, wide.len(), act, &mut want);
        let mut got = Default::default();
        Vulkan::activate(&mut t.gx, &gw, wide.len(), act, &mut got);
        c.check(
            &format!("activate {act:?}"),
            &t.read(&got, wide.len()),
            &want,
        );
    }
    let mut got = Default::default();
    Vulkan::fill(&mut t.gx, &mut got, 300, 0.25);
    c.check("fill", &t.read(&got, 300), &[0.25; 300]);
}

#[test]
fn softmax_cross_entropy_and_host_writes_match_cpu() {
    let Some(mut t) = Both::new() else { return };
    let mut c = checks();
    let logits = values(5 * 7, 15);
    let labels = [0u32, 6, 3, 3, 1];
    let scales = [1.0f32; 5];
    let (mut lp, mut dl) = (Vec::new(), Vec::new());
    let want = Cpu::softmax_cross_entropy(
        &mut t.cx,
        &logits,
        7,
        &labels,
        Some(&mut lp),
        Some((&mut dl, &scales)),
    );
    let mut g = Default::default();
    Vulkan::write(&mut t.gx, &mut g, &logits);
    let (mut glp, mut gdl) = (Default::default(), Default::default());
    let got = Vulkan::softmax_cross_entropy(
        &mut t.gx,
        &g,
        7,
        &labels,
        Some(&mut glp),
        Some((&mut gdl, &scales)),
    );
    let as32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    c.check("cross-entropy losses", &as32(&got), &as32(&want));
    c.check("log-probabilities", &t.read(&glp, 35), &lp);
    c.check("dlogits", &t.read(&gdl, 35), &dl);
}

#[test]
fn a_failed_op_reports_its_error_once_and_the_context_recovers() {
    let Some(t) = Both::new() else { return };
    let mut gx = t.gx;
    let b = t.gpu.upload(&[1.0, 2.0]);
    // Row 5 of a 1-row table: refused, not written out of bounds.
    let mut dx = t.gpu.upload(&[0.0, 0.0]);
    Vulkan::scatter_add(&mut gx, &b, 2, &[5], &mut dx);
    let e = Vulkan::status(&gx).unwrap_err();
    assert!(e.to_string().contains("outside 0..1"), "{e}");
    // The error is reported once; the context works again afterwards.
    Vulkan::status(&gx).unwrap();
    let v: Cow<[f32]> = Vulkan::read(&gx, &b, 2);
    assert_eq!(&*v, &[1.0, 2.0]);
}
