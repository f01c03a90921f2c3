//! One persistent thread team.
//!
//! A [`Team`] of `n` workers is the calling thread (worker 0) plus `n - 1` threads started once.
//! [`Team::run`] runs one parallel region: every worker calls the closure once with its index,
//! and the call returns when all have finished. Inside a region [`Worker::barrier`] synchronises
//! the team (spin briefly, then sleep). Between regions the threads spin for a short while (so
//! back-to-back layers hand over in microseconds) and then park on a condition variable: an idle
//! team uses no CPU.
//!
//! A region started from inside another region (a kernel calling a kernel) runs inline on the
//! calling worker as a team of one, so nesting never deadlocks. Two threads calling `run` on the
//! same team take turns.

use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{Result, shape_error};

/// Spins before a waiting worker parks (each is one `spin_loop` hint, tens of nanoseconds).
const SPINS: u32 = 20_000;

/// The body of a region: called once per worker.
type Job<'a> = dyn Fn(&Worker<'_>) + Sync + 'a;

/// One worker's view of a running region.
pub struct Worker<'t> {
    /// This worker's index, `0..count`; 0 is the thread that called [`Team::run`].
    pub index: usize,
    /// The number of workers in the region.
    pub count: usize,
    shared: Option<&'t Shared>,
}

impl Worker<'_> {
    /// Waits until every worker of the region has reached this barrier. Every worker must call
    /// it the same number of times. If a worker panicked, the barrier stops waiting (the region's
    /// results are then discarded: `run` panics).
    pub fn barrier(&self) {
        if let Some(shared) = self.shared {
            shared.barrier.wait(self.count, &shared.panicked);
        }
    }

    /// The contiguous share `[start, end)` of `0..total` items for this worker (shares differ
    /// by at most one item).
    pub fn share(&self, total: usize) -> std::ops::Range<usize> {
        split_range(total, self.index, self.count)
    }
}

/// `[start, end)` of part `index` of `0..total` split into `parts` near-equal contiguous parts.
pub fn split_range(total: usize, index: usize, parts: usize) -> std::ops::Range<usize> {
    let parts = parts.max(1);
    let base = total / parts;
    let extra = total % parts;
    let start = index * base + index.min(extra);
    let len = base + usize::from(index < extra);
    start.min(total)..(start + len).min(total)
}

