//! An agent's recipe parameters: each declared parameter's effective value (the agent's, else the
//! recipe's default) checked against its type and allowed values; the pipeline settings that a
//! parameter of the same name overrides; and the checks the resulting pipeline must pass (the
//! CRD's ranges and CEL rules, and every template rendered against its sample context), so a bad
//! combination is refused before a pod starts.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::recipe::{ParameterType, RecipeParameter, RecipeSpec, RerankStrategy, SummaryStrategy};
use crate::templates::{TemplateError, check_recipe};

/// Why an agent's parameters do not suit its recipe; each names the recipe.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParameterError {
    /// The agent sets a parameter the recipe does not declare.
    #[error("recipe {recipe} has no parameter {name}; it declares: {declared}")]
    UnknownParameter {
        /// Recipe name.
        recipe: String,
        /// Offending parameter.
        name: String,
        /// Declared parameters, comma separated.
        declared: String,
    },
    /// A parameter value has the wrong type.
    #[error("parameter {name} of recipe {recipe} must be {expected}, got {got}")]
    WrongParameterType {
        /// Recipe name.
        recipe: String,
        /// Parameter name.
        name: String,
        /// Declared type.
        expected: &'static str,
        /// The JSON given.
        got: String,
    },
    /// A parameter without default was not set.
    #[error("recipe {recipe} needs parameter {name}")]
    MissingParameter {
        /// Recipe name.
        recipe: String,
        /// Parameter name.
        name: String,
    },
    /// A parameter value is not one of the parameter's allowed values.
    #[error("parameter {name} of recipe {recipe} must be one of {allowed}; got {got}")]
    ParameterNotAllowed {
        /// Recipe name.
        recipe: String,
        /// Parameter name.
        name: String,
        /// The allowed values as JSON, comma separated.
        allowed: String,
        /// The JSON given.
        got: String,
    },
    /// A parameter overriding a pipeline setting has a value the setting does not take.
    #[error("parameter {name} of recipe {recipe} sets {field}, which {reason}")]
    InvalidOverride {
        /// Recipe name.
        recipe: String,
        /// Parameter name.
        name: String,
        /// The overridden setting, e.g. `retrieve.topK`.
        field: &'static str,
        /// What the setting takes.
        reason: String,
    },
    /// The recipe's pipeline, with the parameters' overrides, breaks a rule of the Recipe schema.
    #[error("recipe {recipe} with these parameters: {problems}")]
    InvalidPipeline {
        /// Recipe name.
        recipe: String,
        /// The broken rules, `; ` separated.
        problems: String,
    },
    /// A template of the recipe does not parse or uses a variable the runtime does not give it.
    #[error("recipe {recipe}: {error}")]
    Template {
        /// Recipe name.
        recipe: String,
        /// The template's field and what is wrong.
        #[source]
        error: TemplateError,
    },
}

/// Parameter names that override a pipeline setting, and the setting each overrides.
pub const OVERRIDES: [(&str, &str); 9] = [
    ("topK", "retrieve.topK"),
    ("fetchK", "retrieve.fetchK"),
    ("scoreThreshold", "retrieve.scoreThreshold"),
    ("hybrid", "retrieve.hybrid"),
    ("chunkSize", "ingest.chunkSize"),
    ("chunkOverlap", "ingest.chunkOverlap"),
    ("strategy", "generate.strategy"),
    ("mmrLambda", "rerank.mmrLambda"),
    ("rerank", "rerank.strategy"),
];

