// Each row to unit L2 norm, x / max(|x|, 1e-12) (Backend::l2_normalize, PyTorch's
// F.normalize). One workgroup per row.

struct P { rows: u32, width: u32, p2: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;

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
    var q = 0.0;
    for (var c = li; c < p.width; c += WG) {
        q += x[base + c] * x[base + c];
    }
    let inv = 1.0 / max(sqrt(reduce_sum(q, li)), 1e-12);
    for (var c = li; c < p.width; c += WG) {
        x[base + c] *= inv;
    }
}
