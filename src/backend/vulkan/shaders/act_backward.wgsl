// d[i] *= act'(x[i]) for i < n (Backend::activation_backward; for tanh x is its output).
// The derivatives are the CPU's formulas (src/backend/cpu/elementwise.rs).

struct P { n: u32, act: u32, p2: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> d: array<f32>;

fn gelu_tanh_grad(x: f32) -> f32 {
    let c = 0.7978846;
    let a = 0.044715;
    let x2 = x * x;
    let u = c * (x + a * x2 * x);
    // Clamped as on the CPU: exp(88) is finite, so s stays a number for very negative x.
    let e = exp(min(-2.0 * u, 88.0));
    let s = 1.0 / (1.0 + e);
    return s + 2.0 * x * s * (e * s) * c * (1.0 + 3.0 * a * x2);
}

fn gelu_erf_grad(x: f32) -> f32 {
    let z = abs(x) * 0.70710678;
    let t = 1.0 / (0.5 * z + 1.0);
    var q = 0.17087277;
    q = q * t - 0.82215223;
    q = q * t + 1.4885159;
    q = q * t - 1.135204;
    q = q * t + 0.27886807;
    q = q * t - 0.18628806;
    q = q * t + 0.09678418;
    q = q * t + 0.37409196;
    q = q * t + 1.0000237;
    q = q * t - 1.2655122;
    let e = exp(-0.5 * x * x);
    let half_erfc = 0.5 * t * e * exp(q);
    let cdf = select(half_erfc, 1.0 - half_erfc, x > 0.0);
    return cdf + x * 0.3989423 * e;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    switch p.act {
        case 1u: { d[i] *= gelu_tanh_grad(v); }
        case 2u: { d[i] *= gelu_erf_grad(v); }
        case 3u: { d[i] = select(0.0, d[i], v > 0.0); }
        case 4u: { d[i] *= 1.0 - v * v; }
        default: {}
    }
}
