//! The thread budget of one context.
//!
//! A `Pool` belongs to a context (one per calling thread); the library never reads
//! environment variables and never starts a global pool. Kernels split their work with
//! [`Pool::run`].
//!
//! The worker threads are started once, in [`Pool::new`], and joined when the pool is dropped.
//! Between calls they spin for a few tens of microseconds (the model calls kernels back to
//! back, and a futex wake-up costs about as much as a small matmul) and then park on a
//! condition variable, so an idle context costs no CPU. The calling thread takes part in
//! every [`Pool::run`], so a pool of `t` threads owns `t - 1` workers.
//!
//! The pool also owns its threads' kernel scratch (`cpu::scratch`): each thread gets its own
//! set while it runs a job, so the buffers belong to the context and go with it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::cpu::scratch::{self, Scratch};

/// How many `spin_loop` rounds a worker polls for new work before it parks (about 30 µs on a
/// current x86 core; short enough not to steal much from other processes on a small machine).
const SPIN_ROUNDS: u32 = 1 << 10;

/// Worker threads owned by one context.
///
/// `Send` (a context may move between threads) but not `Sync`: one thread at a time calls
/// [`Pool::run`].
#[derive(Debug)]
pub struct Pool {
    threads: usize,
    /// `None` for a single-threaded pool.
    shared: Option<Arc<Shared>>,
    /// The calling thread's scratch (the workers' are in `Shared::scratch`), made on first
    /// use: a pool made inside a task (`Pool::single()`) uses its thread's set instead.
    scratch: std::cell::OnceCell<Box<Scratch>>,
    workers: Vec<JoinHandle<()>>,
    /// Makes the pool `!Sync` (two concurrent `run`s would share one job slot).
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// Most chunks a job is cut into (see [`Job`]); larger pools share them.
const MAX_CHUNKS: usize = 16;

/// One call of [`Pool::run`], on the caller's stack while the call lasts.
///
/// The tasks are cut into one contiguous chunk per thread, and thread `p` (the caller is 0)
/// starts on chunk `p`, then helps with the others. So the same thread gets the same rows of
/// every kernel in a layer (row ranges of the dense products, the sequences of attention),
/// and their activations stay in its own L2 from one kernel to the next. With `gemm`
/// splitting rows, MiniLM (8,128) at two threads took 83.3 ms this way and 86.2 ms with one
/// shared counter, where either thread took any task. A thread that is late (descheduled, or
/// still waking) leaves its chunk to the others.
struct Job<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    n: usize,
    chunks: usize,
    /// The next unclaimed task of each chunk; chunk `c` is `c*n/chunks .. (c+1)*n/chunks`.
    next: [AtomicUsize; MAX_CHUNKS],
    /// Tasks finished (or panicked).
    done: AtomicUsize,
    panicked: AtomicBool,
}

impl Job<'_> {
    fn new<'a>(task: &'a (dyn Fn(usize) + Sync), n: usize, threads: usize) -> Job<'a> {
        let chunks = threads.clamp(1, MAX_CHUNKS).min(n.max(1));
        Job {
            task,
            n,
            chunks,
            next: std::array::from_fn(|c| AtomicUsize::new(c.min(chunks) * n / chunks)),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        }
    }

    /// Claims and runs tasks, its own chunk first, until none is left; returns whether it
    /// finished the last one. `me` is the thread's index in the pool (the caller is 0).
    fn work(&self, me: usize) -> bool {
        let mut last = false;
        for k in 0..self.chunks {
            let c = (me + k) % self.chunks;
            let end = (c + 1) * self.n / self.chunks;
            loop {
                let i = self.next[c].fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                if catch_unwind(AssertUnwindSafe(|| (self.task)(i))).is_err() {
                    self.panicked.store(true, Ordering::Relaxed);
                }
                last = self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.n;
            }
        }
        last
    }
}

#[derive(Debug)]
struct Shared {
    /// Bumped (under `lock`) for every new job and for shutdown.
    generation: AtomicU64,
    /// The current job, or null. A worker registers in `active` before reading it, and
    /// `Pool::run` nulls it and then waits for `active` to drain before the job goes away, so
    /// a worker that wakes late never sees a dead job and the caller never waits for a worker
    /// that did not get a CPU in time (on a busy machine the caller may do every task).
    job: AtomicPtr<Job<'static>>,
    active: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    done: Condvar,
    /// Worker `w`'s scratch is `scratch[w - 1]`.
    scratch: Vec<Scratch>,
}

