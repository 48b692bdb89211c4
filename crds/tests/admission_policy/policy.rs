//! The chart's delegation ValidatingAdmissionPolicy as shipped (rendered by `helm template`) and a
//! small evaluator for it built on kube-cel's `VapEvaluator`.
//!
//! kube-cel binds `object`, `oldObject` and `request` but neither evaluates `matchConditions` nor
//! binds `variables`. So the match conditions are evaluated here as plain expressions (all must
//! be true for the policy to apply, as in the API server), and each `variables.<name>` is inlined
//! as `(<its expression>)` by textual substitution before evaluation. Inlining keeps the API
//! server's lazy semantics: a variable is only evaluated where an expression reaches it (those
//! reading `object` are only reached for CREATE, where `object` is not null).
//!
//! kube-cel also escapes every map key of the bound objects as the API server escapes declared
//! property names (`agent-operator.dev/parent` becomes `agent__dash__operator__dot__dev__slash__parent`),
//! labels included, where the API server keeps map keys as they are. So a string literal used as a
//! map key (`'<key>' in ...`, `['<key>']`) is escaped the same way before evaluation.

use std::path::PathBuf;
use std::process::Command;

use kube::core::cel::{AdmissionRequest, VapEvaluator, VapExpression};
use serde::Deserialize;
use serde_json::Value;

use crate::common::repo_root;

/// The chart template holding the policy and its binding.
pub const TEMPLATE: &str = "templates/delegation-admission-policy.yaml";

/// `helm` from the tools `scripts/install-tools.sh` installs, else from `PATH`.
fn helm() -> PathBuf {
    let tools = std::env::var_os("AGENT_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/tools"),
        PathBuf::from,
    );
    let installed = tools.join("bin/helm");
    if installed.is_file() { installed } else { PathBuf::from("helm") }
}

