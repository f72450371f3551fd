// x[i] *= mask(start + i) for i < n (Backend::dropout; the mask is `Dropout::factor`).

struct P { n: u32, start: u32, key_lo: u32, key_hi: u32, threshold: f32, scale: f32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i < p.n) {
        x[i] *= drop_factor(DropMask(p.key_lo, p.key_hi, p.threshold, p.scale), p.start + i);
    }
}
