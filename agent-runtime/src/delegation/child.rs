//! What the model asks a child to be, checked against the parent's bounds, and the child
//! `Agent` it becomes (pure). The same bounds are checked again by the operator and, for
//! requests from agent pods, by the chart's ValidatingAdmissionPolicy; checking them here first
//! gives the model a reason it can act on.

use std::collections::BTreeMap;

use agent_crds::Agent;
use agent_crds::agent::{AgentSpec, ApiSettings, Delegation, ModelBinding, Persona, Task};
use agent_crds::references::LocalObjectReference;
use agent_crds::render::{DEPTH_LABEL, PARENT_LABEL};
use agent_crds::runtime_config::{AgentIdentity, DelegationConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Deserialize;

/// Longest Agent name the operator accepts.
pub const MAX_AGENT_NAME: usize = 52;

/// Annotations that keep GitOps tools from pruning or fighting children they did not create.
const GITOPS_ANNOTATIONS: [(&str, &str); 3] = [
    ("argocd.argoproj.io/compare-options", "IgnoreExtraneous"),
    ("argocd.argoproj.io/sync-options", "Prune=false"),
    ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
];

/// A child as the model describes it (the `create_agent` tool's arguments).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChildRequest {
    /// Short name; the child is named `<parent>-<name>`.
    pub name: String,
    /// The child's system prompt.
    pub system_prompt: String,
    /// One line on what it does.
    #[serde(default)]
    pub description: Option<String>,
    /// Standing instructions.
    #[serde(default)]
    pub instructions: Option<String>,
    /// The Model it uses; the parent's own when unset.
    #[serde(default)]
    pub model: Option<String>,
    /// Names of the parent's tool entries it gets.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Whether it may create children of its own (one level fewer than its parent).
    #[serde(default)]
    pub can_delegate: bool,
}

/// Why a child cannot be created; the model reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The name is not usable.
    #[error("the name {0:?} must be 1-20 lowercase letters, digits or '-' (starting with a letter)")]
    BadName(String),
    /// The full name is too long.
    #[error("the child's full name {0:?} is longer than {MAX_AGENT_NAME} characters; choose a shorter name")]
    NameTooLong(String),
    /// The parent has as many children as it may.
    #[error("this agent already has {0} children, its maxChildren; delete one first")]
    TooManyChildren(usize),
    /// The model is not allowed.
    #[error("model {model:?} is not allowed for children; allowed: {allowed}")]
    ModelNotAllowed {
        /// Asked.
        model: String,
        /// Allowed, comma-separated.
        allowed: String,
    },
    /// A tool is not allowed.
    #[error("tool {tool:?} cannot be given to a child; allowed: {allowed}")]
    ToolNotAllowed {
        /// Asked.
        tool: String,
        /// Allowed, comma-separated.
        allowed: String,
    },
    /// Delegating further is beyond the depth bound.
    #[error("a child of this agent cannot delegate: that would exceed this agent's maxDepth")]
    TooDeep,
    /// A child of that name exists.
    #[error("a child named {0} exists already")]
    Exists(String),
}

/// The full name of a child called `short` by the model (a full name is kept as it is).
pub fn full_name(parent: &str, short: &str) -> String {
    if short.starts_with(&format!("{parent}-")) { short.to_owned() } else { format!("{parent}-{short}") }
}

