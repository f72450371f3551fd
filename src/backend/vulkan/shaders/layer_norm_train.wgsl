// LayerNorm in place as training runs it (Backend::layer_norm with dropout or a record):
// x = LN(drop(x) + residual) * gamma + beta, writing x̂ = (x - mean) / σ and 1/σ for the
// backward pass. The CPU's order: the mask (element r * width + c) first, then the
// residual, then two-pass moments. One workgroup per row (layer_norm.wgsl without
// training stays lean for inference).

struct P {
    rows: u32, width: u32, residual: u32, eps: f32, drop: u32, key_lo: u32,
    key_hi: u32, threshold: f32, scale: f32, p9: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> res: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> xhat: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;

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
    let mask = DropMask(p.key_lo, p.key_hi, p.threshold, p.scale);
    let base = r * p.width;
    var s = 0.0;
    for (var c = li; c < p.width; c += WG) {
        var v = x[base + c];
        if (p.drop != 0u) {
            v *= drop_factor(mask, base + c);
        }
        if (p.residual != 0u) {
            v += res[base + c];
        }
        x[base + c] = v;
        s += v;
    }
    let mean = reduce_sum(s, li) / f32(p.width);
    var q = 0.0;
    for (var c = li; c < p.width; c += WG) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let inv = 1.0 / sqrt(reduce_sum(q, li) / f32(p.width) + p.eps);
    if (li == 0u) {
        rstd[r] = inv;
    }
    for (var c = li; c < p.width; c += WG) {
        let t = (x[base + c] - mean) * inv;
        xhat[base + c] = t;
        x[base + c] = fma(t, gamma[c], beta[c]);
    }
}