impl Pool {
    /// A pool that runs work on `threads` threads (the caller's thread included); 0 means
    /// all cores.
    pub fn new(threads: usize) -> Pool {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        if threads <= 1 {
            return Pool::single();
        }
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            active: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            done: Condvar::new(),
            scratch: (1..threads).map(|_| Scratch::default()).collect(),
        });
        let mut workers = Vec::with_capacity(threads - 1);
        for w in 1..threads {
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("bert-pool-{w}"))
                .spawn(move || worker(&shared, w));
            match spawned {
                Ok(handle) => workers.push(handle),
                // Out of threads: run with what we have rather than fail a kernel call.
                Err(_) => break,
            }
        }
        Pool {
            threads: workers.len() + 1,
            shared: Some(shared),
            scratch: std::cell::OnceCell::new(),
            workers,
            _not_sync: std::marker::PhantomData,
        }
    }

    /// A pool that runs everything on the calling thread.
    pub fn single() -> Pool {
        Pool {
            threads: 1,
            shared: None,
            scratch: std::cell::OnceCell::new(),
            workers: Vec::new(),
            _not_sync: std::marker::PhantomData,
        }
    }

    /// Number of threads work is split across.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on the piece `pick` of the calling thread's scratch: its current job's set
    /// inside a task, else this pool's own (the pool is not `Sync`: outside jobs only its
    /// owner thread uses it).
    pub(crate) fn with_scratch<T: Default, R>(
        &self,
        pick: fn(&Scratch) -> &Mutex<T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> R {
        let s = scratch::current().unwrap_or_else(|| self.own_scratch());
        f(&mut scratch::lock(pick(s)))
    }

    fn own_scratch(&self) -> &Scratch {
        self.scratch.get_or_init(Box::default)
    }

    /// Calls `task(i)` for every `i in 0..n`, spread over the pool's threads; returns when all
    /// calls have returned. A panic in a task becomes a panic here once every task is done.
    pub fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        let _scratch = match scratch::current() {
            Some(_) => None,
            None => Some(scratch::install(self.own_scratch())),
        };
        let shared = match &self.shared {
            Some(shared) if n > 1 => shared,
            _ => {
                (0..n).for_each(task);
                return;
            }
        };
        let job = Job::new(task, n, self.threads);
        // Lifetime erased: see `Shared::job`; this function does not return before the
        // pointer is withdrawn and every worker that may have read it has deregistered.
        shared.job.store(
            &job as *const Job<'_> as *mut Job<'static>,
            Ordering::SeqCst,
        );
        {
            let _guard = lock(&shared.lock);
            shared.generation.fetch_add(1, Ordering::Release);
        }
        shared.wake.notify_all();

        job.work(0);

        // Tasks claimed by workers may still run.
        let mut spins = 0;
        while job.done.load(Ordering::Acquire) != n {
            if spins < SPIN_ROUNDS * 4 {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let guard = lock(&shared.lock);
            if job.done.load(Ordering::Acquire) != n {
                drop(shared.done.wait(guard));
            }
        }
        shared.job.store(std::ptr::null_mut(), Ordering::SeqCst);
        // Workers that read the pointer before it was withdrawn only find no task left.
        while shared.active.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        if job.panicked.load(Ordering::Relaxed) {
            panic!("a task of Pool::run panicked");
        }
    }
}