fn valid_short_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Checks `request` against the parent's bounds, given the names of its living children, and
/// builds the child Agent.
pub fn child_agent(
    parent: &AgentIdentity,
    bounds: &DelegationConfig,
    children: &[String],
    request: &ChildRequest,
) -> Result<Agent, Refusal> {
    let short = request.name.strip_prefix(&format!("{}-", parent.name)).unwrap_or(&request.name);
    if !valid_short_name(short) {
        return Err(Refusal::BadName(request.name.clone()));
    }
    let name = full_name(&parent.name, short);
    if name.len() > MAX_AGENT_NAME {
        return Err(Refusal::NameTooLong(name));
    }
    if children.contains(&name) {
        return Err(Refusal::Exists(name));
    }
    if children.len() >= bounds.max_children as usize {
        return Err(Refusal::TooManyChildren(children.len()));
    }
    let own_model = bounds.models.first().cloned().unwrap_or_default();
    let model = request.model.clone().unwrap_or(own_model);
    if !bounds.models.contains(&model) {
        return Err(Refusal::ModelNotAllowed { model, allowed: bounds.models.join(", ") });
    }
    let allowed_tools: Vec<&str> = bounds.tools.iter().map(|t| t.name.as_str()).collect();
    let mut tools = Vec::new();
    for asked in &request.tools {
        let Some(tool) = bounds.tools.iter().find(|t| &t.name == asked) else {
            let allowed = if allowed_tools.is_empty() { "none".to_owned() } else { allowed_tools.join(", ") };
            return Err(Refusal::ToolNotAllowed { tool: asked.clone(), allowed });
        };
        tools.push(tool.clone());
    }
    if request.can_delegate && bounds.max_depth <= 1 {
        return Err(Refusal::TooDeep);
    }
    let delegation = request.can_delegate.then(|| Delegation {
        enabled: true,
        max_children: Some(bounds.max_children),
        max_depth: Some(bounds.max_depth - 1),
        models: bounds.models.clone(),
        tools: request.tools.clone(),
        ttl_seconds_after_finished: bounds.ttl_seconds_after_finished,
    });
    let labels = BTreeMap::from([
        (PARENT_LABEL.to_owned(), parent.name.clone()),
        (DEPTH_LABEL.to_owned(), (parent.depth + 1).to_string()),
        ("app.kubernetes.io/created-by".to_owned(), "agent-runtime".to_owned()),
    ]);
    let annotations = GITOPS_ANNOTATIONS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let owner = parent.uid.clone().map(|uid| OwnerReference {
        api_version: "agent-operator.dev/v1alpha1".into(),
        kind: "Agent".into(),
        name: parent.name.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: None,
    });
    let spec = AgentSpec {
        persona: Persona {
            name: Some(short.to_owned()),
            description: request.description.clone(),
            system_prompt: Some(request.system_prompt.clone()),
            system_prompt_from: None,
        },
        task: Task { instructions: request.instructions.clone(), ..Task::default() },
        model: ModelBinding { model_ref: Some(LocalObjectReference { name: model }), ..ModelBinding::default() },
        tools,
        delegation,
        api: ApiSettings { allowed_namespaces: vec![parent.namespace.clone()], ..ApiSettings::default() },
        ..AgentSpec::default()
    };
    let metadata = ObjectMeta {
        name: Some(name),
        namespace: Some(parent.namespace.clone()),
        labels: Some(labels),
        annotations: Some(annotations),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    Ok(Agent { metadata, spec, status: None })
}

#[cfg(test)]
mod tests {
    use agent_crds::agent::{BuiltinTool, BuiltinToolKind, Tool};

    use super::*;

    fn parent() -> AgentIdentity {
        AgentIdentity { name: "lead".into(), namespace: "team".into(), uid: Some("u-1".into()), depth: 0 }
    }

    fn bounds() -> DelegationConfig {
        let clock = Tool {
            name: "clock".into(),
            builtin: Some(BuiltinTool { kind: BuiltinToolKind::CurrentTime, allowed_urls: Vec::new() }),
            ..Tool::default()
        };
        DelegationConfig {
            max_children: 2,
            max_depth: 2,
            models: vec!["small".into(), "large".into()],
            tools: vec![clock],
            ttl_seconds_after_finished: Some(600),
        }
    }

    fn request(name: &str) -> ChildRequest {
        ChildRequest {
            name: name.into(),
            system_prompt: "You research.".into(),
            description: None,
            instructions: None,
            model: None,
            tools: Vec::new(),
            can_delegate: false,
        }
    }

    #[test]
    fn a_child_is_owned_labelled_bounded_and_left_alone_by_gitops() {
        let asked = ChildRequest { tools: vec!["clock".into()], can_delegate: true, ..request("researcher") };
        let child = child_agent(&parent(), &bounds(), &[], &asked).unwrap();
        assert_eq!(child.metadata.name.as_deref(), Some("lead-researcher"));
        let labels = child.metadata.labels.as_ref().unwrap();
        assert_eq!((labels[PARENT_LABEL].as_str(), labels[DEPTH_LABEL].as_str()), ("lead", "1"));
        let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()), ("Agent", "lead", "u-1"));
        assert_eq!(owner.controller, Some(true));
        assert_eq!(child.metadata.annotations.as_ref().unwrap()["argocd.argoproj.io/sync-options"], "Prune=false");
        assert_eq!(child.spec.model.model_ref.as_ref().unwrap().name, "small", "the parent's own model by default");
        assert_eq!(child.spec.tools, bounds().tools);
        let delegation = child.spec.delegation.unwrap();
        assert_eq!((delegation.max_depth, delegation.max_children), (Some(1), Some(2)));
        assert_eq!(child.spec.api.allowed_namespaces, ["team"]);
        assert!(child.spec.persona.system_prompt_from.is_none() && child.spec.api.auth_secret_ref.is_none());
    }

    #[test]
    fn each_bound_is_refused_with_a_reason_the_model_can_act_on() {
        let cases = [
            (request("Bad Name"), vec![], "must be 1-20 lowercase"),
            (request("b"), vec!["lead-a".into(), "lead-c".into()], "already has 2 children"),
            (request("a"), vec!["lead-a".into()], "exists already"),
            (ChildRequest { model: Some("huge".into()), ..request("b") }, vec![], "allowed: small, large"),
            (ChildRequest { tools: vec!["shell".into()], ..request("b") }, vec![], "tool \"shell\" cannot be given"),
        ];
        for (asked, children, says) in cases {
            let refusal = child_agent(&parent(), &bounds(), &children, &asked).unwrap_err();
            assert!(refusal.to_string().contains(says), "{asked:?}: {refusal}");
        }
        let shallow = DelegationConfig { max_depth: 1, ..bounds() };
        let deeper = ChildRequest { can_delegate: true, ..request("b") };
        assert_eq!(child_agent(&parent(), &shallow, &[], &deeper).unwrap_err(), Refusal::TooDeep);
    }
}
