//! The thread budget of one context.
//!
//! A `Pool` belongs to a context (one per calling thread); the library never reads
//! environment variables and never starts a global pool. Kernels split their work with
//! [`Pool::run`].

/// Worker threads owned by one context.
#[derive(Debug)]
pub struct Pool {
    threads: usize,
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
        Pool { threads }
    }

    /// A pool that runs everything on the calling thread.
    pub fn single() -> Pool {
        Pool { threads: 1 }
    }

    /// Number of threads work is split across.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Calls `task(i)` for every `i in 0..n`, spread over the pool's threads; returns when all
    /// calls have returned.
    pub fn run(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        let workers = self.threads.min(n);
        if workers <= 1 {
            (0..n).for_each(task);
            return;
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                break;
            }
            task(i);
        };
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(work);
            }
            work();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_task_once() {
        for threads in [1, 2, 3] {
            let pool = Pool::new(threads);
            let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            pool.run(hits.len(), &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }
}
