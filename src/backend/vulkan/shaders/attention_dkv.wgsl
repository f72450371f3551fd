// Attention's backward pass, second half, one workgroup per (key row, head):
// dk_j = sum_i dS_ij q_i / sqrt(size), dv_j = sum_i drop(P)_ij dout_i over the sequence's
// query rows i; 0 for a key the sequence does not attend to (padding after its last real
// key). `spans` starts with the mask (8 words as in attention_train.wgsl), then per key
// row: first query row, query rows, the key's index j in its sequence, keys attended,
// the sequence's record offset.

struct P {
    rows: u32, size: u32, scale: f32, q_off: u32, q_stride: u32, h: u32,
    p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32,
}
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> spans: array<u32>;
@group(0) @binding(3) var<storage, read> record: array<f32>;
@group(0) @binding(4) var<storage, read> ds: array<f32>;
@group(0) @binding(5) var<storage, read_write> dk: array<f32>;
@group(0) @binding(6) var<storage, read_write> dv: array<f32>;

const WG: u32 = 64u;
var<workgroup> dsc: array<f32, 512>;
var<workgroup> pc: array<f32, 512>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let r = wg.y + 65535u * wg.z;
    if (r >= p.rows) {
        return;
    }
    let mask = DropMask(spans[0], spans[1], bitcast<f32>(spans[2]), bitcast<f32>(spans[3]));
    let drop = spans[4] != 0u;
    let s0 = 8u + 5u * r;
    let qstart = spans[s0];
    let ql = spans[s0 + 1u];
    let j = spans[s0 + 2u];
    let kl = spans[s0 + 3u];
    let base = spans[s0 + 4u] + h * ql * kl;
    let col = h * p.size;
    // Uniform per workgroup.
    if (j >= kl) {
        for (var d = li; d < p.size; d += WG) {
            dk[r * p.h + col + d] = 0.0;
            dv[r * p.h + col + d] = 0.0;
        }
        return;
    }
    // Column j of dS and of drop(P), once per workgroup.
    for (var i = li; i < ql; i += WG) {
        let e = base + i * kl + j;
        dsc[i] = ds[e];
        var pu = record[e];
        if (drop) {
            pu *= drop_factor(mask, e);
        }
        pc[i] = pu;
    }
    workgroupBarrier();
    for (var d = li; d < p.size; d += WG) {
        var ak = 0.0;
        var av = 0.0;
        for (var i = 0u; i < ql; i++) {
            let qi = qstart + i;
            ak = fma(dsc[i], q[p.q_off + qi * p.q_stride + col + d], ak);
            av = fma(pc[i], dout[qi * p.h + col + d], av);
        }
        dk[r * p.h + col + d] = ak * p.scale;
        dv[r * p.h + col + d] = av;
    }
}
