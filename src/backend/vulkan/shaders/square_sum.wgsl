// x *= alpha, and the sum of squares of each 4096-value chunk into partials[chunk]
// (Backend::scale_and_square_sum: the host adds the chunks' sums in f64, in order). f32
// within a chunk: a relative error near 1e-7 · log2(4096), far below the norm's use.

struct P { n: u32, alpha: f32, p2: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;

const WG: u32 = 256u;
const CHUNK: u32 = 4096u;
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let chunk = wg.y * nwg.x + wg.x;
    let start = chunk * CHUNK;
    // Uniform per workgroup: a whole group past the end leaves together (no barrier split).
    if (start >= p.n) {
        return;
    }
    let end = min(start + CHUNK, p.n);
    var acc = 0.0;
    for (var i = start + li; i < end; i += WG) {
        var v = x[i];
        if (p.alpha != 1.0) {
            v *= p.alpha;
            x[i] = v;
        }
        acc = fma(v, v, acc);
    }
    part[li] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            part[li] += part[li + s];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        partials[chunk] = part[0];
    }
}
