//! The Agent's own tasks: `Once` runs `task.input` once per task generation (a restart does not
//! run it again; editing the Agent's task does), `Schedule` runs it at each cron time (UTC),
//! with a concurrency policy, one catch-up run for times missed while the agent was down, and
//! history limits.
//!
//! Interrupted runs (see [`super::Tasks::recover`]): a `Once` task a restart cut off is retried
//! once, as attempt 2 naming the first; a second interruption leaves it failed. A scheduled run
//! a restart cut off stays failed; the schedule goes on (and its time counts as run, so it is
//! not caught up either).

use std::sync::Arc;

use agent_crds::agent::{ConcurrencyPolicy, TaskMode};
use agent_crds::runtime_config::TaskConfig;
use agent_crds::schedule::{InvalidSchedule, Precision, parse_schedule};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::{Follow, Origin, Submission, TaskError, TaskRecord, Tasks};
use crate::a2a::model::TaskState;
use crate::sessions::RUNNER;

/// Why the runner cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The schedule does not parse.
    #[error(transparent)]
    Schedule(#[from] InvalidSchedule),
    /// The task store failed.
    #[error(transparent)]
    Tasks(#[from] TaskError),
}

/// Starts what the Agent's task mode asks: nothing for `Chat`; the `Once` task (or its retry)
/// if this generation has not run it; the schedule loop. `interrupted` are the tasks
/// [`Tasks::recover`] found cut off.
pub async fn start(tasks: Arc<Tasks>, interrupted: &[TaskRecord], precision: Precision) -> Result<(), RunnerError> {
    let config = tasks.agent().config.task.clone();
    let Some(input) = config.input.clone().filter(|_| config.mode != TaskMode::Chat) else { return Ok(()) };
    match config.mode {
        TaskMode::Chat => Ok(()),
        TaskMode::Once => run_once(&tasks, &config, input, interrupted).await,
        TaskMode::Schedule => {
            let schedule = config.schedule.as_deref().unwrap_or_default();
            let cron = parse_schedule(schedule, precision)?;
            let runner = Scheduled { tasks, cron, config, input };
            let catch_up = runner.missed_run().await?;
            tokio::spawn(runner.run(catch_up));
            Ok(())
        }
    }
}

/// Submits the `Once` task unless this generation already ran it; retries a first attempt a
/// restart cut off.
async fn run_once(
    tasks: &Arc<Tasks>,
    config: &TaskConfig,
    input: String,
    interrupted: &[TaskRecord],
) -> Result<(), RunnerError> {
    let generation = Some(config.generation.clone());
    let records = tasks.records().await?;
    let latest = records.iter().find(|r| r.origin == Origin::Once && r.generation == generation);
    let retry_of = match latest {
        None => None,
        Some(cut) if cut.attempt == 1 && interrupted.iter().any(|i| i.task.id == cut.task.id) => {
            tracing::warn!(task = %cut.task.id, "the Once task was cut off by a restart; retrying it once");
            Some(cut.task.id.clone())
        }
        Some(done) => {
            tracing::info!(task = %done.task.id, "the Once task of this task generation already ran");
            return Ok(());
        }
    };
    let submission = Submission { text: input, origin: Origin::Once, generation, retry_of, ..Submission::default() };
    let (record, _) = tasks.submit(submission, Follow::Detach).await?;
    tracing::info!(task = %record.task.id, "the Once task started");
    Ok(())
}

/// The schedule loop of a `Schedule` agent.
struct Scheduled {
    tasks: Arc<Tasks>,
    cron: Cron,
    config: TaskConfig,
    input: String,
}

fn utc(at: Timestamp) -> Zoned {
    at.to_zoned(TimeZone::UTC)
}

impl Scheduled {
    /// Key of the last scheduled time a run started for, per task generation.
    fn last_key(&self) -> String {
        format!("schedule/{}/last", self.config.generation)
    }

    async fn last_run(&self) -> Result<Option<Timestamp>, TaskError> {
        let last: Option<String> = self.tasks.agent().sessions().record(RUNNER, &self.last_key()).await?;
        Ok(last.and_then(|text| text.parse().ok()))
    }

    async fn remember(&self, at: Timestamp) -> Result<(), TaskError> {
        Ok(self.tasks.agent().sessions().put_record(RUNNER, &self.last_key(), &at.to_string()).await?)
    }

    /// The latest time missed since the last run, when it may still be caught up. A new
    /// schedule (or task generation) starts counting now.
    async fn missed_run(&self) -> Result<Option<Timestamp>, TaskError> {
        let now = Timestamp::now();
        let Some(last) = self.last_run().await? else {
            self.remember(now).await?;
            return Ok(None);
        };
        let Ok(missed) = self.cron.find_previous_occurrence(&utc(now), true) else { return Ok(None) };
        let missed = missed.timestamp();
        if missed <= last {
            return Ok(None);
        }
        let late = now.duration_since(missed).as_secs();
        let deadline = self.config.starting_deadline_seconds.map(i64::from);
        if deadline.is_some_and(|deadline| late > deadline) {
            tracing::warn!(%missed, late, "a scheduled run was missed past its starting deadline; not catching up");
            self.remember(missed).await?;
            return Ok(None);
        }
        Ok(Some(missed))
    }

    async fn run(self, catch_up: Option<Timestamp>) {
        let runner = Arc::new(self);
        if let Some(missed) = catch_up {
            tracing::info!(%missed, "catching up one scheduled run missed while the agent was down");
            runner.fire(missed).await;
        }
        loop {
            let now = Timestamp::now();
            let Ok(next) = runner.cron.find_next_occurrence(&utc(now), false) else {
                tracing::warn!("the schedule has no next time; scheduled runs stop");
                return;
            };
            let next = next.timestamp();
            let wait = now.duration_until(next).unsigned_abs();
            tokio::time::sleep(wait).await;
            runner.fire(next).await;
        }
    }

    /// Starts the run for `at` as the concurrency policy allows.
    async fn fire(self: &Arc<Self>, at: Timestamp) {
        if let Err(error) = self.try_fire(at).await {
            tracing::error!(%at, %error, "starting a scheduled run failed");
        }
    }

    async fn try_fire(self: &Arc<Self>, at: Timestamp) -> Result<(), TaskError> {
        let running = self.running_runs().await?;
        match (self.config.concurrency_policy, running.is_empty()) {
            (_, true) | (ConcurrencyPolicy::Allow, false) => {}
            (ConcurrencyPolicy::Forbid, false) => {
                tracing::info!(%at, running = running.len(), "skipping a scheduled run: the previous one still runs");
                return self.remember(at).await;
            }
            (ConcurrencyPolicy::Replace, false) => {
                for id in running {
                    tracing::info!(%at, task = %id, "canceling the running scheduled run to start the next");
                    self.tasks.cancel(&id).await?;
                }
            }
        }
        self.remember(at).await?;
        let submission = Submission {
            text: self.input.clone(),
            origin: Origin::Schedule,
            generation: Some(self.config.generation.clone()),
            scheduled_for: Some(at.to_string()),
            ..Submission::default()
        };
        let runner = self.clone();
        tokio::spawn(async move {
            match runner.tasks.submit(submission, Follow::Wait).await {
                Ok((record, _)) => {
                    tracing::info!(task = %record.task.id, state = ?record.task.status.state, "scheduled run ended");
                }
                Err(error) => tracing::error!(%error, "a scheduled run could not start"),
            }
            if let Err(error) = runner.prune().await {
                tracing::warn!(%error, "pruning scheduled runs failed");
            }
        });
        Ok(())
    }

    /// The scheduled runs that have not finished.
    async fn running_runs(&self) -> Result<Vec<String>, TaskError> {
        let records = self.tasks.records().await?;
        Ok(records
            .into_iter()
            .filter(|r| r.origin == Origin::Schedule && !r.task.status.state.is_terminal())
            .map(|r| r.task.id)
            .collect())
    }

    /// Deletes finished scheduled runs beyond the history limits, oldest first.
    async fn prune(&self) -> Result<(), TaskError> {
        let records = self.tasks.records().await?;
        let finished = records.iter().filter(|r| r.origin == Origin::Schedule && r.task.status.state.is_terminal());
        let (completed, failed): (Vec<_>, Vec<_>) = finished.partition(|r| r.task.status.state == TaskState::Completed);
        let limits =
            [(completed, self.config.successful_runs_history_limit), (failed, self.config.failed_runs_history_limit)];
        for (runs, keep) in limits {
            for old in runs.into_iter().skip(usize::try_from(keep).unwrap_or(usize::MAX)) {
                self.tasks.delete(old).await?;
            }
        }
        Ok(())
    }
}