/// The effective parameters of recipe `recipe` given the agent's values `set`, and the recipe's
/// pipeline with the overriding parameters applied; every check passed.
pub fn resolve(
    recipe: &str,
    set: &BTreeMap<String, Value>,
    spec: &RecipeSpec,
) -> Result<(BTreeMap<String, Value>, RecipeSpec), ParameterError> {
    let declared = &spec.parameters;
    if let Some(unknown) = set.keys().find(|k| !declared.iter().any(|p| &p.name == *k)) {
        return Err(ParameterError::UnknownParameter {
            recipe: recipe.to_owned(),
            name: unknown.clone(),
            declared: declared.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
        });
    }
    let mut parameters = BTreeMap::new();
    let mut effective = spec.clone();
    for parameter in declared {
        let value = set.get(&parameter.name).or(parameter.default.as_ref()).ok_or_else(|| {
            ParameterError::MissingParameter { recipe: recipe.to_owned(), name: parameter.name.clone() }
        })?;
        check_value(recipe, parameter, value)?;
        apply_override(&mut effective, &parameter.name, value).map_err(|reason| ParameterError::InvalidOverride {
            recipe: recipe.to_owned(),
            name: parameter.name.clone(),
            field: OVERRIDES.iter().find(|(name, _)| *name == parameter.name).map_or("", |(_, field)| field),
            reason,
        })?;
        parameters.insert(parameter.name.clone(), value.clone());
    }
    let problems = pipeline_problems(&effective);
    if !problems.is_empty() {
        return Err(ParameterError::InvalidPipeline { recipe: recipe.to_owned(), problems: problems.join("; ") });
    }
    check_recipe(&effective, &parameters)
        .map_err(|error| ParameterError::Template { recipe: recipe.to_owned(), error })?;
    Ok((parameters, effective))
}

fn check_value(recipe: &str, parameter: &RecipeParameter, value: &Value) -> Result<(), ParameterError> {
    if !has_type(value, parameter.kind) {
        return Err(ParameterError::WrongParameterType {
            recipe: recipe.to_owned(),
            name: parameter.name.clone(),
            expected: type_name(parameter.kind),
            got: value.to_string(),
        });
    }
    if !parameter.allowed.is_empty() && !parameter.allowed.iter().any(|allowed| same_value(allowed, value)) {
        return Err(ParameterError::ParameterNotAllowed {
            recipe: recipe.to_owned(),
            name: parameter.name.clone(),
            allowed: parameter.allowed.iter().map(Value::to_string).collect::<Vec<_>>().join(", "),
            got: value.to_string(),
        });
    }
    Ok(())
}

/// Equal JSON values, with `2` and `2.0` the same number.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < f64::EPSILON,
        _ => a == b,
    }
}

fn has_type(value: &Value, kind: ParameterType) -> bool {
    match kind {
        ParameterType::String => value.is_string(),
        ParameterType::Integer => value.is_i64() || value.is_u64(),
        ParameterType::Number => value.is_number(),
        ParameterType::Boolean => value.is_boolean(),
    }
}

fn type_name(kind: ParameterType) -> &'static str {
    match kind {
        ParameterType::String => "a string",
        ParameterType::Integer => "an integer",
        ParameterType::Number => "a number",
        ParameterType::Boolean => "a boolean",
    }
}

/// Sets the pipeline field parameter `name` overrides, if any, to `value`.
fn apply_override(spec: &mut RecipeSpec, name: &str, value: &Value) -> Result<(), String> {
    match name {
        "topK" => spec.retrieve.top_k = integer(value, 1, 100)?,
        "fetchK" => spec.retrieve.fetch_k = integer(value, 1, 1000)?,
        "scoreThreshold" => spec.retrieve.score_threshold = Some(number(value, 0.0, 1.0)?),
        "hybrid" => spec.retrieve.hybrid = value.as_bool().ok_or("must be a boolean")?,
        "chunkSize" => spec.ingest.chunk_size = integer(value, 16, 8192)?,
        "chunkOverlap" => spec.ingest.chunk_overlap = integer(value, 0, 4096)?,
        "strategy" => spec.generate.strategy = variant::<SummaryStrategy>(value, "Stuff, MapReduce, Refine")?,
        "mmrLambda" => spec.rerank.mmr_lambda = number(value, 0.0, 1.0)?,
        "rerank" => spec.rerank.strategy = variant::<RerankStrategy>(value, "None, Mmr, Endpoint")?,
        _ => {}
    }
    Ok(())
}

fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    value.as_i64().filter(|v| (min..=max).contains(v)).ok_or_else(|| format!("must be an integer from {min} to {max}"))
}

fn number(value: &Value, min: f64, max: f64) -> Result<f64, String> {
    value.as_f64().filter(|v| (min..=max).contains(v)).ok_or_else(|| format!("must be a number from {min} to {max}"))
}

fn variant<T: DeserializeOwned>(value: &Value, names: &str) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|_| format!("must be one of {names}"))
}

/// What the CRD's ranges and CEL rules would refuse in `spec`: checked again after parameters
/// override settings, and for recipes that never passed an API server (built in, local files).
pub fn pipeline_problems(spec: &RecipeSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut range = |field: &str, value: f64, min: f64, max: f64| {
        if !(min..=max).contains(&value) {
            problems.push(format!("{field} is {value}, not from {min} to {max}"));
        }
    };
    #[allow(clippy::cast_precision_loss)] // the ranges are small
    {
        range("ingest.chunkSize", spec.ingest.chunk_size as f64, 16.0, 8192.0);
        range("ingest.chunkOverlap", spec.ingest.chunk_overlap as f64, 0.0, 4096.0);
        range("retrieve.topK", spec.retrieve.top_k as f64, 1.0, 100.0);
        range("retrieve.fetchK", spec.retrieve.fetch_k as f64, 1.0, 1000.0);
    }
    if let Some(threshold) = spec.retrieve.score_threshold {
        range("retrieve.scoreThreshold", threshold, 0.0, 1.0);
    }
    range("rerank.mmrLambda", spec.rerank.mmr_lambda, 0.0, 1.0);
    if spec.ingest.chunk_overlap >= spec.ingest.chunk_size {
        problems.push(format!(
            "ingest.chunkOverlap ({}) must be smaller than ingest.chunkSize ({})",
            spec.ingest.chunk_overlap, spec.ingest.chunk_size
        ));
    }
    if spec.retrieve.fetch_k < spec.retrieve.top_k {
        problems.push(format!(
            "retrieve.fetchK ({}) must be at least retrieve.topK ({})",
            spec.retrieve.fetch_k, spec.retrieve.top_k
        ));
    }
    if spec.rerank.strategy == RerankStrategy::Endpoint && spec.rerank.endpoint.is_none() {
        problems.push("rerank.strategy Endpoint needs rerank.endpoint".to_owned());
    }
    problems
}

/// Problems of a recipe on its own: parameter names templates can use, and the render path
/// (overrides, rules, templates) with every default, required parameters getting a sample value
/// of their type. What `recipes lint` reports and what the operator writes to a Recipe's status.
pub fn recipe_problems(recipe: &crate::Recipe) -> Vec<String> {
    let mut problems = Vec::new();
    for parameter in &recipe.spec.parameters {
        let mut chars = parameter.name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(format!(
                "parameter name {:?} must start with a letter and hold only letters, digits and _",
                parameter.name
            ));
        }
    }
    let samples: BTreeMap<String, Value> = recipe
        .spec
        .parameters
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| (p.name.clone(), sample_value(p)))
        .collect();
    let name = recipe.metadata.name.clone().unwrap_or_default();
    if let Err(error) = resolve(&name, &samples, &recipe.spec) {
        problems.push(format!("with its defaults: {error}"));
    }
    problems
}