fn lock(m: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    // The mutex guards no data, so a poisoned lock is as good as a clean one.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn worker(shared: &Shared, me: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0;
        let mut generation = shared.generation.load(Ordering::Acquire);
        while generation == seen && spins < SPIN_ROUNDS {
            spins += 1;
            std::hint::spin_loop();
            generation = shared.generation.load(Ordering::Acquire);
        }
        if generation == seen {
            let mut guard = lock(&shared.lock);
            loop {
                generation = shared.generation.load(Ordering::Acquire);
                if generation != seen {
                    break;
                }
                guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        }
        seen = generation;
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let ptr = shared.job.load(Ordering::SeqCst);
        if !ptr.is_null() {
            // SAFETY: registered in `active` before the load, so `Pool::run` keeps the job
            // alive until the `fetch_sub` below (see `Shared::job`).
            let job = unsafe { &*ptr };
            let _scratch = scratch::install(&shared.scratch[me - 1]);
            if job.work(me) {
                // Taking the lock orders this wake-up after the caller's check-then-wait.
                drop(lock(&shared.lock));
                shared.done.notify_all();
            }
        }
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.shutdown.store(true, Ordering::Release);
            {
                let _guard = lock(&shared.lock);
                shared.generation.fetch_add(1, Ordering::Release);
            }
            shared.wake.notify_all();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A kernel's scratch is the pool's (it goes with the context), and no thread keeps a
    /// pointer to it after the call.
    #[test]
    fn kernels_use_the_pools_scratch_and_leave_no_thread_local_behind() {
        for threads in [1, 2] {
            let pool = Pool::new(threads);
            let (k, n, rows) = (64, 64, 64);
            let dense = crate::backend::cpu::Dense::new(k, n, vec![0.5; k * n], vec![0.0; n]);
            let (x, mut y) = (vec![1.0; rows * k], vec![0.0; rows * n]);
            dense.forward(&x, rows, &mut y, &pool);
            assert!(y.iter().all(|&v| v == 0.5 * k as f32));
            // A strided B is packed per call: into the caller's (thread 0's) buffers, since
            // so small a product runs on one thread.
            let b = vec![0.25; k * n];
            crate::backend::cpu::sgemm(
                rows,
                k,
                n,
                1.0,
                &x,
                (k as isize, 1),
                &b,
                (1, k as isize),
                0.0,
                &mut y,
                (n as isize, 1),
                &pool,
            );
            assert!(y.iter().all(|&v| v == 0.25 * k as f32));
            assert!(scratch::current().is_none());
            assert!(!scratch::lock(&pool.own_scratch().gemm)
                .b
                .as_slice()
                .is_empty());
        }
    }

    #[test]
    fn runs_every_task_once() {
        // 17 threads: more than `MAX_CHUNKS`, so threads share chunks.
        for threads in [1, 2, 3, 17] {
            let pool = Pool::new(threads);
            assert_eq!(pool.threads(), threads);
            for n in [0, 1, 2, 3, 16, 37] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                pool.run(hits.len(), &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn many_back_to_back_calls_and_parking() {
        let pool = Pool::new(3);
        let total = AtomicUsize::new(0);
        for round in 0..2000 {
            pool.run(3, &|i| {
                total.fetch_add(i + 1, Ordering::Relaxed);
            });
            if round % 500 == 0 {
                // Long enough for the workers to park.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        assert_eq!(total.load(Ordering::Relaxed), 2000 * 6);
    }

    #[test]
    fn uses_more_than_one_thread() {
        let pool = Pool::new(2);
        let ids = Mutex::new(std::collections::HashSet::new());
        // Each task waits for the other to start, which only two threads can do.
        let started = AtomicUsize::new(0);
        pool.run(2, &|_| {
            started.fetch_add(1, Ordering::SeqCst);
            while started.load(Ordering::SeqCst) < 2 {
                std::hint::spin_loop();
            }
            ids.lock().unwrap().insert(std::thread::current().id());
        });
        assert_eq!(ids.lock().unwrap().len(), 2);
    }

    #[test]
    fn pool_is_send_and_moves_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Pool>();
        let pool = Pool::new(2);
        let pool = std::thread::spawn(move || {
            let sum = AtomicUsize::new(0);
            pool.run(10, &|i| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
            assert_eq!(sum.load(Ordering::Relaxed), 45);
            pool
        })
        .join()
        .unwrap();
        assert_eq!(pool.threads(), 2);
    }

    #[test]
    fn task_panic_reaches_the_caller_and_pool_survives() {
        let pool = Pool::new(2);
        for bad in [0, 1] {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.run(2, &|i| {
                    if i == bad {
                        panic!("boom");
                    }
                })
            }));
            assert!(r.is_err());
        }
        let hits = AtomicUsize::new(0);
        pool.run(4, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4);
    }
}