/// Sleep/wake with a short spin first. A waiter spins, then registers as a sleeper and waits on
/// the condition variable; a notifier that made the condition true wakes sleepers only when
/// there are any. Both sides use sequentially consistent atomics, so either the waiter sees the
/// condition or the notifier sees the sleeper (no lost wake-up).
struct Notify {
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Notify {
    fn new() -> Notify {
        Notify {
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        for _ in 0..SPINS {
            if ready() {
                return;
            }
            std::hint::spin_loop();
        }
        let mut guard = self.guard();
        self.sleepers.fetch_add(1, SeqCst);
        while !ready() {
            guard = self.cv.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        self.sleepers.fetch_sub(1, SeqCst);
    }

    fn notify_all(&self) {
        if self.sleepers.load(SeqCst) > 0 {
            let _guard = self.guard();
            self.cv.notify_all();
        }
    }
}

struct Barrier {
    arrived: AtomicUsize,
    generation: AtomicU64,
    notify: Notify,
}

impl Barrier {
    fn wait(&self, count: usize, panicked: &AtomicBool) {
        if count <= 1 {
            return;
        }
        let generation = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == count {
            self.arrived.store(0, SeqCst);
            self.generation.store(generation + 1, SeqCst);
            self.notify.notify_all();
        } else {
            self.notify
                .wait_until(|| self.generation.load(SeqCst) != generation || panicked.load(SeqCst));
        }
    }
}

struct Shared {
    count: usize,
    /// Bumped once per region; workers run the job when it changes.
    epoch: AtomicU64,
    /// The current region's job, valid while `remaining > 0` for the epoch it was set for.
    job: UnsafeCell<Option<*const Job<'static>>>,
    remaining: AtomicUsize,
    shutdown: AtomicBool,
    panicked: AtomicBool,
    start: Notify,
    done: Notify,
    barrier: Barrier,
}

// SAFETY: `job` is written only by the thread holding `Team::run_lock`, and only while no worker
// reads it (before the epoch is bumped, after `remaining` reached 0); workers read it only after
// seeing the new epoch (SeqCst), which orders the write before the read. The job it points to is
// `Sync`. Every other field is an atomic or a lock.
unsafe impl Sync for Shared {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

thread_local! {
    static IN_REGION: Cell<bool> = const { Cell::new(false) };
}

/// A persistent team of worker threads. See the module docs.
pub struct Team {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    run_lock: Mutex<()>,
}

impl Team {
    /// A team of `n` workers (at least 1): the caller plus `n - 1` threads named
    /// `docent-kernels-<i>`. If the system refuses a thread, the team is smaller.
    pub fn new(n: usize) -> Team {
        let n = n.max(1);
        let mut shared = Shared {
            count: n,
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            remaining: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            start: Notify::new(),
            done: Notify::new(),
            barrier: Barrier {
                arrived: AtomicUsize::new(0),
                generation: AtomicU64::new(0),
                notify: Notify::new(),
            },
        };
        // Start threads against a provisional count, then fix the count to those that started.
        let mut threads = Vec::with_capacity(n - 1);
        let mut pending = Vec::with_capacity(n - 1);
        for index in 1..n {
            let (tx, rx) = std::sync::mpsc::channel::<Arc<Shared>>();
            let spawned = std::thread::Builder::new()
                .name(format!("docent-kernels-{index}"))
                .spawn(move || {
                    if let Ok(shared) = rx.recv() {
                        worker_loop(&shared, index);
                    }
                });
            match spawned {
                Ok(handle) => {
                    threads.push(handle);
                    pending.push(tx);
                }
                Err(_) => break,
            }
        }
        shared.count = threads.len() + 1;
        let shared = Arc::new(shared);
        for tx in pending {
            // A thread that already exited cannot receive; it is joined on drop regardless.
            let _ = tx.send(Arc::clone(&shared));
        }
        Team {
            shared,
            threads,
            run_lock: Mutex::new(()),
        }
    }

    /// A team sized to the machine's physical cores ([`physical_cores`]).
    pub fn with_physical_cores() -> Team {
        Team::new(physical_cores())
    }

    /// The number of workers (the caller included).
    pub fn count(&self) -> usize {
        self.shared.count
    }

    /// Runs one parallel region: `f(worker_index, n_workers)` on every worker. Returns when all
    /// have finished. Panics (after every worker has stopped) if any worker panicked.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: F) {
        self.region(|w| f(w.index, w.count));
    }

    /// Like [`Team::run`], with the [`Worker`] (index, count, barrier) passed to the body.
    pub fn region<F: Fn(&Worker<'_>) + Sync>(&self, f: F) {
        let nested = IN_REGION.with(|flag| flag.get());
        if self.shared.count == 1 || nested {
            f(&Worker {
                index: 0,
                count: 1,
                shared: None,
            });
            return;
        }
        let _turn = self.run_lock.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        let job: &Job<'_> = &f;
        // SAFETY: this erases the job's lifetime so that workers can see it. It stays valid:
        // this function does not return (or unwind) before `remaining` is back to 0, i.e. before
        // every worker has finished calling it, and the pointer is cleared before returning.
        let job: *const Job<'static> = unsafe { std::mem::transmute(job as *const Job<'_>) };
        shared.panicked.store(false, SeqCst);
        // SAFETY: no worker reads `job` now (remaining is 0, the epoch not yet bumped) and we
        // hold `run_lock`, so this is the only access.
        unsafe { *shared.job.get() = Some(job) };
        shared.remaining.store(shared.count - 1, SeqCst);
        shared.epoch.fetch_add(1, SeqCst);
        shared.start.notify_all();

        IN_REGION.with(|flag| flag.set(true));
        let mine = catch_unwind(AssertUnwindSafe(|| {
            f(&Worker {
                index: 0,
                count: shared.count,
                shared: Some(shared),
            })
        }));
        if mine.is_err() {
            shared.panicked.store(true, SeqCst);
        }
        IN_REGION.with(|flag| flag.set(false));
        shared
            .done
            .wait_until(|| shared.remaining.load(SeqCst) == 0);
        // SAFETY: every worker has finished with the job (remaining is 0).
        unsafe { *shared.job.get() = None };
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if shared.panicked.load(SeqCst) {
            panic!("a docent-kernels worker panicked during a parallel region");
        }
    }
}

impl Team {
    /// Calls `f(worker, part, slice)` for every part of `data`, part `i` being
    /// `data[offsets[i]..offsets[i + 1]]` (so `offsets` has one more entry than there are
    /// parts, ascending, the last at most `data.len()`). Parts go to whichever worker is free
    /// next, so parts of uneven cost (texts of different lengths) balance out. This is how a
    /// model hands each worker its own rows of a shared output without `unsafe`.
    pub fn for_each_part_mut<T, F>(&self, data: &mut [T], offsets: &[usize], f: F) -> Result<()>
    where
        T: Send,
        F: Fn(&Worker<'_>, usize, &mut [T]) + Sync,
    {
        let ascending = offsets.windows(2).all(|w| w[0] <= w[1]);
        if !ascending || offsets.last().is_some_and(|&end| end > data.len()) {
            return Err(shape_error(
                "Team::for_each_part_mut",
                format!(
                    "offsets must ascend and end within the {} values of data",
                    data.len()
                ),
            ));
        }
        let parts = offsets.len().saturating_sub(1);
        let next = AtomicUsize::new(0);
        let base = PartPtr(data.as_mut_ptr());
        self.region(|w| {
            loop {
                let part = next.fetch_add(1, SeqCst);
                if part >= parts {
                    break;
                }
                let (start, end) = (offsets[part], offsets[part + 1]);
                // SAFETY: offsets ascend and end within `data` (checked), so parts are disjoint
                // and in bounds; each part index is taken by exactly one worker (fetch_add);
                // `data` stays borrowed until the region ends.
                let slice =
                    unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
                f(w, part, slice);
            }
        });
        Ok(())
    }

    /// [`Team::for_each_part_mut`] over equal chunks of `chunk_len` (the last may be shorter):
    /// `f(worker, chunk_index, chunk)`. A `chunk_len` of 0 visits nothing.
    pub fn for_each_chunk_mut<T, F>(&self, data: &mut [T], chunk_len: usize, f: F)
    where
        T: Send,
        F: Fn(&Worker<'_>, usize, &mut [T]) + Sync,
    {
        if chunk_len == 0 || data.is_empty() {
            return;
        }
        let chunks = data.len().div_ceil(chunk_len);
        let next = AtomicUsize::new(0);
        let len = data.len();
        let base = PartPtr(data.as_mut_ptr());
        self.region(|w| {
            loop {
                let chunk = next.fetch_add(1, SeqCst);
                if chunk >= chunks {
                    break;
                }
                let start = chunk * chunk_len;
                let end = (start + chunk_len).min(len);
                // SAFETY: chunks are disjoint and in bounds; each is taken by one worker.
                let slice =
                    unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
                f(w, chunk, slice);
            }
        });
    }
}

/// The base of a buffer whose disjoint parts workers take.
struct PartPtr<T>(*mut T);

impl<T> PartPtr<T> {
    /// The pointer (a method, so closures capture the whole wrapper).
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: only disjoint parts are ever formed from it, each by one worker; `T: Send` because
// those parts are used on other threads.
unsafe impl<T: Send> Sync for PartPtr<T> {}

fn worker_loop(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        shared
            .start
            .wait_until(|| shared.epoch.load(SeqCst) != seen || shared.shutdown.load(SeqCst));
        if shared.shutdown.load(SeqCst) {
            return;
        }
        seen = shared.epoch.load(SeqCst);
        // SAFETY: the epoch changed, so `run` stored the job before bumping it and keeps it alive
        // until this worker decrements `remaining` below.
        let job = unsafe { *shared.job.get() };
        if let Some(job) = job {
            IN_REGION.with(|flag| flag.set(true));
            let worker = Worker {
                index,
                count: shared.count,
                shared: Some(shared),
            };
            // SAFETY: see above: the pointee outlives this call.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(&worker) }));
            IN_REGION.with(|flag| flag.set(false));
            if result.is_err() {
                shared.panicked.store(true, SeqCst);
            }
        }
        if shared.remaining.fetch_sub(1, SeqCst) == 1 {
            shared.done.notify_all();
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        self.shared.start.notify_all();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// One value per worker, for state a region's workers mutate (scratch buffers): worker `i`
/// uses slot `i`. Each slot sits behind its own (uncontended) lock, so the region's closure
/// stays `Fn + Sync`.
pub struct PerWorker<T> {
    slots: Vec<Mutex<T>>,
}

impl<T> PerWorker<T> {
    /// `count` slots (normally [`Team::count`]) made by `make`.
    pub fn new(count: usize, mut make: impl FnMut() -> T) -> PerWorker<T> {
        PerWorker {
            slots: (0..count.max(1)).map(|_| Mutex::new(make())).collect(),
        }
    }

    /// Runs `f` on slot `index` (wrapping around if there are fewer slots than workers).
    pub fn with<R>(&self, index: usize, f: impl FnOnce(&mut T) -> R) -> R {
        let slot = &self.slots[index % self.slots.len()];
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never true (there is at least one slot).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl<T> std::fmt::Debug for PerWorker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerWorker")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("count", &self.count())
            .finish()
    }
}

/// The number of physical cores: distinct (physical id, core id) pairs in `/proc/cpuinfo` on
/// Linux, capped by the threads this process may use; elsewhere (or if that file says nothing)
/// `std::thread::available_parallelism`.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(target_os = "linux")]
    if let Some(cores) = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| physical_cores_in(&text))
    {
        return cores.min(logical).max(1);
    }
    logical
}

/// Counts distinct (physical id, core id) pairs in `/proc/cpuinfo` text; `None` if it has none.
pub fn physical_cores_in(cpuinfo: &str) -> Option<usize> {
    let mut pairs = std::collections::BTreeSet::new();
    for block in cpuinfo.split("\n\n") {
        let mut physical = None;
        let mut core = None;
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim() {
                "physical id" => physical = Some(value.trim().to_owned()),
                "core id" => core = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if let (Some(p), Some(c)) = (physical, core) {
            pairs.insert((p, c));
        }
    }
    (!pairs.is_empty()).then_some(pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_worker_runs_once_per_region() {
        let team = Team::new(3);
        assert_eq!(team.count(), 3);
        for _ in 0..200 {
            let seen: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            team.run(|i, n| {
                assert_eq!(n, 3);
                seen[i].fetch_add(1, SeqCst);
            });
            assert!(seen.iter().all(|s| s.load(SeqCst) == 1));
        }
    }

    #[test]
    fn barrier_orders_phases() {
        let team = Team::new(3);
        let phase1 = AtomicUsize::new(0);
        let wrong = AtomicUsize::new(0);
        for _ in 0..100 {
            phase1.store(0, SeqCst);
            team.region(|w| {
                phase1.fetch_add(1, SeqCst);
                w.barrier();
                if phase1.load(SeqCst) != w.count {
                    wrong.fetch_add(1, SeqCst);
                }
                w.barrier();
            });
        }
        assert_eq!(wrong.load(SeqCst), 0);
    }

    #[test]
    fn nested_regions_run_inline() {
        let team = Team::new(2);
        let total = AtomicUsize::new(0);
        team.run(|_, _| {
            team.run(|i, n| {
                assert_eq!((i, n), (0, 1));
                total.fetch_add(1, SeqCst);
            });
        });
        assert_eq!(total.load(SeqCst), 2);
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_team_survives() {
        let team = Team::new(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(|i, _| {
                if i == 1 {
                    panic!("worker 1 fails");
                }
            })
        }));
        assert!(result.is_err());
        let ran = AtomicUsize::new(0);
        team.run(|_, _| {
            ran.fetch_add(1, SeqCst);
        });
        assert_eq!(ran.load(SeqCst), 2);
    }

    #[test]
    fn per_worker_slots_are_private_to_their_worker() {
        let team = Team::new(3);
        let slots = PerWorker::new(team.count(), Vec::<usize>::new);
        for _ in 0..10 {
            team.run(|i, _| slots.with(i, |v| v.push(i)));
        }
        for i in 0..3 {
            slots.with(i, |v| assert_eq!(v, &vec![i; 10]));
        }
    }

    #[test]
    fn parts_are_visited_once_each_by_one_worker() {
        let team = Team::new(3);
        let mut data = vec![0usize; 100];
        let offsets = [0, 0, 7, 30, 31, 100];
        team.for_each_part_mut(&mut data, &offsets, |w, part, slice| {
            assert!(w.index < w.count);
            for v in slice.iter_mut() {
                *v += part + 1;
            }
        })
        .unwrap();
        for (i, &v) in data.iter().enumerate() {
            let part = offsets
                .windows(2)
                .position(|w| (w[0]..w[1]).contains(&i))
                .unwrap();
            assert_eq!(v, part + 1, "value {i}");
        }
        assert!(
            team.for_each_part_mut(&mut data, &[0, 50, 40], |_, _, _| {})
                .is_err()
        );
        assert!(
            team.for_each_part_mut(&mut data, &[0, 101], |_, _, _| {})
                .is_err()
        );

        let mut data = vec![0u32; 25];
        team.for_each_chunk_mut(&mut data, 4, |_, chunk, slice| {
            assert!(slice.len() == 4 || (chunk == 6 && slice.len() == 1));
            slice.iter_mut().for_each(|v| *v += chunk as u32 + 1);
        });
        assert!(
            data.iter()
                .enumerate()
                .all(|(i, &v)| v == (i / 4) as u32 + 1)
        );
    }

    #[test]
    fn shares_cover_the_range_once() {
        for total in 0..40 {
            for parts in 1..6 {
                let mut next = 0;
                for i in 0..parts {
                    let r = split_range(total, i, parts);
                    assert_eq!(r.start, next);
                    assert!(r.len() <= total / parts + 1);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn counts_physical_cores_from_cpuinfo() {
        let smt = "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                   processor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                   processor\t: 2\nphysical id\t: 0\ncore id\t\t: 1\n\n\
                   processor\t: 3\nphysical id\t: 1\ncore id\t\t: 1\n";
        assert_eq!(physical_cores_in(smt), Some(3));
        assert_eq!(physical_cores_in("processor\t: 0\n"), None);
        assert!(physical_cores() >= 1);
    }

    /// An idle team sleeps: its threads are parked (state `S`) and gather no CPU time.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_team_uses_no_cpu() {
        fn tid_and_ticks(tid: &str) -> (char, u64) {
            let stat =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
            // Fields after the parenthesised name: state is the 1st, utime/stime the 12th/13th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            (state, ticks(11) + ticks(12))
        }
        let team = Team::new(3);
        let tids: Vec<Mutex<String>> = (0..3).map(|_| Mutex::new(String::new())).collect();
        team.run(|i, _| {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            let tid = stat.split_whitespace().next().unwrap_or("").to_owned();
            *tids[i].lock().unwrap() = tid;
        });
        let workers: Vec<String> = tids[1..]
            .iter()
            .map(|t| t.lock().unwrap().clone())
            .collect();
        assert!(workers.iter().all(|t| !t.is_empty()), "{workers:?}");
        // Past their short spin, the workers go to sleep (on a loaded machine the spin itself
        // may wait for a core, so allow it time rather than asserting how long it takes).
        for _ in 0..500 {
            if workers.iter().all(|t| tid_and_ticks(t).0 == 'S') {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let before: Vec<(char, u64)> = workers.iter().map(|t| tid_and_ticks(t)).collect();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let after: Vec<(char, u64)> = workers.iter().map(|t| tid_and_ticks(t)).collect();
        for ((s0, t0), (s1, t1)) in before.iter().zip(&after) {
            assert_eq!((*s0, *s1), ('S', 'S'), "idle workers must be sleeping");
            // One clock tick (10 ms) of slack for the accounting of the wake-up itself.
            assert!(
                t1 - t0 <= 1,
                "an idle worker used {} ticks of CPU in 200 ms",
                t1 - t0
            );
        }
    }
}
