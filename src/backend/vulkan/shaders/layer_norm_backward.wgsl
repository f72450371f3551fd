// LayerNorm's backward pass for the normalised sum (Backend::layer_norm_backward), one
// workgroup per row: dsum = (1/σ)(dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)), dx̂ = dy · gamma;
// with `branch`, also dsum times the dropout mask (or a copy) into `dz`. The moments are
// f32 tree sums (the CPU sums them in f64; WGSL has no f64). dgamma and dbeta are column
// sums over rows (column_sums.wgsl).

struct P {
    rows: u32, width: u32, branch: u32, drop: u32, key_lo: u32, key_hi: u32,
    threshold: f32, scale: f32, p8: u32, p9: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> xhat: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dsum: array<f32>;
@group(0) @binding(5) var<storage, read_write> dz: array<f32>;

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
    var s1 = 0.0;
    var s2 = 0.0;
    for (var c = li; c < p.width; c += WG) {
        let g = dy[base + c] * gamma[c];
        s1 += g;
        s2 = fma(g, xhat[base + c], s2);
    }
    let m1 = reduce_sum(s1, li) / f32(p.width);
    let m2 = reduce_sum(s2, li) / f32(p.width);
    let inv = rstd[r];
    let mask = DropMask(p.key_lo, p.key_hi, p.threshold, p.scale);
    for (var c = li; c < p.width; c += WG) {
        let g = dy[base + c] * gamma[c];
        let v = inv * (g - m1 - xhat[base + c] * m2);
        dsum[base + c] = v;
        if (p.branch != 0u) {
            var z = v;
            if (p.drop != 0u) {
                z *= drop_factor(mask, base + c);
            }
            dz[base + c] = z;
        }
    }
}
