//! Fields the Agent schema accepts but this version does not implement yet. An Agent using one is
//! refused (by the operator with `Accepted=False`, reason `NotYetSupported`; by local mode at
//! start) instead of running without it. Each later release that implements one drops it here.

use crate::agent::{AgentSpec, TaskMode};

/// The fields of `spec` this version does not implement, each as a sentence naming the field.
pub fn unsupported_fields(spec: &AgentSpec) -> Vec<String> {
    let mut fields = Vec::new();
    if spec.task.mode != TaskMode::Chat {
        fields.push(format!("task.mode: {:?} is not implemented by this version (only Chat is)", spec.task.mode));
    }
    fields
}

/// An Agent uses fields this version does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct NotYetSupported(pub Vec<String>);

/// Refuses a spec that uses any field this version does not implement.
pub fn check_supported(spec: &AgentSpec) -> Result<(), NotYetSupported> {
    let fields = unsupported_fields(spec);
    if fields.is_empty() { Ok(()) } else { Err(NotYetSupported(fields)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{BuiltinTool, McpTool, Task, Tool};

    fn mcp(name: &str, require_approval: &[&str]) -> Tool {
        Tool {
            name: name.into(),
            mcp: Some(McpTool {
                url: "http://mcp:8000/mcp".into(),
                require_approval: require_approval.iter().map(|s| (*s).to_owned()).collect(),
                ..McpTool::default()
            }),
            ..Tool::default()
        }
    }

    #[test]
    fn a_chat_agent_with_builtin_tools_uses_nothing_unsupported() {
        let spec = AgentSpec {
            tools: vec![Tool { name: "clock".into(), builtin: Some(BuiltinTool::default()), ..Tool::default() }],
            ..AgentSpec::default()
        };
        assert_eq!(check_supported(&spec), Ok(()));
    }

    #[test]
    fn task_modes_are_named_as_not_implemented_and_mcp_tools_with_approvals_are_not() {
        let spec = AgentSpec {
            task: Task { mode: TaskMode::Schedule, schedule: Some("0 2 * * *".into()), ..Task::default() },
            tools: vec![mcp("tickets", &["get_ticket"]), mcp("search", &[])],
            ..AgentSpec::default()
        };
        assert_eq!(
            unsupported_fields(&spec),
            ["task.mode: Schedule is not implemented by this version (only Chat is)"]
        );
        let once = AgentSpec { task: Task { mode: TaskMode::Once, ..Task::default() }, ..AgentSpec::default() };
        assert_eq!(
            check_supported(&once).unwrap_err().to_string(),
            "task.mode: Once is not implemented by this version (only Chat is)"
        );
    }
}
