// Helpers prepended to every shader by build.rs (WGSL has no #include).

// Activation codes, as `Act` in src/backend/vulkan/kernels.rs numbers them.
const ACT_IDENTITY: u32 = 0u;
const ACT_GELU_TANH: u32 = 1u;
const ACT_GELU_ERF: u32 = 2u;
const ACT_RELU: u32 = 3u;
const ACT_TANH: u32 = 4u;

// tanh through exp(-2|x|), which never overflows: a driver's tanh may compute
// (e^2x - 1) / (e^2x + 1) and return NaN (inf / inf) for large |x|.
fn tanh_safe(x: f32) -> f32 {
    let t = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - t) / (1.0 + t);
}

// erf by Abramowitz & Stegun 7.1.26 refined: |error| < 1.2e-7 (Numerical Recipes' erfc
// Chebyshev fit), well inside the back end's 1e-4 end-to-end budget.
fn erf_approx(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * exp(poly);
    return sign(x) * (1.0 - erfc);
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: {
            // Google's gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
            return 0.5 * x * (1.0 + tanh_safe(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        case 2u: {
            return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
        }
        case 3u: {
            return max(x, 0.0);
        }
        case 4u: {
            return tanh_safe(x);
        }
        default: {
            return x;
        }
    }
}

// The linear index of an invocation in a dispatch of 256-wide workgroups laid out over x
// then y (a dispatch has at most 65535 groups per dimension; the host splits bigger ones).
fn linear_index(wg: vec3<u32>, nwg: vec3<u32>, local: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + local;
}

// MurmurHash3's finalizer (`fmix32` in src/backend/ops.rs).
fn fmix32(h0: u32) -> u32 {
    var h = h0;
    h ^= h >> 16u;
    h *= 0x85ebca6bu;
    h ^= h >> 13u;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16u);
}

// A dropout mask (`Dropout` in src/backend/ops.rs) as shaders receive it: the key's two
// words, the f32 threshold and scale.
struct DropMask { key_lo: u32, key_hi: u32, threshold: f32, scale: f32 }

// `Dropout::factor(i)`: `dropout_hash` with the index's high word 0 (a device buffer holds
// fewer than 2^32 values), so every back end drops the same units.
fn drop_factor(d: DropMask, i: u32) -> f32 {
    let h = fmix32((i * 0x9e3779b9u) ^ d.key_lo);
    let g = fmix32(h ^ d.key_hi);
    return select(0.0, d.scale, f32(g >> 8u) < d.threshold);
}
