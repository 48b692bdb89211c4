//! Group commit for the embedded store: one writer at a time applies every queued write and
//! then flushes once for all of them, so concurrent writers share a flush (an fsync of each
//! segment file) instead of waiting for one flush each. Updates and flushes never overlap,
//! which qdrant-edge 0.7.2 requires (its `flush` panics if an update runs beside it).

use std::sync::mpsc::{self, SyncSender, TryRecvError};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::vector::VectorError;

/// Serialises the writes and flushes of one store, grouping concurrent writes under one flush.
pub(super) struct GroupCommit<J> {
    state: Mutex<State<J>>,
    /// Signalled when a batch is finished.
    finished: Condvar,
}

struct State<J> {
    queue: Vec<(J, SyncSender<Result<(), VectorError>>)>,
    /// A writer is applying and flushing a batch.
    leading: bool,
    /// A batch panicked: what reached the disk is unknown, so writes are refused.
    failed: bool,
}

impl<J> GroupCommit<J> {
    pub(super) fn new() -> Self {
        Self { state: Mutex::new(State { queue: Vec::new(), leading: false, failed: false }), finished: Condvar::new() }
    }

    /// Applies `job` and returns its outcome once a flush has covered it. A writer that finds
    /// its job still queued and no batch in progress applies the whole queue and flushes.
    pub(super) fn commit(
        &self,
        job: J,
        apply: impl Fn(J) -> Result<(), VectorError>,
        flush: impl Fn(),
        context: &'static str,
    ) -> Result<(), VectorError> {
        let (done, outcome) = mpsc::sync_channel(1);
        let mut state = self.lock();
        if state.failed {
            return Err(failed(context));
        }
        state.queue.push((job, done));
        loop {
            match outcome.try_recv() {
                Ok(result) => return result,
                Err(TryRecvError::Disconnected) => return Err(failed(context)),
                Err(TryRecvError::Empty) => {}
            }
            if state.leading {
                state = self.finished.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Not done and no batch in flight, so this job is still queued: lead a batch.
            state.leading = true;
            let batch = std::mem::take(&mut state.queue);
            drop(state);
            let leading = Leading(self);
            let outcomes: Vec<_> = batch.into_iter().map(|(job, done)| (done, apply(job))).collect();
            flush();
            for (done, outcome) in outcomes {
                // Capacity 1 and one message: never blocks. A waiter is never gone before this.
                let _ = done.send(outcome);
            }
            drop(leading);
            state = self.lock();
        }
    }

    /// The state is consistent whenever the lock is released (nothing panics while holding it).
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a batch: lets the next writer lead, and on a panic fails every waiting writer.
struct Leading<'a, J>(&'a GroupCommit<J>);

impl<J> Drop for Leading<'_, J> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.leading = false;
        if std::thread::panicking() {
            // The panicking batch's senders are dropped by the unwind; dropping the queued ones
            // too gives every waiting writer an error instead of a wait that never ends.
            state.failed = true;
            state.queue.clear();
        }
        drop(state);
        self.0.finished.notify_all();
    }
}

fn failed(context: &'static str) -> VectorError {
    VectorError::Storage { context, reason: "an earlier write failed midway; reopen the store".to_owned() }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A fake shard: applied jobs become durable only when flushed, and flushing is slow.
    #[derive(Default)]
    struct Fake {
        applied: Mutex<Vec<u32>>,
        durable: Mutex<HashSet<u32>>,
        flushes: AtomicUsize,
    }

    impl Fake {
        fn commit(&self, commit: &GroupCommit<u32>, job: u32) -> Result<(), VectorError> {
            let apply = |job| {
                if job == 999 {
                    return Err(VectorError::EmptyFilter);
                }
                self.applied.lock().expect("applied").push(job);
                Ok(())
            };
            let flush = || {
                std::thread::sleep(Duration::from_millis(5));
                let applied = std::mem::take(&mut *self.applied.lock().expect("applied"));
                self.durable.lock().expect("durable").extend(applied);
                self.flushes.fetch_add(1, Ordering::SeqCst);
            };
            commit.commit(job, apply, flush, "test")
        }
    }

    #[test]
    fn vector_writes_are_acknowledged_only_once_flushed_and_concurrent_writes_share_flushes() {
        let (fake, commit) = (Arc::new(Fake::default()), Arc::new(GroupCommit::new()));
        let threads: Vec<_> = (0..8u32)
            .map(|thread| {
                let (fake, commit) = (Arc::clone(&fake), Arc::clone(&commit));
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let job = thread * 100 + i;
                        fake.commit(&commit, job).expect("write");
                        assert!(
                            fake.durable.lock().expect("durable").contains(&job),
                            "job {job} acknowledged unflushed"
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no writer panicked");
        }
        assert_eq!(fake.durable.lock().expect("durable").len(), 80);
        let flushes = fake.flushes.load(Ordering::SeqCst);
        assert!(flushes < 40, "80 concurrent writes took {flushes} flushes");
    }

    #[test]
    fn vector_write_that_fails_to_apply_reports_its_own_error_only() {
        let (fake, commit) = (Fake::default(), GroupCommit::new());
        assert!(matches!(fake.commit(&commit, 999), Err(VectorError::EmptyFilter)));
        fake.commit(&commit, 1).expect("the next write is unaffected");
        assert!(fake.durable.lock().expect("durable").contains(&1));
    }

    #[test]
    fn vector_writers_waiting_on_a_flush_that_panics_get_an_error_and_later_writes_are_refused() {
        let commit = Arc::new(GroupCommit::<u32>::new());
        let (flushing, flush_started) = mpsc::channel();
        let leader = {
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || {
                let flush = || {
                    flushing.send(()).expect("test waits");
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("flush failed");
                };
                commit.commit(1, |_| Ok(()), flush, "test")
            })
        };
        flush_started.recv().expect("the leader flushes");
        let (report, waiter_outcome) = mpsc::channel();
        let waiter = {
            let commit = Arc::clone(&commit);
            std::thread::spawn(move || report.send(commit.commit(2, |_| Ok(()), || {}, "test")))
        };
        let outcome = waiter_outcome.recv_timeout(Duration::from_secs(10)).expect("the waiter is not left hanging");
        assert!(matches!(outcome, Err(VectorError::Storage { .. })), "{outcome:?}");
        assert!(leader.join().is_err(), "the flush panic reaches its writer");
        waiter.join().expect("waiter").expect("report sent");
        let later = commit.commit(3, |_| Ok(()), || {}, "test");
        assert!(matches!(later, Err(VectorError::Storage { .. })), "{later:?}");
    }
}
