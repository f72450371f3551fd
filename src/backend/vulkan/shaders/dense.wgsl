// tf.layers.dense: y[r, o] = act(sum_k x[r, k] w[k, o] + bias[o]) (Backend::dense).
// A tiled product: each 16x16 workgroup computes a 64x64 tile of y, 4x4 values per
// invocation, staging 64x16 of x and 16x64 of w in workgroup memory (8 KiB) per step of
// k. Edges (rows, k or columns not multiples of the tile) load zeros and skip the stores.
// x and w are read through an offset and (row, column) strides, so a [out, in] kernel needs
// no transposed copy, and training's products with a transposed operand (x^T dy, dy w^T)
// run on this shader too. w holds f32 values, or with w_f16 pairs of
// IEEE halves per word (element i in word i / 2, low half first: the f16 storage of
// `bert convert --dtype f16`, half the memory and bandwidth, widened as it is staged).
// The bias and activation are the epilogue; with `accumulate` the tile is added to y
// (gradients accumulate over micro-batches).

struct P {
    rows: u32, k: u32, n: u32, x_off: u32, x_rs: u32, x_cs: u32,
    w_off: u32, w_rs: u32, w_cs: u32, flags: u32, p10: u32, p11: u32,
}
// Bits of p.flags above the activation code (kernels.rs: DENSE_*).
const BIAS: u32 = 16u;
const W_F16: u32 = 32u;
const ACCUMULATE: u32 = 64u;
var<push_constant> p: P;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// Element i of the kernel, f32 or f16 storage (the flag is uniform: no divergence).
fn weight(i: u32) -> f32 {
    if ((p.flags & W_F16) != 0u) {
        let pair = unpack2x16float(w[i >> 1u]);
        return select(pair.x, pair.y, (i & 1u) == 1u);
    }
    return bitcast<f32>(w[i]);
}

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
// xs[kk * TM + m] and ws[kk * TN + n].
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

// Workgroups: x = column tile, y = row tile (at most 65535 row tiles: 4M rows, checked by
// the host).
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    // Rows lid.y + 16 i, columns lid.x + 16 j: acc_i[j]. Four vec4 registers rather than
    // an array: a driver may keep a dynamically indexed array in memory (lavapipe does).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var e = li; e < TM * TK; e += 256u) {
            // Consecutive invocations read consecutive k of one row of x ...
            let m = e / TK;
            let kk = e % TK;
            let r = row0 + m;
            let kx = k0 + kk;
            var a = 0.0;
            if (r < p.rows && kx < p.k) {
                a = x[p.x_off + r * p.x_rs + kx * p.x_cs];
            }
            xs[kk * TM + m] = a;
            // ... and consecutive columns of one row of w.
            let kw = k0 + e / TN;
            let c = col0 + e % TN;
            var b = 0.0;
            if (kw < p.k && c < p.n) {
                b = weight(p.w_off + kw * p.w_rs + c * p.w_cs);
            }
            ws[e] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let xa = kk * TM + lid.y;
            let wb = kk * TN + lid.x;
            let b = vec4<f32>(ws[wb], ws[wb + 16u], ws[wb + 32u], ws[wb + 48u]);
            acc0 = fma(vec4<f32>(xs[xa]), b, acc0);
            acc1 = fma(vec4<f32>(xs[xa + 16u]), b, acc1);
            acc2 = fma(vec4<f32>(xs[xa + 32u]), b, acc2);
            acc3 = fma(vec4<f32>(xs[xa + 48u]), b, acc3);
        }
        workgroupBarrier();
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        if (r >= p.rows) {
            break;
        }
        let row = accs[i];
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + 16u * j;
            if (c < p.n) {
                var v = row[j];
                if ((p.flags & BIAS) != 0u) {
                    v += bias[c];
                }
                v = activate(v, p.flags & 15u);
                if ((p.flags & ACCUMULATE) != 0u) {
                    v += y[r * p.n + c];
                }
                y[r * p.n + c] = v;
            }
        }
    }
}
