//! Packed, cache-blocked SGEMM (the GotoBLAS/BLIS loop nest) over the micro-kernels in
//! `microkernel.rs`.
//!
//! Loops, outermost first, inside each thread's share of `C`:
//! K blocks of `KC` (192 for AVX2: a 192 x 24 B panel, 18 KiB, stays in the 32 KiB L1 while
//! A panels stream past it; B's block: pre-packed weights, or packed here into per-thread scratch)
//! → M blocks of `MC` rows (A packed into per-thread scratch, sized for L2)
//! → `NR`-column panels of B (one panel, `KC x NR`, stays in L1)
//! → `MR`-row panels of A → one micro-kernel call.
//!
//! Threads split `C` into a grid of row and column ranges chosen to balance tiles: by rows
//! when each thread gets enough of them (the pool hands a thread the same rows in every
//! kernel, so its activations stay in its own L2), else by columns (each thread then streams
//! only its part of the weights, the cost at small batches). Scratch is thread-local and only
//! grows, so steady-state calls do not allocate.
use super::isa::Isa;
use super::microkernel::{self, Epilogue, Prefetch};
use super::pack::{pack_a, pack_a_small, pack_b, AlignedVec, MatRef, PackedB};
use super::scratch;
use super::Activation;
use crate::backend::Pool;

#[derive(Default)]
pub(crate) struct GemmScratch {
    a: AlignedVec,
    pub(crate) b: AlignedVec,
    /// One B panel converted from f16 (`KC x NR` floats, L1-sized).
    f16: AlignedVec,
}

