// Attention's backward pass, first half (Backend::attention_backward), one workgroup per
// (query row, head), `spans` as in attention_train.wgsl:
// dP_j = dout_i . v_j (times the dropout mask), dS_j = P_j (dP_j - sum_j dP_j P_j),
// dq_i = dS k / sqrt(size); dS goes to `ds` (the record's layout) for attention_dkv.wgsl,
// which sums over query rows for each key row.

struct P {
    nq: u32, size: u32, scale: f32, k_off: u32, k_stride: u32, v_off: u32,
    v_stride: u32, h: u32, p8: u32, p9: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> spans: array<u32>;
@group(0) @binding(3) var<storage, read> record: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> ds: array<f32>;
@group(0) @binding(6) var<storage, read_write> dq: array<f32>;

const WG: u32 = 64u;
var<workgroup> dsr: array<f32, 512>;
var<workgroup> drow: array<f32, 256>;
var<workgroup> part: array<f32, 64>;

// include: workgroup_reduce.wgsli

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
    for (var d = li; d < p.size; d += WG) {
        drow[d] = dout[i * p.h + col + d];
    }
    workgroupBarrier();
    var dot = 0.0;
    for (var j = li; j < len; j += WG) {
        let vr = p.v_off + (start + j) * p.v_stride + col;
        var dp = 0.0;
        for (var d = 0u; d < p.size; d++) {
            dp = fma(drow[d], v[vr + d], dp);
        }
        if (drop) {
            dp *= drop_factor(mask, rec + j);
        }
        dsr[j] = dp;
        dot = fma(dp, record[rec + j], dot);
    }
    dot = reduce_sum(dot, li);
    for (var j = li; j < len; j += WG) {
        let s = record[rec + j] * (dsr[j] - dot);
        dsr[j] = s;
        ds[rec + j] = s;
    }
    workgroupBarrier();
    for (var d = li; d < p.size; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < len; j++) {
            acc = fma(dsr[j], k[p.k_off + (start + j) * p.k_stride + col + d], acc);
        }
        dq[i * p.h + col + d] = acc * p.scale;
    }
}
