// Residual add + LayerNorm in place (Backend::layer_norm; tf.contrib.layers.layer_norm:
// biased variance, eps inside the square root): x = LN(x + residual) * gamma + beta.
// One workgroup per row: the sum is written back first, then mean and variance are two
// tree reductions over the row (two passes, as the CPU computes them, rather than
// E[x^2] - E[x]^2, which cancels badly).

struct P { rows: u32, width: u32, residual: u32, eps: f32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> res: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;

const WG: u32 = 128u;
var<workgroup> part: array<f32, 128>;

// include: workgroup_reduce.wgsli

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r = wg.y * nwg.x + wg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.width;
    var s = 0.0;
    for (var c = li; c < p.width; c += WG) {
        var v = x[base + c];
        if (p.residual != 0u) {
            v += res[base + c];
            x[base + c] = v;
        }
        s += v;
    }
    let mean = reduce_sum(s, li) / f32(p.width);
    var q = 0.0;
    for (var c = li; c < p.width; c += WG) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let rstd = 1.0 / sqrt(reduce_sum(q, li) / f32(p.width) + p.eps);
    for (var c = li; c < p.width; c += WG) {
        x[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
    }
}