/// Where B comes from.
#[derive(Clone, Copy)]
pub(crate) enum BSrc<'a> {
    Packed(&'a PackedB),
    Strided(MatRef<'a>),
    /// `[k, n]` row-major IEEE half (little-endian bytes), converted while packing.
    F16(&'a [u8]),
}

/// `C`'s base pointer and strides, shared by threads that write disjoint tiles.
#[derive(Clone, Copy)]
pub(crate) struct CMut {
    pub ptr: *mut f32,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: `gemm` gives every thread a disjoint set of `C` elements, and the caller keeps `C`
// borrowed mutably for the whole call.
unsafe impl Send for CMut {}
// SAFETY: as above.
unsafe impl Sync for CMut {}

/// `C = alpha·A·B + beta·C (+ bias) then act`, `A: [m, k]`, `B: [k, n]`, `C: [m, n]`.
///
/// # Safety
/// Every `c.ptr + i*rs + j*cs` (`i < m`, `j < n`) is valid for reads and writes and no other
/// live reference covers it; `a` spans `[m, k]` and a strided `b` spans `[k, n]` (the callers
/// check with `span`); `bias`, if given, has `n` floats. `isa` is available.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: BSrc<'_>,
    beta: f32,
    c: CMut,
    bias: Option<&[f32]>,
    act: Activation,
    pool: &Pool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let (mr, nr, kcb, mcb, kernel) = isa.params();
    if k == 0 {
        let zeros = vec![0.0f32; n];
        let ep = Epilogue {
            alpha,
            beta,
            first: true,
            last: true,
            bias: bias.map_or(std::ptr::null(), |b| b.as_ptr()),
            act,
        };
        for i in 0..m {
            // SAFETY: row `i` of `C` is in bounds by the caller's contract.
            unsafe {
                microkernel::store_tile(
                    &zeros,
                    n,
                    c.ptr.offset(i as isize * c.rs),
                    0,
                    c.cs,
                    1,
                    n,
                    &ep,
                )
            };
        }
        return;
    }
    let (mp, np) = (m.div_ceil(mr), n.div_ceil(nr));
    let act_group = (ACT_COLS / nr).max(1);
    // Below ~2M multiply-adds (one attention head at seq 128) a wake-up and a split cost
    // more than they save; callers parallelize such work across heads instead.
    let threads = if m * n * k < (1 << 21) {
        1
    } else {
        pool.threads()
    };
    // Grid of (row ranges) x (column ranges): fewest tiles on the busiest thread. Ties go to
    // splitting rows when each thread's rows use every weight byte often enough (see
    // `ROW_SPLIT_B_PER_ROW`): the pool gives a thread the same row range in every kernel, so
    // its activations stay in its own L2. Otherwise columns: each thread then streams only
    // its part of the weights, which is the cost at small batches and for large matrices.
    let by_rows = k * n * 4 <= (m / threads) * ROW_SPLIT_B_PER_ROW;
    let (mut mt, mut nt) = (1, 1);
    let mut best = usize::MAX;
    for d in (1..=threads).filter(|d| threads % d == 0) {
        let (tm, tn) = (threads / d, d);
        let cost = mp.div_ceil(tm) * np.div_ceil(tn) * 2
            + usize::from(if by_rows { tn > 1 } else { tm > 1 });
        if cost < best {
            best = cost;
            (mt, nt) = (tm, tn);
        }
    }
    let task = |id: usize| {
        // Capture `c` whole (its `Sync` impl), not its raw-pointer field.
        let c: CMut = c;
        let (ti, tj) = (id / nt, id % nt);
        let (pm0, pm1) = (ti * mp / mt, (ti + 1) * mp / mt);
        let (pn0, pn1) = (tj * np / nt, (tj + 1) * np / nt);
        let (r0, r1) = ((pm0 * mr).min(m), (pm1 * mr).min(m));
        if r0 >= r1 || pn0 >= pn1 {
            return;
        }
        scratch::with(
            |s| &s.gemm,
            |s| {
                let GemmScratch {
                    a: abuf,
                    b: bbuf,
                    f16: hbuf,
                } = s;
                let mut p0 = 0;
                while p0 < k {
                    let kc = kcb.min(k - p0);
                    let last = p0 + kc == k;
                    // With contiguous rows the activation runs on row segments of `ACT_COLS`
                    // columns once their panels are done for this M block (long vector loops
                    // without per-call overhead, on values still in L2), not per 24-float tile
                    // row inside the micro-kernel. After the whole M block (`MC x n`) was too
                    // late: for an FFN up-projection that block outgrows L2, and the GELU pass
                    // then ran from L3 at a third of its in-cache speed.
                    let act_after = last && c.cs == 1 && act != Activation::Identity;
                    let ep_base = Epilogue {
                        alpha,
                        beta,
                        first: p0 == 0,
                        last,
                        bias: std::ptr::null(),
                        act: if act_after { Activation::Identity } else { act },
                    };
                    // Panels of this K block, and the index of panel `pn0` in it.
                    let (bpanels, pfirst): (&[f32], usize) = match b {
                        BSrc::Packed(pb) => (&pb.data.as_slice()[p0 * pb.n_pad..], pn0),
                        BSrc::Strided(bm) => {
                            let ncols = ((pn1 * nr).min(n)) - pn0 * nr;
                            let buf = bbuf.get((pn1 - pn0) * nr * kc);
                            pack_b(buf, bm, n, p0, kc, pn0 * nr, ncols, nr);
                            (&*buf, 0)
                        }
                        // Converted panel by panel just before use (below), so the f32 copy
                        // stays in L1 instead of making a K block round trip through L3.
                        BSrc::F16(_) => (&[], 0),
                    };
                    // The weights `d` panels after panel `jp` in this task's order (the rest of
                    // this K block's panels `pn0..pn1`, then the same ones again for the next M
                    // block (`more_m`) or else the next K block's), where the L2
                    // prefetch goes: a panel `d` ahead in memory belongs to another thread at the
                    // end of this task's columns. None past the last panel, and for B packed
                    // here (already in cache) or converted from f16 panel by panel; the kernels
                    // then prefetch their own panel, which costs a load slot (address 0 would
                    // cost a failed page walk per step).
                    let panel_ahead = |jp: usize, d: usize, more_m: bool| -> Option<usize> {
                        let BSrc::Packed(pb) = b else { return None };
                        let base = pb.data.as_slice().as_ptr() as usize;
                        let (count, idx) = (pn1 - pn0, jp - pn0 + d);
                        if idx < count || more_m {
                            let jp1 = pn0 + idx % count;
                            return Some(base + (p0 * pb.n_pad + jp1 * kc * nr) * 4);
                        }
                        let p1 = p0 + kc;
                        if p1 >= k {
                            return None;
                        }
                        let kc1 = kcb.min(k - p1);
                        let jp1 = pn0 + (idx - count).min(count - 1);
                        Some(base + (p1 * pb.n_pad + jp1 * kc1 * nr) * 4)
                    };
                    let mut i0 = r0;
                    while i0 < r1 {
                        let mc = mcb.min(r1 - i0);
                        let more_m = i0 + mc < r1;
                        // At most 16 rows of large weights on AVX-512: one packed 16-row panel
                        // and the 16 x 16 tile, which reads each weight once (see `small_tile`).
                        let small = small_tile(isa, mc, k, n);
                        let is_small = small.is_some();
                        let apanels = mc.div_ceil(mr);
                        // Full panels of a row-major A are read in place; the rest is packed
                        // (a ragged last panel needs its zero rows, a strided A its copy).
                        let direct = if a.cs == 1 && !is_small { mc / mr } else { 0 };
                        let apack = if is_small {
                            let buf = abuf.get(SMALL_MR * kc);
                            pack_a_small(buf, a, i0, mc, p0, kc);
                            buf
                        } else {
                            let buf = abuf.get((apanels - direct) * mr * kc);
                            pack_a(buf, a, i0 + direct * mr, mc - direct * mr, p0, kc, mr);
                            buf
                        };
                        for jp in pn0..pn1 {
                            let j = jp * nr;
                            let ncur = nr.min(n - j);
                            // Activation over the previous group of panels of this M block
                            // while its `mc x ACT_COLS` block is still in L2 (see `act_after`).
                            if act_after && jp > pn0 && (jp - pn0) % act_group == 0 {
                                apply_act(act, c, i0, mc, j - act_group * nr, j);
                            }
                            let bp: &[f32] = match b {
                                BSrc::F16(bytes) => {
                                    let buf = hbuf.get(kc * nr);
                                    super::f16::pack_b(buf, bytes, n, p0, kc, j, ncur, nr);
                                    buf
                                }
                                _ => &bpanels[(jp - pn0 + pfirst) * kc * nr..][..kc * nr],
                            };
                            // Where this panel's calls send the L2 prefetch: the next panel for
                            // the 16 x 16 tile, `PREFETCH_PANELS` ahead for the others.
                            let distance = if is_small { 1 } else { PREFETCH_PANELS };
                            let ahead =
                                panel_ahead(jp, distance, more_m).unwrap_or(bp.as_ptr() as usize);
                            if let Some(small_kernel) = small {
                                for j0 in (0..ncur).step_by(SMALL_MR) {
                                    let ep = Epilogue {
                                        bias: bias.map_or(std::ptr::null(), |bias| {
                                            bias[j + j0..].as_ptr()
                                        }),
                                        ..ep_base
                                    };
                                    // SAFETY: `apack` holds the `kc x 16` panel, `bp` the
                                    // `kc x NR` panel whose columns `j0..j0+16` are read at row
                                    // stride `NR`; the tile (rows `i0..i0+mc`, columns
                                    // `j+j0..`, at most 16 of each) lies inside `C` (caller's
                                    // contract) and belongs to this task alone; `small_tile`
                                    // offers the kernel only where the CPU has its ISA.
                                    unsafe {
                                        small_kernel(
                                            kc,
                                            apack.as_ptr(),
                                            bp[j0..].as_ptr(),
                                            nr,
                                            c.ptr.offset(
                                                i0 as isize * c.rs + (j + j0) as isize * c.cs,
                                            ),
                                            c.rs,
                                            c.cs,
                                            mc,
                                            (ncur - j0).min(SMALL_MR),
                                            &ep,
                                            small_prefetch(ahead, j0, kc),
                                        )
                                    };
                                }
                                continue;
                            }
                            let ep = Epilogue {
                                bias: bias.map_or(std::ptr::null(), |bias| bias[j..].as_ptr()),
                                ..ep_base
                            };
                            for ip in 0..apanels {
                                let i = i0 + ip * mr;
                                let mcur = mr.min(r1 - i);
                                let pf = l2_prefetch(ahead, kc, nr, ip, apanels);
                                let (ap, ars, aks) = if ip < direct {
                                    // Rows `i..i+MR` (all `< m`), columns `p0..p0+kc`.
                                    (a.data[i * a.rs + p0..].as_ptr(), a.rs as isize, 1)
                                } else {
                                    let panel = &apack[(ip - direct) * kc * mr..][..kc * mr];
                                    (panel.as_ptr(), 1, mr as isize)
                                };
                                // SAFETY: `ap + r*ars + p*aks` (r < MR, p < kc) is inside A's
                                // data (in-place rows exist, `MatRef` covers `[m, k]`) or inside
                                // the packed panel; `bp` holds `kc*NR` floats of the layout
                                // `kernel` expects; the tile `i..i+mcur, j..j+ncur` lies inside
                                // `C` (caller's contract) and belongs to this task alone; `isa`
                                // is available (checked where the packing or call began).
                                unsafe {
                                    kernel(
                                        kc,
                                        ap,
                                        ars,
                                        aks,
                                        bp.as_ptr(),
                                        c.ptr.offset(i as isize * c.rs + j as isize * c.cs),
                                        c.rs,
                                        c.cs,
                                        mcur,
                                        ncur,
                                        &ep,
                                        pf,
                                    )
                                };
                            }
                        }
                        if act_after {
                            // The last (possibly partial) group.
                            let done = (pn1 - pn0 - 1) / act_group * act_group;
                            let j0 = (pn0 + done) * nr;
                            apply_act(act, c, i0, mc, j0, (pn1 * nr).min(n));
                        }
                        i0 += mc;
                    }
                    p0 += kc;
                }
            },
        );
    };
    if let BSrc::Packed(pb) = b {
        debug_assert!(pb.isa == isa && pb.k == k && pb.n == n);
    }
    // Through the pool even for one task: it provides the thread's scratch.
    pool.run(mt * nt, &task);
}

/// The L2 prefetch of A panel `ip` of `strips` that share a B panel (`kc x nr`): the panel
/// `PREFETCH_PANELS` ahead in the task's order (at `ahead`), the first (up to
/// `SPREAD_MAX_STRIPS`) A panels each asking for their share of it.
///
/// The B panel itself comes into L1 while the first A panel reads it; the later A panels
/// find it there. Ahead of that, the panels to come must be on their way into L2. When the
/// first A panel alone asked for all of them (three lines per step, 36 KiB in 192 steps),
/// more lines were in flight than one core tracks, and its loads waited behind them: with
/// each A panel asking for `1/strips` of the panel (one line every few steps at 16 strips)
/// BERT-base (1,128) took 132 ms instead of 149 at one thread and 74 instead of 82 at two,
/// MiniLM (1,16) 2.40 instead of 2.75 ms (`scripts/ab_encoder.sh`, BENCHMARKS.md).
/// Shares smaller than a sixteenth would ask for every line a dozen times while it is in
/// flight (up to 4% slower on BERT-base (8,128) than no spreading), so beyond 16 A panels
/// the first 16 split the panel and the later ones ask for all of it, which by then is in
/// L2 or on its way: against all of them asking for all of it, BERT-base (1,384) 245 ->
/// 232 ms at two threads, MiniLM (1,384) 69.8 -> 65.1 ms at one.
fn l2_prefetch(ahead: usize, kc: usize, nr: usize, ip: usize, strips: usize) -> Prefetch {
    let row = nr * std::mem::size_of::<f32>();
    if ip >= SPREAD_MAX_STRIPS {
        return Prefetch {
            next: ahead,
            step: row,
        };
    }
    // Bytes per step, a multiple of 4; `shares` shares of `kc` steps cover the whole panel
    // (three lines asked for at `next` each step also cover the end of a share).
    let shares = strips.min(SPREAD_MAX_STRIPS);
    let step = row.div_ceil(shares).next_multiple_of(4);
    Prefetch {
        next: ahead + ip * kc * step,
        step,
    }
}

/// The L2 prefetch of the 16 x 16 tile at columns `j0..j0+16` of its panel: the `j0 / 16`-th
/// of the next panel (`ahead`), one line per step, so that the panel's passes (one per 16
/// columns) together ask for every line of the next panel once, in address order.
///
/// The tile reads one line in three of its own panel (rows are 48 floats); asked for at
/// that same stride three panels ahead, BERT-base's weights streamed at 18.7 GB/s on two
/// threads and 10.1 on one; in address order one panel ahead, at 22.5 and 11.7 (768 x 3072
/// products of 16 rows over 340 MB of weights; two threads stream 25 GB/s here at most).
fn small_prefetch(ahead: usize, j0: usize, kc: usize) -> Prefetch {
    const LINE: usize = 64;
    Prefetch {
        next: ahead + j0 / SMALL_MR * kc * LINE,
        step: LINE,
    }
}

/// How many B panels ahead of the one in use `l2_prefetch` asks for (108 KiB at `KC` 192):
/// far enough to cover memory latency at every batch size, near enough to stay in L2.
const PREFETCH_PANELS: usize = 3;

/// Most A panels per B panel over which `l2_prefetch` spreads the prefetch (128 rows).
const SPREAD_MAX_STRIPS: usize = 16;

/// Rows of the small-product tile (`small_tile`).
pub(crate) const SMALL_MR: usize = 16;

/// `(kc, a, b, b_row_stride, c, c_rs, c_cs, mr, nr, epilogue, l2_prefetch)`: the 16 x 16 kernel.
type SmallKernelFn = unsafe fn(
    usize,
    *const f32,
    *const f32,
    usize,
    *mut f32,
    isize,
    isize,
    usize,
    usize,
    &Epilogue,
    Prefetch,
);

/// The 16 x 16 kernel, where an M block of `mc` rows takes it: AVX-512, at most 16 rows, a
/// large weight matrix (`SMALL_TILE_MIN_B`). Such weights stream from memory and are used by
/// one or two 8-row panels; the 8 x 48 tile read each panel twice, the first time at three
/// lines per step, faster than one core streams them, and the second from L1 while the
/// memory idled. The 16 x 16 tile reads each line once, one per step.
fn small_tile(isa: Isa, mc: usize, k: usize, n: usize) -> Option<SmallKernelFn> {
    let wanted = mc <= SMALL_MR && k * n * 4 >= SMALL_TILE_MIN_B;
    #[cfg(all(target_arch = "x86_64", bert_avx512))]
    if wanted && isa == Isa::Avx512 {
        return Some(microkernel::avx512::avx512_16x16);
    }
    let _ = (isa, wanted);
    None
}

/// Smallest weight matrix (bytes) for the 16 x 16 tile. Smaller ones may stay in L3 from one
/// forward pass to the next (all-MiniLM-L6-v2's 0.6-2.4 MB matrices do on this machine),
/// and from L3 the 8 x 48 tile is faster: MiniLM (1,16) 2.90 ms with it, 3.22 ms with the
/// 16 x 16 tile everywhere. BERT-base's 7-9 MB ones (340 MB in all) stream from memory,
/// where the 16 x 16 tile took (1,16) from 35.8 to 32.2 ms.
const SMALL_TILE_MIN_B: usize = 4 << 20;

/// Most weight bytes per row of a thread's share for which `gemm` splits rows rather than
/// columns (each thread then reads all of B). Measured at two threads on the encoder, rows
/// against columns: MiniLM (1,128), 37 KiB of its largest weights per row, 10% faster by
/// rows; BERT-base (1,128), 147 KiB, 6% faster by columns; BERT-base (1,384), 49 KiB, even;
/// BERT-base (8,128), 18 KiB, and MiniLM (1,384) and (8,128), rows ahead.
const ROW_SPLIT_B_PER_ROW: usize = 48 << 10;

/// Columns per activation pass of `gemm` (an `MC x ACT_COLS` block: 96 KiB, in L2).
const ACT_COLS: usize = 192;

/// Applies `act` to rows `i0..i0+rows`, columns `j0..j1` of a `C` with unit column stride.
///
/// # Safety
/// Those elements of `C` are valid for reads and writes and belong to the calling task
/// alone (`gemm`'s contract).
unsafe fn apply_act(act: Activation, c: CMut, i0: usize, rows: usize, j0: usize, j1: usize) {
    for i in i0..i0 + rows {
        // SAFETY: by the contract above (`c.cs == 1`, so the columns are contiguous).
        let row = unsafe {
            std::slice::from_raw_parts_mut(c.ptr.offset(i as isize * c.rs + j0 as isize), j1 - j0)
        };
        act.apply(row);
    }
}
