//! Checks an object against the structural (OpenAPI v3) schema of its CRD the way the API
//! server's schema validation does (types, unknown fields, required fields, enums, ranges,
//! lengths and sizes), so manifests can be checked offline, e.g. by `agent-runtime recipes lint`.
//! `pattern` and `format` are not checked, and CEL rules are not evaluated here.

use serde_json::Value;

/// The problems of `object` against `schema` (an `openAPIV3Schema`), each as `path: what`.
/// `apiVersion`, `kind` and `metadata` are left to the API server, as for any object.
pub fn check(schema: &Value, object: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(schema, object, "", &mut problems);
    problems
}

/// The problems of `object` against the committed schema of the CRD of kind `T`.
pub fn check_kind<T: kube::CustomResourceExt>(object: &Value) -> Vec<String> {
    let crd = T::crd();
    let schema = crd.spec.versions.first().and_then(|v| v.schema.as_ref()).and_then(|s| s.open_api_v3_schema.as_ref());
    match schema.map(serde_json::to_value) {
        Some(Ok(schema)) => check(&schema, object),
        _ => vec![format!("no schema for {}", T::crd_name())],
    }
}

fn walk(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    if value.is_null() {
        // Kubernetes drops nulls of fields that are not nullable, as if they were unset.
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            problems.push(format!("{at}: must be an integer or a string"));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        problems.push(format!("{at}: {value} is not one of {}", names.join(", ")));
    }
    match schema["type"].as_str() {
        Some("object") => object(schema, value, path, problems),
        Some("array") => array(schema, value, path, problems),
        Some("string") => match value.as_str() {
            Some(text) => {
                let length = text.chars().count() as u64;
                if let Some(max) = schema["maxLength"].as_u64().filter(|max| length > *max) {
                    problems.push(format!("{at}: longer than {max} characters"));
                }
                if let Some(min) = schema["minLength"].as_u64().filter(|min| length < *min) {
                    problems.push(format!("{at}: shorter than {min} characters"));
                }
            }
            None => problems.push(format!("{at}: must be a string, not {value}")),
        },
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            problems.push(format!("{at}: must be an integer, not {value}"));
        }
        Some("number" | "integer") => match value.as_f64() {
            Some(number) => range(schema, number, at, problems),
            None => problems.push(format!("{at}: must be a number, not {value}")),
        },
        Some("boolean") if !value.is_boolean() => problems.push(format!("{at}: must be a boolean, not {value}")),
        _ => {}
    }
}

fn range(schema: &Value, number: f64, at: &str, problems: &mut Vec<String>) {
    if let Some(min) = schema["minimum"].as_f64().filter(|min| number < *min) {
        problems.push(format!("{at}: {number} is less than the minimum {min}"));
    }
    if let Some(max) = schema["maximum"].as_f64().filter(|max| number > *max) {
        problems.push(format!("{at}: {number} is more than the maximum {max}"));
    }
}

fn object(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    let Some(fields) = value.as_object() else {
        problems.push(format!("{at}: must be an object, not {value}"));
        return;
    };
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if fields.get(required).is_none_or(Value::is_null) {
            problems.push(format!("{}: required", join(path, required)));
        }
    }
    if let Some(max) = schema["maxProperties"].as_u64().filter(|max| fields.len() as u64 > *max) {
        problems.push(format!("{at}: more than {max} entries"));
    }
    for (key, child) in fields {
        let child_path = join(path, key);
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match (&schema["properties"][key], &schema["additionalProperties"]) {
            (property, _) if property.is_object() => walk(property, child, &child_path, problems),
            (_, additional) if additional.is_object() => walk(additional, child, &child_path, problems),
            (_, Value::Bool(true)) => {}
            _ if preserve => {}
            _ => problems.push(format!("{child_path}: unknown field")),
        }
    }
}

fn array(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let at = if path.is_empty() { "<root>" } else { path };
    let Some(items) = value.as_array() else {
        problems.push(format!("{at}: must be a list, not {value}"));
        return;
    };
    if let Some(max) = schema["maxItems"].as_u64().filter(|max| items.len() as u64 > *max) {
        problems.push(format!("{at}: more than {max} items"));
    }
    if let Some(min) = schema["minItems"].as_u64().filter(|min| (items.len() as u64) < *min) {
        problems.push(format!("{at}: fewer than {min} items"));
    }
    if schema["items"].is_object() {
        for (index, item) in items.iter().enumerate() {
            walk(&schema["items"], item, &format!("{path}[{index}]"), problems);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Recipe;

    fn recipe() -> Value {
        json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Recipe",
            "metadata": {"name": "r", "labels": {"team": "a"}},
            "spec": {
                "description": "d",
                "parameters": [{"name": "topK", "type": "integer", "default": 3, "enum": [3, 5]}],
                "retrieve": {"topK": 3, "fetchK": 10},
                "generate": {"mode": "Answer", "promptTemplate": "{{question}}"}
            }
        })
    }

    #[test]
    fn a_valid_recipe_has_no_problem() {
        assert_eq!(check_kind::<Recipe>(&recipe()), Vec::<String>::new());
    }

    #[test]
    fn typos_wrong_types_enums_and_ranges_are_reported_with_their_path() {
        let mut bad = recipe();
        bad["spec"]["retrieve"] = json!({"topK": 0, "fetchK": "ten", "topk": 3});
        bad["spec"]["generate"]["mode"] = json!("Chat");
        bad["spec"]["parameters"][0]["type"] = json!("int");
        bad["spec"].as_object_mut().unwrap().remove("description");
        let problems = check_kind::<Recipe>(&bad);
        for expected in [
            "spec.description: required",
            "spec.retrieve.topK: 0 is less than the minimum 1",
            r#"spec.retrieve.fetchK: must be an integer, not "ten""#,
            "spec.retrieve.topk: unknown field",
            r#"spec.generate.mode: "Chat" is not one of "Answer", "Retrieve", "Summarize", "Agent""#,
            r#"spec.parameters[0].type: "int" is not one of "string", "integer", "number", "boolean""#,
        ] {
            assert!(problems.iter().any(|p| p == expected), "missing {expected:?} in {problems:#?}");
        }
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
