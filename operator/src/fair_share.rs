//! Fairness between namespaces: one namespace may hold at most a share of the concurrent Agent
//! reconciles, so a namespace that applies thousands of agents at once leaves slots to the
//! others. A reconcile beyond its namespace's share does nothing and comes back shortly (it
//! costs no API request); the slot it leaves goes to whichever agent is due next.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// How soon a reconcile deferred for its namespace's share comes back.
pub const DEFERRED_RETRY: Duration = Duration::from_millis(250);

/// The in-flight reconciles per namespace, and how many one namespace may hold.
#[derive(Debug, Default)]
pub struct NamespaceShare {
    /// Most reconciles of one namespace at once; 0 means no limit.
    limit: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

impl NamespaceShare {
    /// A share of at most `limit` concurrent reconciles per namespace (0: no limit).
    pub fn new(limit: usize) -> Self {
        Self { limit, in_flight: Mutex::default() }
    }

    /// A turn for a reconcile in `namespace`, or `None` when the namespace holds its share.
    pub fn try_enter(&self, namespace: &str) -> Option<Turn<'_>> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let held = in_flight.entry(namespace.to_owned()).or_default();
        if self.limit > 0 && *held >= self.limit {
            return None;
        }
        *held += 1;
        Some(Turn { share: self, namespace: namespace.to_owned() })
    }
}

/// A reconcile's place in its namespace's share, given back when dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    share: &'a NamespaceShare,
    namespace: String,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.share.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = in_flight.get_mut(&self.namespace) {
            *held -= 1;
            if *held == 0 {
                in_flight.remove(&self.namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_holds_at_most_its_share_and_others_still_get_turns() {
        let share = NamespaceShare::new(2);
        let first = share.try_enter("busy").unwrap();
        let _second = share.try_enter("busy").unwrap();
        assert!(share.try_enter("busy").is_none(), "the busy namespace holds its share");
        let _other = share.try_enter("quiet").expect("another namespace gets a turn");
        drop(first);
        assert!(share.try_enter("busy").is_some(), "a finished reconcile gives its turn back");
    }

    #[test]
    fn no_limit_means_no_deferral() {
        let share = NamespaceShare::new(0);
        let turns: Vec<_> = (0..100).map(|_| share.try_enter("busy").unwrap()).collect();
        assert_eq!(turns.len(), 100);
    }
}
