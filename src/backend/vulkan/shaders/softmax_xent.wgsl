// Soft-max cross-entropy of each row of logits against its label
// (Backend::softmax_cross_entropy), one workgroup per row: loss = log Z - x[label] with
// log Z = max + log(sum exp(x - max)); with the flags, the log-probabilities x - log Z and
// dlogits = (softmax - onehot(label)) * scale[row]. f32 tree sums (the CPU sums in f64:
// the loss moves by ~1e-7 relative).

struct P { rows: u32, width: u32, log_probs: u32, dlogits: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> log_probs: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

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
    var m = -3.402823e38;
    for (var c = li; c < p.width; c += WG) {
        m = max(m, x[base + c]);
    }
    m = reduce_max(m, li);
    var s = 0.0;
    for (var c = li; c < p.width; c += WG) {
        s += exp(x[base + c] - m);
    }
    let log_z = m + log(reduce_sum(s, li));
    let label = labels[r];
    if (li == 0u) {
        losses[r] = log_z - x[base + label];
    }
    let scale = scales[r];
    for (var c = li; c < p.width; c += WG) {
        let lp = x[base + c] - log_z;
        if (p.log_probs != 0u) {
            log_probs[base + c] = lp;
        }
        if (p.dlogits != 0u) {
            var d = exp(lp) * scale;
            if (c == label) {
                d -= scale;
            }
            dlogits[base + c] = d;
        }
    }
}
