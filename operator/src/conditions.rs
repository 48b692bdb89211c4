//! Status conditions: computed fresh on every reconcile, merged with the previous ones so that
//! `lastTransitionTime` moves only when a condition's status flips.

pub use agent_crds::conditions::Status;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition as computed by a reconcile, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    /// Condition type.
    pub type_: &'static str,
    /// Its status.
    pub status: Status,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl Computed {
    /// A condition that holds.
    pub fn yes(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status: Status::True, reason, message: message.into() }
    }

    /// A condition that does not hold.
    pub fn no(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status: Status::False, reason, message: message.into() }
    }

    /// A condition not known yet.
    pub fn unknown(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self { type_, status: Status::Unknown, reason, message: message.into() }
    }
}

/// Turns computed conditions into API conditions, keeping each previous `lastTransitionTime`
/// whose status did not change and stamping `now` on the ones that flipped or are new.
pub fn merge(previous: &[Condition], computed: Vec<Computed>, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    computed
        .into_iter()
        .map(|c| {
            let last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && Status::of(&p.status) == c.status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_owned(),
                status: c.status.to_string(),
                reason: c.reason.to_owned(),
                message: c.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    #[test]
    fn transition_time_is_kept_while_status_holds_and_moves_when_it_flips() {
        let first =
            merge(&[], vec![Computed::no("Ready", "PodNotReady", "starting")], Some(1), &at("2026-01-01T00:00:00Z"));
        let same = merge(
            &first,
            vec![Computed::no("Ready", "PodNotReady", "still starting")],
            Some(1),
            &at("2026-01-01T00:05:00Z"),
        );
        assert_eq!(same[0].last_transition_time, at("2026-01-01T00:00:00Z"));
        assert_eq!(same[0].message, "still starting");
        let flipped =
            merge(&same, vec![Computed::yes("Ready", "PodReady", "serving")], Some(2), &at("2026-01-01T00:10:00Z"));
        assert_eq!(flipped[0].last_transition_time, at("2026-01-01T00:10:00Z"));
        assert_eq!(flipped[0].observed_generation, Some(2));
    }
}
