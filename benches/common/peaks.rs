//! Register-only compute peaks of one core, measured in the running process, so that kernel
//! throughput can be read as a fraction of what this machine does at that moment.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::Instant;

/// Register-only peaks of one core in this run, in GOP/s: f32 FMA (12 independent chains of
/// `vfmadd`, on zmm registers where the CPU has AVX-512F, else ymm) and AVX2 int8 (`vpmaddubsw` + `vpmaddwd` + `vpaddd`, 8 chains, the AVX2 kernel's
/// instruction mix). Their ratio is the most int8/f32 speed-up the AVX2 kernel can show.
pub fn measured_peaks() -> Option<(f64, f64)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return None;
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma_loop(iters: usize) -> f32 {
            let mut acc = [_mm256_set1_ps(0.0); 12];
            let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, a, b);
                }
            }
            let mut out = [0.0f32; 8];
            for v in acc {
                // SAFETY: `out` has room for 8 floats.
                unsafe {
                    _mm256_storeu_ps(
                        out.as_mut_ptr(),
                        _mm256_add_ps(v, _mm256_loadu_ps(out.as_ptr())),
                    )
                };
            }
            out[0]
        }
        #[target_feature(enable = "avx2")]
        unsafe fn int8_loop(iters: usize, x: i32) -> i32 {
            let mut acc = [_mm256_setzero_si256(); 8];
            let w: [__m256i; 8] =
                std::array::from_fn(|v| _mm256_set1_epi32(x ^ (v as i32 * 0x0101)));
            let (mut a, step, ones) = (
                _mm256_set1_epi32(x),
                _mm256_set1_epi8(1),
                _mm256_set1_epi16(1),
            );
            for _ in 0..iters {
                // A new activation vector each round, so nothing is loop-invariant.
                a = _mm256_add_epi8(a, step);
                for (v, wv) in acc.iter_mut().zip(&w) {
                    *v =
                        _mm256_add_epi32(*v, _mm256_madd_epi16(_mm256_maddubs_epi16(a, *wv), ones));
                }
            }
            let mut out = [0i32; 8];
            for v in acc {
                // SAFETY: `out` has room for 8 i32.
                unsafe {
                    let o = _mm256_loadu_si256(out.as_ptr() as *const __m256i);
                    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, _mm256_add_epi32(v, o));
                }
            }
            out[0]
        }
        #[cfg(bert_avx512)]
        #[target_feature(enable = "avx512f")]
        #[clippy::msrv = "1.89"]
        unsafe fn fma512_loop(iters: usize) -> f32 {
            let mut acc = [_mm512_set1_ps(0.0); 12];
            let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..iters {
                for v in acc.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, a, b);
                }
            }
            let mut s = _mm512_setzero_ps();
            for v in acc {
                s = _mm512_add_ps(s, v);
            }
            _mm512_reduce_add_ps(s)
        }
        #[cfg(bert_avx512)]
        let wide = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(bert_avx512))]
        let wide = false;
        let iters = 2_000_000;
        let (mut f, mut q) = (f64::MAX, f64::MAX);
        // The fastest of many short runs: on a loaded machine some are undisturbed.
        for _ in 0..15 {
            let t = Instant::now();
            if wide {
                // SAFETY: AVX-512F was detected above.
                #[cfg(bert_avx512)]
                black_box(unsafe { fma512_loop(black_box(iters)) });
            } else {
                // SAFETY: AVX2 and FMA were detected above.
                black_box(unsafe { fma_loop(black_box(iters)) });
            }
            f = f.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            // SAFETY: AVX2 was detected above.
            black_box(unsafe { int8_loop(black_box(iters), black_box(0x0203_0405)) });
            q = q.min(t.elapsed().as_secs_f64());
        }
        // 12 x 8 (or 16) FMAs and 8 x 32 int8 multiply-adds per iteration, 2 operations each.
        let lanes = if wide { 16 } else { 8 };
        Some((
            (iters * 12 * lanes * 2) as f64 / f / 1e9,
            (iters * 8 * 32 * 2) as f64 / q / 1e9,
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}
