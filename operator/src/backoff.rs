//! Per-object exponential backoff with jitter for transient reconcile failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// Failure counts per object, turned into growing, jittered requeue delays.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl Backoff {
    /// A backoff that starts at `base` and doubles up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, failures: Mutex::default() }
    }

    /// Records a failure of `key` and returns how long to wait before retrying: `base * 2^n`
    /// capped at `max`, scaled by a random factor in [0.5, 1.0] so retries of many objects spread out.
    pub fn next_delay(&self, key: &str) -> Duration {
        let attempt = {
            let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = failures.entry(key.to_owned()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        let exponential = self.base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        let capped = exponential.min(self.max);
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_with_jitter_and_are_capped() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay("ns/a")).collect();
        for (attempt, delay) in delays.iter().enumerate() {
            let full = Duration::from_secs(1u64 << attempt.min(3));
            assert!(
                *delay <= full && *delay >= full / 2,
                "attempt {attempt}: {delay:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    #[test]
    fn objects_back_off_independently_and_reset_on_success() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(600));
        for _ in 0..4 {
            backoff.next_delay("ns/slow");
        }
        assert!(backoff.next_delay("ns/other") <= Duration::from_secs(10));
        backoff.reset("ns/slow");
        assert!(backoff.next_delay("ns/slow") <= Duration::from_secs(10));
    }
}
