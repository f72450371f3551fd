//! Per-thread scratch of the CPU kernels (packing buffers, attention tiles, quantized
//! activations), owned by the context's [`Pool`](crate::backend::Pool): one set per pool
//! thread, freed with the context — not thread-locals that outlive it.
//!
//! While a pool runs a job, each of its threads has its own set installed as the thread's
//! current scratch ([`install`]); a kernel takes the piece it needs with [`with`]. A pool
//! made inside a task (`Pool::single()` for a task's small products) keeps the scratch the
//! task's thread already has.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use super::attention::AttnScratch;
use super::gemm::GemmScratch;
use crate::backend::int8::QuantizedRows;

/// One thread's scratch. Each piece has its own lock, so a kernel holding one (attention's
/// tiles) can call another that takes a different one (a product's packing buffers); the
/// locks are never contended (one thread uses a set at a time).
#[derive(Default)]
pub(crate) struct Scratch {
    pub gemm: Mutex<GemmScratch>,
    pub attn: Mutex<AttnScratch>,
    /// The attention backward pass's `[queries, keys]` tiles.
    pub tiles: Mutex<(Vec<f32>, Vec<f32>)>,
    pub int8: Mutex<QuantizedRows>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
}

thread_local! {
    /// The scratch set of the pool job this thread is running, or null.
    static CURRENT: Cell<*const Scratch> = const { Cell::new(std::ptr::null()) };
}

/// Restores the thread's previous current scratch when dropped.
pub(crate) struct Installed(Option<*const Scratch>);

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            CURRENT.with(|c| c.set(prev));
        }
    }
}

/// Makes `s` the calling thread's current scratch until the guard drops, unless the thread
/// already has one (a pool run inside another pool's task keeps the outer set).
pub(crate) fn install(s: &Scratch) -> Installed {
    CURRENT.with(|c| {
        if c.get().is_null() {
            c.set(s);
            Installed(Some(std::ptr::null()))
        } else {
            Installed(None)
        }
    })
}

/// The calling thread's current scratch, if it runs a pool job.
pub(crate) fn current<'a>() -> Option<&'a Scratch> {
    let p = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` is non-null only between `install` and the drop of its guard, which
    // the pool holds while the job runs; the set lives in the pool, which outlives its jobs.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Runs `f` with the piece `pick` of the thread's current scratch (a temporary one when the
/// thread runs no pool job: only kernels called outside any pool).
pub(crate) fn with<T: Default, R>(
    pick: fn(&Scratch) -> &Mutex<T>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    match current() {
        Some(s) => f(&mut lock(pick(s))),
        None => f(&mut T::default()),
    }
}

/// The lock, poisoned or not (a panicking task leaves buffers, not invariants).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
