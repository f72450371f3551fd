// One AdamW update per element (Backend::adamw, optimization.py's AdamWeightDecayOptimizer:
// no bias correction, decoupled decay), zeroing the gradient for the next accumulation.
// The CPU's f32 operations in the CPU's order.

struct P {
    n: u32, lr: f32, beta_1: f32, beta_2: f32, one_minus_beta_1: f32, one_minus_beta_2: f32,
    epsilon: f32, weight_decay: f32, grad_scale: f32, p9: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> value: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    let g = grad[i] * p.grad_scale;
    let mj = p.beta_1 * m[i] + p.one_minus_beta_1 * g;
    let vj = p.beta_2 * v[i] + p.one_minus_beta_2 * (g * g);
    m[i] = mj;
    v[i] = vj;
    var update = mj / (sqrt(vj) + p.epsilon);
    if (p.weight_decay != 0.0) {
        update += p.weight_decay * value[i];
    }
    value[i] -= p.lr * update;
    grad[i] = 0.0;
}
