//! Which of a server's tools the model is offered: the allowlist (exact names and globs), and
//! the checks a model API would otherwise fail the whole turn on (a name it refuses, an input
//! schema that is not an object schema). Offered schemas are passed on unchanged.

use serde_json::{Map, Value};

/// A server tool the model is offered.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedTool {
    /// Its name, as the server and the model know it.
    pub name: String,
    /// What it does, as the server says.
    pub description: String,
    /// Its input schema, as the server gave it.
    pub schema: Value,
}

/// A server tool the model is not offered, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedTool {
    /// Its name on the server.
    pub name: String,
    /// Why it is not offered.
    pub reason: String,
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters and `?` one.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic wildcard matching with one backtrack point: the last `*` seen.
    let (mut p, mut n, mut star, mut resume) = (0, 0, None, 0);
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some(p);
                resume = n;
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some(s) => {
                    p = s + 1;
                    resume += 1;
                    n = resume;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether any of `patterns` matches `name`.
pub fn any_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|pattern| glob_matches(pattern, name))
}

/// The tools of `listed` the model is offered (allowed by `allow`, empty allowing all, and fit
/// for a model API), and the allowed ones it is not, with the reason.
pub fn offer(listed: Vec<rmcp::model::Tool>, allow: &[String]) -> (Vec<OfferedTool>, Vec<SkippedTool>) {
    let mut offered = Vec::new();
    let mut skipped = Vec::new();
    for tool in listed {
        let name = tool.name.to_string();
        if !allow.is_empty() && !any_matches(allow, &name) {
            continue;
        }
        let schema = Value::Object(Map::clone(&tool.input_schema));
        match unfit_for_models(&name, &schema) {
            Some(reason) => skipped.push(SkippedTool { name, reason }),
            None => offered.push(OfferedTool {
                name,
                description: tool.description.map(|d| d.to_string()).unwrap_or_default(),
                schema,
            }),
        }
    }
    (offered, skipped)
}

/// Why a model API would refuse a function with this name or schema, if it would.
fn unfit_for_models(name: &str, schema: &Value) -> Option<String> {
    let name_fits =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !name_fits {
        return Some("model APIs accept only function names of 1-64 letters, digits, _ or -".into());
    }
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Some(format!(
            "its input schema is not an object schema (type {})",
            schema.get("type").unwrap_or(&Value::Null)
        ));
    }
    if schema.get("properties").is_some_and(|p| !p.is_object()) {
        return Some("its input schema's properties is not an object".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn tool(name: &str, schema: Value) -> rmcp::model::Tool {
        let Value::Object(schema) = schema else { panic!("test schemas are objects") };
        rmcp::model::Tool::new(name.to_owned(), "does things", Arc::new(schema))
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob_matches("get_*", "get_ticket"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("get_ticke?", "get_ticket"));
        assert!(glob_matches("*_ticket*", "get_ticket_by_id"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("get_*", "list_tickets"));
        assert!(!glob_matches("get_ticket", "get_tickets"));
        assert!(!glob_matches("?", ""));
        assert!(!glob_matches("a*b", "acbd"));
    }

    #[test]
    fn the_allowlist_filters_and_unfit_tools_are_skipped_with_the_reason() {
        let object = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let listed = vec![
            tool("get_ticket", object.clone()),
            tool("delete_ticket", object.clone()),
            tool("get.status", object.clone()),
            tool("get_text", json!({"type": "string"})),
        ];
        let (offered, skipped) = offer(listed, &["get*".into()]);
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].name, "get_ticket");
        assert_eq!(offered[0].schema, object, "the schema is passed on unchanged");
        let names: Vec<&str> = skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["get.status", "get_text"]);
        assert!(skipped[1].reason.contains("not an object schema"), "{}", skipped[1].reason);
    }
}
