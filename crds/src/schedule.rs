//! Task schedules and task generations, shared by the operator (which validates them) and the
//! runtime (which runs them).

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use sha2::{Digest, Sha256};

use crate::agent::Task;

/// A schedule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule {schedule:?} is not a valid cron expression: {reason}")]
pub struct InvalidSchedule {
    /// The schedule as written.
    pub schedule: String,
    /// What the parser said.
    pub reason: String,
}

/// How precise a schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Five fields, minutes (what the Agent schema accepts).
    Minutes,
    /// Six fields, seconds first: only for tests that cannot wait a minute.
    Seconds,
}

/// Parses a cron schedule: 5 fields (minute hour day-of-month month day-of-week) or a macro
/// such as `@daily`, always read in UTC; with [`Precision::Seconds`], a seconds field first.
pub fn parse_schedule(schedule: &str, precision: Precision) -> Result<Cron, InvalidSchedule> {
    let seconds = match precision {
        Precision::Minutes => Seconds::Disallowed,
        Precision::Seconds => Seconds::Required,
    };
    CronParser::builder()
        .seconds(seconds)
        .year(Year::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|error| InvalidSchedule { schedule: schedule.to_owned(), reason: error.to_string() })
}

/// The generation of an Agent's task: a digest of `spec.task`. A `Once` agent runs its input
/// once per generation, so editing the task (and only that) runs it again.
pub fn task_generation(task: &Task) -> String {
    let text = serde_json::to_vec(task).unwrap_or_default();
    let digest = Sha256::digest(&text);
    let prefix: [u8; 8] = digest[..8].try_into().unwrap_or_default();
    format!("{:016x}", u64::from_be_bytes(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::TaskMode;

    #[test]
    fn five_fields_and_macros_parse_and_six_fields_need_the_seconds_knob() {
        for schedule in ["0 2 * * *", "*/5 * * * 1-5", "@hourly", "0 0 1 JAN *"] {
            parse_schedule(schedule, Precision::Minutes).unwrap();
        }
        let error = parse_schedule("*/2 * * * * *", Precision::Minutes).unwrap_err();
        assert!(error.to_string().contains("5 fields"), "{error}");
        parse_schedule("*/2 * * * * *", Precision::Seconds).unwrap();
    }

    #[test]
    fn out_of_range_fields_are_refused_with_the_parser_reason() {
        let error = parse_schedule("61 * * * *", Precision::Minutes).unwrap_err();
        assert_eq!(error.schedule, "61 * * * *");
        assert!(!error.reason.is_empty());
    }

    #[test]
    fn the_generation_changes_with_the_task_and_only_with_it() {
        let once = Task { mode: TaskMode::Once, input: Some("summarise the news".into()), ..Task::default() };
        assert_eq!(task_generation(&once), task_generation(&once.clone()));
        assert_eq!(task_generation(&once).len(), 16);
        let edited = Task { input: Some("summarise the weather".into()), ..once.clone() };
        assert_ne!(task_generation(&once), task_generation(&edited));
    }
}
