//! Which micro-kernel a GEMM runs: the instruction sets this build has kernels for, the one
//! this CPU runs best, and each kernel's tile and blocking parameters.

use super::microkernel::{self, Epilogue, Prefetch};

/// Which micro-kernel (and packing layout) a GEMM uses.
///
/// Non-exhaustive: kernels for new instruction sets join as variants (AVX-512 did).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Isa {
    /// Plain Rust, autovectorized for the build's baseline (SSE2 on x86_64, NEON on aarch64).
    Portable,
    /// x86_64 AVX2 + FMA, 4 x 24 tile.
    Avx2,
    /// x86_64 AVX-512F, 8 x 48 tile (builds with Rust 1.89+ only).
    Avx512,
    /// aarch64 NEON (every aarch64 CPU), 8 x 12 tile.
    Neon,
}

/// `(kc, a, a_row_stride, a_k_stride, b_panel, c, c_rs, c_cs, mr, nr, epilogue, l2_prefetch)`.
pub(crate) type KernelFn = unsafe fn(
    usize,
    *const f32,
    isize,
    isize,
    *const f32,
    *mut f32,
    isize,
    isize,
    usize,
    usize,
    &Epilogue,
    Prefetch,
);

impl Isa {
    /// The best kernel this CPU runs (always [`Isa::Portable`] in a build with
    /// `--cfg bert_portable`, which measures the portable path on any CPU).
    pub fn detect() -> Isa {
        if cfg!(bert_portable) {
            Isa::Portable
        } else if Isa::Avx512.available() {
            Isa::Avx512
        } else if Isa::Avx2.available() {
            Isa::Avx2
        } else if Isa::Neon.available() {
            Isa::Neon
        } else {
            Isa::Portable
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(all(target_arch = "x86_64", bert_avx512))]
            Isa::Avx512 => microkernel::avx512::available(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => microkernel::neon::available(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// (MR, NR, kernel) of `attention_head`, whose products are short (K = head size or
    /// sequence length) and narrow (N = head size): AVX2 uses a 6 x 16 tile there and NEON
    /// a 4 x 16 one, which heads of 32 or 64 and sequences of multiples of 16 fill without
    /// padding.
    pub(crate) fn attention_params(self) -> (usize, usize, KernelFn) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (
                microkernel::x86::AVX2_ATTN_MR,
                microkernel::x86::AVX2_ATTN_NR,
                microkernel::x86::avx2_6x16,
            ),
            #[cfg(all(target_arch = "x86_64", bert_avx512))]
            Isa::Avx512 => (
                microkernel::avx512::AVX512_ATTN_MR,
                microkernel::avx512::AVX512_ATTN_NR,
                microkernel::avx512::avx512_8x32,
            ),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => (
                microkernel::neon::NEON_ATTN_MR,
                microkernel::neon::NEON_ATTN_NR,
                microkernel::neon::neon_4x16,
            ),
            _ => {
                let (mr, nr, _, _, kernel) = self.params();
                (mr, nr, kernel)
            }
        }
    }

    /// (MR, NR, KC, MC, kernel). Panics on a kernel this build does not contain.
    pub(crate) fn params(self) -> (usize, usize, usize, usize, KernelFn) {
        match self {
            Isa::Portable => (
                microkernel::PORTABLE_MR,
                microkernel::PORTABLE_NR,
                256,
                64,
                microkernel::portable,
            ),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (
                microkernel::x86::AVX2_MR,
                microkernel::x86::AVX2_NR,
                192,
                128,
                microkernel::x86::avx2,
            ),
            // 192 x 48 B panel: 36 KiB of a 48 KiB L1 (Ice Lake and later).
            #[cfg(all(target_arch = "x86_64", bert_avx512))]
            Isa::Avx512 => (
                microkernel::avx512::AVX512_MR,
                microkernel::avx512::AVX512_NR,
                192,
                256,
                microkernel::avx512::avx512,
            ),
            // 256 x 12 B panel: 12 KiB of the 32 KiB L1 of a Cortex-A53 (64 KiB on A76
            // and later); 128 rows of A x 256: 128 KiB, in every Cortex-A L2.
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => (
                microkernel::neon::NEON_MR,
                microkernel::neon::NEON_NR,
                256,
                128,
                microkernel::neon::neon,
            ),
            #[allow(unreachable_patterns)]
            _ => panic!("{self:?} kernels are not in this build"),
        }
    }
}
