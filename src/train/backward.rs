//! Backward pass of [`super::forward`]: gradients of the mean cross-entropy loss with
//! respect to every trainable variable, added (times a scale) into a [`Grads`] set.
//!
//! Pieces, in reverse order of the forward pass: softmax cross-entropy, classifier head
//! (with its dropout), pooler (tanh), each layer (`layer.rs`; under gradient checkpointing
//! the layer is first recomputed from its saved input, with the same dropout masks, so the
//! gradients are the same), and the embeddings (dropout, LayerNorm, then scatter-add into
//! the word / position / token-type tables).

use super::forward::Batch;
use super::kernels::{ln_backward, Partials};
use super::layer;
use super::params::{Grads, Params};
use super::workspace::{sized, Workspace};
use crate::backend::{cpu, Pool};
#[cfg(test)]
use crate::config::Activation;

/// Derivative of `hidden_act` at `x`, in f64 (the reference for `kernels.rs`).
#[cfg(test)]
pub(crate) fn activation_grad(act: Activation, x: f32) -> f32 {
    match act {
        Activation::GeluTanh => {
            // g = 0.5 x (1 + tanh(u)), u = c (x + 0.044715 x³)
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let x = x as f64;
            let u = c * (x + 0.044715 * x * x * x);
            let t = u.tanh();
            (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)) as f32
        }
        Activation::GeluErf => {
            // g = x Φ(x): g' = Φ(x) + x φ(x)
            let x = x as f64;
            let cdf = 0.5 * (1.0 + cpu::erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (cdf + x * pdf) as f32
        }
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// Adds `scale · ∂loss/∂θ` into `g` for every variable, from the activations the last
/// [`super::forward::forward`] left in `ws` (same parameters and batch).
pub(crate) fn backward(
    p: &Params,
    b: &Batch,
    ws: &mut Workspace,
    g: &mut Grads,
    scale: f32,
    pool: &Pool,
) {
    let c = p.config();
    let lay = &p.layout;
    let d = &p.data;
    let h = c.hidden_size;
    let (bs, nl) = (b.batch, p.num_labels());
    let rows = ws.packed.rows;
    let num_layers = lay.layers.len();
    let hs = h as isize;

    // Mean softmax cross-entropy: dlogits = (softmax − onehot) / batch.
    let hd = &mut ws.head;
    let dlogits = sized(&mut hd.dlogits, bs * nl);
    dlogits.copy_from_slice(&hd.label_probs[..bs * nl]);
    for bi in 0..bs {
        dlogits[bi * nl + b.labels[bi] as usize] -= 1.0;
    }
    let k = scale / bs as f32;
    dlogits.iter_mut().for_each(|v| *v *= k);

    // Head: logits = pooled_d Wᵀ + b, W: [nl, h].
    cpu::sgemm(
        nl,
        bs,
        h,
        1.0,
        dlogits,
        (1, nl as isize),
        &hd.pooled_d,
        (hs, 1),
        1.0,
        &mut g.data[lay.head_w],
        (hs, 1),
        pool,
    );
    for r in dlogits.chunks_exact(nl) {
        for (a, v) in g.data[lay.head_b].iter_mut().zip(r) {
            *a += v;
        }
    }
    let dpooled = sized(&mut hd.dpooled, bs * h);
    cpu::sgemm(
        bs,
        nl,
        h,
        1.0,
        &hd.dlogits,
        (nl as isize, 1),
        &d[lay.head_w],
        (hs, 1),
        0.0,
        dpooled,
        (hs, 1),
        pool,
    );
    if let Some(dr) = hd.drop {
        dr.apply(dpooled, 0);
    }
    // Pooler: pooled = tanh(first Wp + bp), tanh' = 1 − y².
    for (dv, &y) in dpooled.iter_mut().zip(&hd.pooled) {
        *dv *= 1.0 - y * y;
    }
    cpu::sgemm(
        h,
        bs,
        h,
        1.0,
        &hd.first,
        (1, hs),
        dpooled,
        (hs, 1),
        1.0,
        &mut g.data[lay.pooler_k],
        (hs, 1),
        pool,
    );
    for r in dpooled.chunks_exact(h) {
        for (a, v) in g.data[lay.pooler_b].iter_mut().zip(r) {
            *a += v;
        }
    }
    // dfirst = dpooled Wpᵀ: the gradient of the last layer's (position-0) output.
    let dy = sized(&mut ws.dy, rows.max(bs) * h);
    cpu::sgemm(
        bs,
        h,
        h,
        1.0,
        &hd.dpooled,
        (hs, 1),
        &d[lay.pooler_k],
        (1, hs),
        0.0,
        dy,
        (hs, 1),
        pool,
    );
    if num_layers == 0 {
        // No layer: position 0 of the embedding output is the pooler's input.
        let dx = sized(&mut ws.dx, rows * h);
        dx.fill(0.0);
        for (e, span) in ws.packed.spans.iter().enumerate() {
            dx[span.off * h..][..h].copy_from_slice(&ws.dy[e * h..][..h]);
        }
        std::mem::swap(&mut ws.dx, &mut ws.dy);
    }

    for (l, li) in lay.layers.iter().enumerate().rev() {
        let first_only = l + 1 == num_layers;
        if ws.checkpointing && !first_only {
            // Recompute the layer's activations from its input (same masks); its output,
            // already known, goes to `dx`, which the backward below overwrites.
            layer::forward(
                p,
                li,
                &ws.packed,
                &ws.inputs[l],
                false,
                &mut ws.layers[0],
                &ws.drops[l],
                &mut ws.scratch,
                sized(&mut ws.dx, rows * h),
                pool,
            );
        }
        let acts = &ws.layers[ws.acts_index(l)];
        layer::backward(
            p,
            li,
            &ws.packed,
            &ws.inputs[l],
            first_only,
            acts,
            &ws.drops[l],
            &ws.dy,
            g,
            &mut ws.scratch,
            sized(&mut ws.dx, rows * h),
            pool,
        );
        std::mem::swap(&mut ws.dx, &mut ws.dy);
    }

    // Embeddings: dropout, LayerNorm, then scatter-add into the three tables.
    let parts = Partials::new(&mut ws.scratch.partials, rows, h, 2);
    ln_backward(
        pool,
        rows,
        &ws.dy,
        (&ws.emb_xhat, &ws.emb_rstd, &d[lay.emb_ln_gamma]),
        ws.emb_drop,
        None,
        sized(&mut ws.dx, rows * h),
        None,
        &parts,
    );
    parts.add_into(0, &mut g.data[lay.emb_ln_gamma]);
    parts.add_into(1, &mut g.data[lay.emb_ln_beta]);
    let demb = &ws.dx;
    for (r, &src) in ws.packed.src.iter().enumerate() {
        let row = &demb[r * h..][..h];
        g.word_occurrence_sq += row.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        let targets = [
            (lay.word, b.input_ids[src] as usize),
            (lay.token_type, b.segment_ids[src] as usize),
            (lay.position, src % b.seq),
        ];
        for (t, i) in targets {
            for (a, v) in g.data[t][i * h..][..h].iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::kernels::softmax_backward;

    /// Central differences in f64 (step 1e-4, error O(1e-8)); the derivatives are computed in
    /// f64 and rounded to f32, so 1e-6 absolute is tight.
    #[test]
    fn activation_derivatives_match_finite_differences() {
        let gelu_tanh = |x: f64| {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        };
        let gelu_erf = |x: f64| 0.5 * x * (1.0 + cpu::erf(x / std::f64::consts::SQRT_2));
        let e = 1e-4;
        for i in -60..=60 {
            let x = i as f64 / 10.0 + 0.013;
            for (act, f) in [
                (Activation::GeluTanh, &gelu_tanh as &dyn Fn(f64) -> f64),
                (Activation::GeluErf, &gelu_erf),
            ] {
                let fd = (f(x + e) - f(x - e)) / (2.0 * e);
                let an = activation_grad(act, x as f32) as f64;
                assert!((fd - an).abs() < 1e-6, "{act:?} at {x}: {an} vs {fd}");
            }
        }
    }

    /// Softmax backward against central differences of `Σ w·softmax(z)` in f64.
    #[test]
    fn softmax_backward_matches_finite_differences() {
        let z = [0.3f64, -1.2, 2.0, 0.7, -0.1];
        let w = [0.5f64, -2.0, 1.0, 3.0, -0.7];
        let sm = |z: &[f64]| {
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            z.iter().map(|v| (v - m).exp() / s).collect::<Vec<_>>()
        };
        let f = |z: &[f64]| sm(z).iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
        let p: Vec<f32> = sm(&z).iter().map(|&v| v as f32).collect();
        let mut dp: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        softmax_backward(&p, &mut dp, 5);
        for i in 0..5 {
            let (mut a, mut b) = (z, z);
            a[i] += 1e-5;
            b[i] -= 1e-5;
            let fd = (f(&a) - f(&b)) / 2e-5;
            assert!((fd - dp[i] as f64).abs() < 1e-6, "{i}: {} vs {fd}", dp[i]);
        }
    }
}
