// One vector per sequence (Backend::reduce): its first row, or the mean or max over its real
// tokens (mask bias 0); zeros for a sequence without one. `spans` holds (start, len) per
// sequence. One invocation per (sequence, column).

const FIRST: u32 = 0u;
const MEAN: u32 = 1u;

struct P { seqs: u32, width: u32, how: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> spans: array<u32>;
@group(0) @binding(2) var<storage, read> mask_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i >= p.seqs * p.width) {
        return;
    }
    let s = i / p.width;
    let c = i % p.width;
    let start = spans[2u * s];
    let len = spans[2u * s + 1u];
    if (p.how == FIRST) {
        out[i] = x[start * p.width + c];
        return;
    }
    var acc = 0.0;
    var best = -3.402823e38;
    var count = 0u;
    for (var r = start; r < start + len; r++) {
        if (mask_bias[r] == 0.0) {
            let v = x[r * p.width + c];
            acc += v;
            best = max(best, v);
            count += 1u;
        }
    }
    if (count == 0u) {
        out[i] = 0.0;
    } else if (p.how == MEAN) {
        // The CPU's order: the sum, times the reciprocal of the count.
        out[i] = acc * (1.0 / f32(count));
    } else {
        out[i] = best;
    }
}
