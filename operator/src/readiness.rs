//! What `/readyz` reports: whether the operator can do its job, and if not, why.

use std::sync::RwLock;

/// Phases of the operator process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Starting up.
    Starting,
    /// The CRDs are not installed (the chart installs them); the operator waits.
    WaitingForCrds(String),
    /// Another replica leads; this one is a ready standby.
    Standby,
    /// Leading and reconciling.
    Running,
    /// Shutting down.
    Stopping,
}

/// The shared phase.
#[derive(Debug)]
pub struct Readiness(RwLock<Phase>);

impl Default for Readiness {
    fn default() -> Self {
        Self(RwLock::new(Phase::Starting))
    }
}

impl Readiness {
    /// Moves to `phase`, logging transitions.
    pub fn set(&self, phase: Phase) {
        let mut current = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current != phase {
            tracing::info!(?phase, "operator phase");
            *current = phase;
        }
    }

    /// `Ok` with a description when ready, `Err` with the reason otherwise.
    pub fn check(&self) -> Result<&'static str, String> {
        match &*self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
            Phase::Running => Ok("leading and reconciling"),
            Phase::Standby => Ok("standing by for leadership"),
            Phase::Starting => Err("starting".to_owned()),
            Phase::WaitingForCrds(why) => Err(why.clone()),
            Phase::Stopping => Err("shutting down".to_owned()),
        }
    }
}
