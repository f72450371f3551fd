// modeling.py: attention_layer, fused per (query row, head), one workgroup each:
// out[i, head] = softmax(q_i k_j^T / sqrt(size) + mask_bias[j]) v over the keys j of the
// query's sequence. The scores live in workgroup memory: the [seq, seq] matrix is never
// written to device memory (the host checks seq <= MAX_KEYS and size <= MAX_SIZE).
// `spans` holds (first key row, number of keys) per query row; q, k, v are column views
// (offset + row stride) of the projections, head h in columns h * size.
// Masked keys stay in the loops: exp(-10000 + s - m) underflows to exactly 0, and
// fma(0, v, acc) == acc, so the result is the CPU's, which skips trailing masked keys.

struct P {
    nq: u32, size: u32, scale: f32, q_off: u32, q_stride: u32, k_off: u32,
    k_stride: u32, v_off: u32, v_stride: u32, out_stride: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> spans: array<u32>;
@group(0) @binding(4) var<storage, read> mask_bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
const MAX_KEYS: u32 = 512u;
const MAX_SIZE: u32 = 256u;
var<workgroup> scores: array<f32, 512>;
var<workgroup> qrow: array<f32, 256>;
var<workgroup> part: array<f32, 64>;

// include: workgroup_reduce.wgsli
// include: attention_scores.wgsli

// Workgroups: x = head, y + 65535 z = query row.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let i = wg.y + 65535u * wg.z;
    if (i >= p.nq) {
        return;
    }
    let start = spans[2u * i];
    let len = spans[2u * i + 1u];
    let col = h * p.size;
    // The barrier inside makes every score visible to every invocation below.
    let inv = attention_scores(i, start, len, col, li);
    for (var d = li; d < p.size; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < len; j++) {
            acc = fma(scores[j], v[p.v_off + (start + j) * p.v_stride + col + d], acc);
        }
        out[i * p.out_stride + col + d] = acc * inv;
    }
}
