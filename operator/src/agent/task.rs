//! The `Once` task as the operator sees it: the runtime reports its last task in
//! `status.lastTask`; the one that ran for the current task generation decides `TaskSucceeded`
//! and, with `completionPolicy: Suspend`, whether the agent is scaled to zero. Pure.

use agent_crds::Agent;
use agent_crds::agent::{CompletionPolicy, TaskMode};
use agent_crds::conditions::{TASK_SUCCEEDED, reason};
use agent_crds::schedule::task_generation;

use crate::conditions::Computed;

/// `lastTask.origin` of the task a `Once` agent runs by itself.
pub const ONCE_ORIGIN: &str = "once";

/// Where a `Once` agent's task for the current task generation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnceTask {
    /// Not started or not finished (or the last task reported ran for another generation).
    Pending,
    /// Completed.
    Completed,
    /// Failed or cancelled, with the runtime's summary.
    Failed(String),
}

/// The state of the agent's `Once` task; `None` for the other modes.
pub fn once_task(agent: &Agent) -> Option<OnceTask> {
    if agent.spec.task.mode != TaskMode::Once {
        return None;
    }
    let generation = task_generation(&agent.spec.task);
    let current = agent
        .status
        .as_ref()
        .and_then(|s| s.last_task.as_ref())
        .filter(|t| t.origin == ONCE_ORIGIN && t.task_generation.as_deref() == Some(generation.as_str()));
    Some(match current.map(|t| (t.state.as_str(), t)) {
        Some(("completed", _)) => OnceTask::Completed,
        Some(("failed" | "cancelled", task)) => OnceTask::Failed(task.summary.clone().unwrap_or_default()),
        _ => OnceTask::Pending,
    })
}

/// `TaskSucceeded` of a `Once` agent; `None` for the other modes, which have no such condition.
pub fn task_condition(agent: &Agent) -> Option<Computed> {
    Some(match once_task(agent)? {
        OnceTask::Completed => Computed::yes(TASK_SUCCEEDED, reason::TASK_COMPLETED, "the task completed"),
        OnceTask::Failed(summary) => Computed::no(TASK_SUCCEEDED, reason::TASK_FAILED, summary),
        OnceTask::Pending => Computed::unknown(TASK_SUCCEEDED, reason::TASK_PENDING, "the task has not finished yet"),
    })
}

/// Whether the agent is scaled to zero because its `Once` task finished and its
/// `completionPolicy` is `Suspend`. Editing `spec.task` starts a new generation, which runs.
pub fn suspended_after_task(agent: &Agent) -> bool {
    agent.spec.task.completion_policy == Some(CompletionPolicy::Suspend)
        && once_task(agent).is_some_and(|task| task != OnceTask::Pending)
}

#[cfg(test)]
mod tests {
    use agent_crds::agent::{Task, TaskSummary};
    use agent_crds::conditions::Status;

    use super::*;

    fn once(policy: Option<CompletionPolicy>, last: Option<(&str, &str, bool)>) -> Agent {
        let task =
            Task { mode: TaskMode::Once, input: Some("sum up".into()), completion_policy: policy, ..Task::default() };
        let generation = task_generation(&task);
        let mut agent = Agent::new("a", agent_crds::AgentSpec { task, ..Default::default() });
        agent.status = last.map(|(state, origin, current)| agent_crds::AgentStatus {
            last_task: Some(TaskSummary {
                id: "t1".into(),
                state: state.into(),
                origin: origin.into(),
                task_generation: Some(if current { generation.clone() } else { "0123456789abcdef".into() }),
                summary: Some("model unreachable".into()),
                ..TaskSummary::default()
            }),
            ..Default::default()
        });
        agent
    }

    #[test]
    fn task_succeeded_follows_the_once_task_of_the_current_generation() {
        let status = |agent: &Agent| task_condition(agent).map(|c| (c.status, c.reason, c.message));
        assert_eq!(status(&once(None, None)).unwrap().1, reason::TASK_PENDING);
        assert_eq!(status(&once(None, Some(("running", "once", true)))).unwrap().0, Status::Unknown);
        assert_eq!(status(&once(None, Some(("completed", "once", true)))).unwrap().0, Status::True);
        assert_eq!(
            status(&once(None, Some(("cancelled", "once", true)))),
            Some((Status::False, reason::TASK_FAILED, "model unreachable".to_owned()))
        );
        assert_eq!(status(&once(None, Some(("completed", "once", false)))).unwrap().1, reason::TASK_PENDING);
        assert_eq!(status(&once(None, Some(("completed", "api", true)))).unwrap().1, reason::TASK_PENDING);
        let mut chat = once(None, Some(("completed", "once", true)));
        chat.spec.task.mode = TaskMode::Chat;
        assert_eq!(task_condition(&chat), None, "only Once agents have the condition");
    }

    #[test]
    fn only_a_finished_task_under_suspend_scales_the_agent_to_zero() {
        assert!(suspended_after_task(&once(Some(CompletionPolicy::Suspend), Some(("failed", "once", true)))));
        assert!(suspended_after_task(&once(Some(CompletionPolicy::Suspend), Some(("completed", "once", true)))));
        assert!(!suspended_after_task(&once(Some(CompletionPolicy::Suspend), Some(("running", "once", true)))));
        assert!(!suspended_after_task(&once(Some(CompletionPolicy::Suspend), Some(("completed", "once", false)))));
        assert!(!suspended_after_task(&once(Some(CompletionPolicy::Keep), Some(("completed", "once", true)))));
        assert!(!suspended_after_task(&once(None, Some(("completed", "once", true)))));
    }
}
