//! One turn at a time per session: a turn reads the session, talks to the model and writes the
//! session back, so two overlapping turns would each write a history without the other's turn.
//! A second turn on a busy session waits its turn (the default) or is refused at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

use super::TurnError;

/// What a turn on a session that is busy with another turn does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BusySession {
    /// Wait until the other turn has committed, then run.
    #[default]
    Queue,
    /// Fail at once with [`TurnError::SessionBusy`] (HTTP 409).
    Reject,
}

/// Held while a turn owns its session.
pub type SessionGuard = OwnedMutexGuard<()>;

/// Above this many entries, entries of sessions nobody holds are swept on the next lock.
const SWEEP_ABOVE: usize = 1024;

/// The per-session locks. Entries are weak, so an idle session costs one map entry until the
/// next sweep, and no memory after it.
#[derive(Default)]
pub struct SessionLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    policy: BusySession,
}

impl SessionLocks {
    /// Locks following `policy`.
    pub fn new(policy: BusySession) -> Self {
        Self { locks: Mutex::default(), policy }
    }

    /// Takes the session `id` for one turn.
    pub async fn lock(&self, id: &str) -> Result<SessionGuard, TurnError> {
        let lock = self.entry(id);
        match self.policy {
            BusySession::Queue => Ok(lock.lock_owned().await),
            BusySession::Reject => lock.try_lock_owned().map_err(|_| TurnError::SessionBusy(id.to_owned())),
        }
    }

    fn entry(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        // Poisoning cannot leave the map inconsistent: every critical section is one map call.
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= SWEEP_ABOVE {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_second_turn_waits_until_the_first_releases_the_session() {
        let locks = SessionLocks::new(BusySession::Queue);
        let first = locks.lock("s").await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.lock("s")).await;
        assert!(waiting.is_err(), "the second turn must wait");
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("t")).await;
        assert!(other.is_ok(), "another session is independent");
        drop(first);
        assert!(tokio::time::timeout(Duration::from_millis(50), locks.lock("s")).await.is_ok());
    }

    #[tokio::test]
    async fn with_reject_a_busy_session_is_refused_at_once() {
        let locks = SessionLocks::new(BusySession::Reject);
        let _first = locks.lock("s").await.unwrap();
        assert!(matches!(locks.lock("s").await, Err(TurnError::SessionBusy(id)) if id == "s"));
    }

    #[tokio::test]
    async fn entries_of_released_sessions_are_swept() {
        let locks = SessionLocks::new(BusySession::Queue);
        for i in 0..=SWEEP_ABOVE {
            drop(locks.lock(&i.to_string()).await.unwrap());
        }
        let _held = locks.lock("held").await.unwrap();
        assert!(locks.locks.lock().unwrap().len() <= 2, "only the new and the held entry remain");
    }
}
