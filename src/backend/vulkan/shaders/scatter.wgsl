// dx[target] += d[source] for each (source row, target row) pair (Backend::scatter_add,
// Backend::embed_backward), without atomics: the host groups the pairs by target, and one
// invocation per (target, column) adds its sources in their order, as the CPU does.
// `targets` holds (row, first source, number of sources) per distinct target; `sources`
// the source rows, target by target.

struct P { targets: u32, width: u32, p2: u32, p3: u32, p4: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> d: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> sources: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i >= p.targets * p.width) {
        return;
    }
    let t = i / p.width;
    let c = i % p.width;
    let row = targets[3u * t];
    let first = targets[3u * t + 1u];
    let count = targets[3u * t + 2u];
    var acc = dx[row * p.width + c];
    for (var s = first; s < first + count; s++) {
        acc += d[sources[s] * p.width + c];
    }
    dx[row * p.width + c] = acc;
}