/// The chart rendered with `helm template` and extra `--set` values, as JSON documents.
pub fn render(show_only: Option<&str>, sets: &[&str]) -> Vec<Value> {
    let mut command = Command::new(helm());
    command.args(["template", "agent-operator", "charts/agent-operator", "--namespace", "agent-operator"]);
    if let Some(template) = show_only {
        command.args(["--show-only", template]);
    }
    for set in sets {
        command.args(["--set", set]);
    }
    let output = command.current_dir(repo_root()).output().unwrap_or_else(|e| {
        panic!("cannot run helm: {e}; run scripts/install-tools.sh (the README's test command does)")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "helm template failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_yaml::Deserializer::from_str(&stdout)
        .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The shipped ValidatingAdmissionPolicy and its binding, rendered with `sets`.
pub fn rendered(sets: &[&str]) -> (Value, Value) {
    let documents = render(Some(TEMPLATE), sets);
    let find = |kind: &str| {
        documents.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("{TEMPLATE} renders no {kind}")).clone()
    };
    (find("ValidatingAdmissionPolicy"), find("ValidatingAdmissionPolicyBinding"))
}

/// What the API server would do with a request, as far as this policy is concerned.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A match condition is false: the policy does not apply.
    NotMatched,
    /// Every validation passed.
    Admitted,
    /// These validations failed, with their messages.
    Denied(Vec<String>),
}

/// A policy's expressions, variables inlined.
pub struct Policy {
    match_conditions: Vec<VapExpression>,
    validations: Vec<VapExpression>,
}

/// Every expression of the policy with its place, as written (variables not inlined).
pub fn expressions(policy: &Value) -> Vec<(String, String)> {
    let spec = &policy["spec"];
    let mut found = Vec::new();
    for (list, fields) in [
        ("matchConditions", &["expression"][..]),
        ("variables", &["expression"][..]),
        ("validations", &["expression", "messageExpression"][..]),
    ] {
        for (i, entry) in spec[list].as_array().into_iter().flatten().enumerate() {
            for field in fields {
                if let Some(expression) = entry[*field].as_str() {
                    found.push((format!("{list}[{i}].{field}"), expression.to_owned()));
                }
            }
        }
    }
    found
}

/// Replaces each `variables.<name>` in `expression` by `(<definition>)`.
fn inline(expression: &str, definitions: &[(String, String)]) -> String {
    const PREFIX: &str = "variables.";
    let mut out = String::new();
    let mut rest = expression;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PREFIX.len()..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        let name = &after[..end];
        let (_, definition) = definitions
            .iter()
            .find(|(defined, _)| defined == name)
            .unwrap_or_else(|| panic!("`{expression}` uses variables.{name}, which is not defined before it"));
        out.push('(');
        out.push_str(definition);
        out.push(')');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// kube-cel's escaping of a map key (`apiserver/schema/cel/model` rules for property names).
fn escape_key(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '_' => "__".to_owned(),
            '.' => "__dot__".to_owned(),
            '-' => "__dash__".to_owned(),
            '/' => "__slash__".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Escapes the string literals of `expression` used as map keys, for kube-cel's escaped maps.
fn escape_map_keys(expression: &str) -> String {
    let mut out = String::new();
    let mut rest = expression;
    while let Some(open) = rest.find('\'') {
        let Some(len) = rest[open + 1..].find('\'') else { break };
        let literal = &rest[open + 1..open + 1 + len];
        let after = &rest[open + 2 + len..];
        let is_key = after.starts_with(" in ") || (rest[..open].ends_with('[') && after.starts_with(']'));
        out.push_str(&rest[..=open]);
        out.push_str(&if is_key { escape_key(literal) } else { literal.to_owned() });
        out.push('\'');
        rest = after;
    }
    out.push_str(rest);
    out
}

impl Policy {
    /// Reads the policy's match conditions, variables and validations.
    pub fn from_rendered(policy: &Value) -> Self {
        let spec = &policy["spec"];
        // Variables may use earlier ones; each definition is stored already inlined.
        let mut definitions: Vec<(String, String)> = Vec::new();
        for variable in spec["variables"].as_array().into_iter().flatten() {
            let name = variable["name"].as_str().expect("variable name").to_owned();
            let definition = inline(variable["expression"].as_str().expect("variable expression"), &definitions);
            definitions.push((name, definition));
        }
        let text =
            |entry: &Value, field: &str| entry[field].as_str().map(|e| escape_map_keys(&inline(e, &definitions)));
        let match_conditions = spec["matchConditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| VapExpression {
                expression: text(c, "expression").unwrap(),
                message: None,
                message_expression: None,
            })
            .collect();
        let validations = spec["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| VapExpression {
                expression: text(v, "expression").unwrap(),
                message: v["message"].as_str().map(str::to_owned),
                message_expression: text(v, "messageExpression"),
            })
            .collect();
        Self { match_conditions, validations }
    }

    /// Evaluates a request by `username` in `namespace`: `object` for CREATE, `old` for DELETE,
    /// both for UPDATE.
    pub fn admit(
        &self,
        operation: &str,
        username: &str,
        namespace: &str,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Outcome {
        let name = object.or(old).and_then(|o| o["metadata"]["name"].as_str()).unwrap_or_default();
        let request = AdmissionRequest {
            operation: operation.to_owned(),
            username: username.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ..AdmissionRequest::default()
        };
        let mut builder = VapEvaluator::builder().request(request);
        if let Some(object) = object {
            builder = builder.object(object.clone());
        }
        if let Some(old) = old {
            builder = builder.old_object(old.clone());
        }
        let evaluator = builder.build();
        let conditions = evaluator.evaluate(&self.match_conditions);
        for failed in conditions.iter().filter(|r| !r.passed) {
            // An erroring match condition refuses the request in the API server (failurePolicy
            // Fail); no test request may reach that.
            let message = failed.message.as_deref().unwrap_or_default();
            assert!(message.contains("evaluated to false"), "match condition `{}`: {message}", failed.expression);
        }
        if !conditions.iter().all(|r| r.passed) {
            return Outcome::NotMatched;
        }
        let failed: Vec<String> = evaluator
            .evaluate(&self.validations)
            .into_iter()
            .filter(|r| !r.passed)
            .map(|r| r.message.unwrap_or_default())
            .collect();
        if failed.is_empty() { Outcome::Admitted } else { Outcome::Denied(failed) }
    }
}