/// A value for a required parameter: its first allowed value, else a sample of its type.
fn sample_value(parameter: &RecipeParameter) -> Value {
    parameter.allowed.first().cloned().unwrap_or_else(|| match parameter.kind {
        ParameterType::String => Value::from("sample"),
        ParameterType::Integer => Value::from(1),
        ParameterType::Number => Value::from(0.5),
        ParameterType::Boolean => Value::from(true),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::recipe::PipelineMode;

    fn parameter(name: &str, kind: ParameterType, default: Value) -> RecipeParameter {
        RecipeParameter { name: name.into(), kind, default: Some(default), ..RecipeParameter::default() }
    }

    fn summarizer() -> RecipeSpec {
        let mut spec = RecipeSpec::default();
        spec.generate.mode = PipelineMode::Summarize;
        spec.generate.map_template = Some("{{text}}".into());
        spec.generate.combine_template = Some("{{#each summaries}}{{this}}{{/each}}".into());
        spec.parameters = vec![
            RecipeParameter {
                allowed: vec![json!("Stuff"), json!("MapReduce"), json!("Refine")],
                ..parameter("strategy", ParameterType::String, json!("MapReduce"))
            },
            parameter("topK", ParameterType::Integer, json!(4)),
            parameter("hybrid", ParameterType::Boolean, json!(false)),
        ];
        spec
    }

    #[test]
    fn parameters_named_like_settings_override_them() {
        let set = BTreeMap::from([("topK".into(), json!(8)), ("hybrid".into(), json!(true))]);
        let (params, spec) = resolve("r", &set, &summarizer()).unwrap();
        assert_eq!((spec.retrieve.top_k, spec.retrieve.hybrid), (8, true));
        assert_eq!(params["strategy"], json!("MapReduce"), "the default is an effective value too");
        assert_eq!(spec.generate.strategy, SummaryStrategy::MapReduce);
    }

    #[test]
    fn a_value_outside_the_enum_names_the_allowed_values() {
        let set = BTreeMap::from([("strategy".into(), json!("Fast"))]);
        let error = resolve("docsum", &set, &summarizer()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"parameter strategy of recipe docsum must be one of "Stuff", "MapReduce", "Refine"; got "Fast""#
        );
    }

    #[test]
    fn an_override_needs_a_valid_setting_value() {
        let mut spec = summarizer();
        spec.parameters[0].allowed.clear();
        let error = resolve("docsum", &BTreeMap::from([("strategy".into(), json!("Fast"))]), &spec).unwrap_err();
        assert_eq!(
            error.to_string(),
            "parameter strategy of recipe docsum sets generate.strategy, which must be one of Stuff, MapReduce, Refine"
        );
        let error = resolve("docsum", &BTreeMap::from([("topK".into(), json!(0))]), &spec).unwrap_err();
        assert_eq!(
            error.to_string(),
            "parameter topK of recipe docsum sets retrieve.topK, which must be an integer from 1 to 100"
        );
    }

    #[test]
    fn an_override_that_breaks_a_rule_or_needs_a_template_is_refused() {
        let set = BTreeMap::from([("topK".into(), json!(30))]);
        let error = resolve("docsum", &set, &summarizer()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "recipe docsum with these parameters: retrieve.fetchK (20) must be at least retrieve.topK (30)"
        );
        let set = BTreeMap::from([("strategy".into(), json!("Refine"))]);
        let error = resolve("docsum", &set, &summarizer()).unwrap_err();
        assert_eq!(error.to_string(), "recipe docsum: generate.refineTemplate: Summarize mode needs this template");
    }

    #[test]
    fn a_template_using_an_undeclared_parameter_is_refused_with_its_field_and_variable() {
        let mut spec = summarizer();
        spec.generate.system_template = Some("Be {{params.tone}}.".into());
        let error = resolve("docsum", &BTreeMap::new(), &spec).unwrap_err();
        assert!(matches!(&error, ParameterError::Template { error, .. } if error.field == "generate.systemTemplate"));
        assert!(error.to_string().contains("params.tone"), "{error}");
    }

    #[test]
    fn numbers_match_enums_whatever_their_notation() {
        assert!(same_value(&json!(2), &json!(2.0)));
        assert!(!same_value(&json!("2"), &json!(2)));
    }
}
