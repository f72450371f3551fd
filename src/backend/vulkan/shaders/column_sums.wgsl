// out[c] += sum over rows r of a[off + r * stride + c] (times b[r * width + c] when
// `product`): bias gradients (Backend::column_sums) and LayerNorm's dgamma (dy · x̂) and
// dbeta. One invocation per column, rows summed in order: deterministic, no atomics.

struct P { rows: u32, width: u32, off: u32, stride: u32, product: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let c = linear_index(wg, nwg, li);
    if (c >= p.width) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        var v = a[p.off + r * p.stride + c];
        if (p.product != 0u) {
            v *= b[r * p.width + c];
        }
        acc += v;
    }
    out[c] += acc;
}
