// Self-attention as training runs it (Backend::attention with a record or dropout), one
// workgroup per (query row, head): P = softmax(q k^T / sqrt(size) + mask_bias) over the
// keys the sequence attends to (up to its last real one, as the CPU counts them), P
// recorded in the CPU's layout ([heads, queries, keys] per sequence), then
// out = drop(P) v with mask element = P's index in the record (the CPU's indices, so the
// same units drop). `spans` starts with the mask (key words, threshold and scale bits, a
// flag; 8 words), then per query row: first key row, keys, its record row for head 0, and
// the record's head stride.

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
@group(0) @binding(6) var<storage, read_write> record: array<f32>;

const WG: u32 = 64u;
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
    let mask = DropMask(spans[0], spans[1], bitcast<f32>(spans[2]), bitcast<f32>(spans[3]));
    let drop = spans[4] != 0u;
    let s0 = 8u + 4u * i;
    let start = spans[s0];
    let len = spans[s0 + 1u];
    let rec = spans[s0 + 2u] + h * spans[s0 + 3u];
    let col = h * p.size;
    let inv = attention_scores(i, start, len, col, li);
    // Each invocation rescales the scores it wrote; the barrier then shows them to all.
    for (var j = li; j < len; j += WG) {
        let pj = scores[j] * inv;
        record[rec + j] = pj;
        var used = pj;
        if (drop) {
            used *= drop_factor(mask, rec + j);
        }
        scores[j] = used;
    }
    workgroupBarrier();
    for (var d = li; d < p.size; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < len; j++) {
            acc = fma(scores[j], v[p.v_off + (start + j) * p.v_stride + col + d], acc);
        }
        out[i * p.out_stride + col + d] = acc;
    }
}
