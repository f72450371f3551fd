// modeling.py: embedding_lookup + embedding_postprocessor (before its LayerNorm):
// out[r, c] = word[ids[r], c] + token_type[segments[r], c] + position[positions[r], c].
// `index` holds ids, then segments, then positions, `rows` values each. `word` holds the
// table's rows first_id..first_id + ids (a large table comes in chunks, one dispatch each):
// a row whose id is elsewhere is left to its chunk's dispatch. With `halves` the table holds
// IEEE halves, two per word (element i in word i / 2, low half first), as the dense kernels
// hold f16 weights: half the memory, widened exactly here.

struct P { rows: u32, width: u32, first_id: u32, ids: u32, halves: u32, p5: u32, p6: u32, p7: u32, p8: u32, p9: u32, p10: u32, p11: u32 }
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> word: array<u32>;
@group(0) @binding(1) var<storage, read> token_type: array<f32>;
@group(0) @binding(2) var<storage, read> position: array<f32>;
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_index(wg, nwg, li);
    if (i >= p.rows * p.width) {
        return;
    }
    let r = i / p.width;
    let c = i % p.width;
    if (index[r] < p.first_id || index[r] - p.first_id >= p.ids) {
        return;
    }
    let id = index[r] - p.first_id;
    let seg = index[p.rows + r];
    let pos = index[2u * p.rows + r];
    let e = id * p.width + c;
    var x: f32;
    if (p.halves != 0u) {
        let pair = unpack2x16float(word[e >> 1u]);
        x = select(pair.x, pair.y, (e & 1u) == 1u);
    } else {
        x = bitcast<f32>(word[e]);
    }
    // The CPU's order: word + token type, then + position.
    out[i] = x + token_type[seg * p.width + c] + position[pos * p.width + c];
}
