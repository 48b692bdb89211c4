//! Recipe prompt templates: rendering in handlebars strict mode (a variable the template uses
//! but the context lacks is an error naming it), and the check run before a pod starts, which
//! renders every template of a recipe against a sample of the context the runtime gives it.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Value, json};

use crate::recipe::{Generate, PipelineMode, RecipeSpec, SummaryStrategy};

/// A template of a recipe, by the field that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateField {
    /// `generate.systemTemplate`.
    System,
    /// `generate.promptTemplate`.
    Prompt,
    /// `generate.sourcesTemplate`.
    Sources,
    /// `generate.mapTemplate`.
    Map,
    /// `generate.combineTemplate`.
    Combine,
    /// `generate.refineTemplate`.
    Refine,
}

impl TemplateField {
    /// The field's name in the Recipe, e.g. `generate.promptTemplate`.
    pub fn path(self) -> &'static str {
        match self {
            Self::System => "generate.systemTemplate",
            Self::Prompt => "generate.promptTemplate",
            Self::Sources => "generate.sourcesTemplate",
            Self::Map => "generate.mapTemplate",
            Self::Combine => "generate.combineTemplate",
            Self::Refine => "generate.refineTemplate",
        }
    }

    /// The template text in `generate`, if set.
    pub fn text(self, generate: &Generate) -> Option<&str> {
        match self {
            Self::System => generate.system_template.as_deref(),
            Self::Prompt => generate.prompt_template.as_deref(),
            Self::Sources => generate.sources_template.as_deref(),
            Self::Map => generate.map_template.as_deref(),
            Self::Combine => generate.combine_template.as_deref(),
            Self::Refine => generate.refine_template.as_deref(),
        }
    }

    /// Every template field.
    pub const ALL: [Self; 6] = [Self::System, Self::Prompt, Self::Sources, Self::Map, Self::Combine, Self::Refine];
}

/// A template that does not parse, or uses a variable its context lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TemplateError {
    /// The Recipe field, e.g. `generate.promptTemplate`.
    pub field: &'static str,
    /// What is wrong, from handlebars (it names the missing variable and the line).
    pub reason: String,
}

/// One retrieved chunk as templates see it.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChunkContext {
    /// Position in the list given to the model, from 1 (what citations refer to).
    pub index: usize,
    /// The chunk's text.
    pub text: String,
    /// Id of its document.
    pub document_id: String,
    /// Name of its document.
    pub document_name: String,
    /// Position of the chunk in its document.
    pub chunk: u64,
    /// Retrieval (or rerank) score.
    pub score: f32,
}

/// Renders `template` with `context` in strict mode, without HTML escaping (prompts are not HTML).
pub fn render(field: TemplateField, template: &str, context: &Value) -> Result<String, TemplateError> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    registry.render_template(template, context).map_err(|e| TemplateError { field: field.path(), reason: describe(&e) })
}

/// A sample of the context the runtime gives `field`, with the recipe's parameter values.
pub fn sample_context(field: TemplateField, params: &BTreeMap<String, Value>) -> Value {
    let chunks = [
        ChunkContext {
            index: 1,
            text: "Sample chunk text.".into(),
            document_id: "0123456789abcdef0123456789abcdef".into(),
            document_name: "guide.md".into(),
            chunk: 0,
            score: 0.9,
        },
        ChunkContext {
            index: 2,
            text: "Another chunk.".into(),
            document_id: "fedcba9876543210fedcba9876543210".into(),
            document_name: "faq.html".into(),
            chunk: 3,
            score: 0.7,
        },
    ];
    let params = json!(params);
    match field {
        TemplateField::System => json!({ "params": params }),
        TemplateField::Prompt => {
            json!({ "params": params, "question": "What is the sample about?", "chunks": chunks, "text": "Sample text to summarize." })
        }
        TemplateField::Sources => json!({ "params": params, "chunks": chunks }),
        TemplateField::Map => json!({ "params": params, "text": "One part of a long text." }),
        TemplateField::Combine => {
            json!({ "params": params, "summaries": ["First part in brief.", "Second part in brief."] })
        }
        TemplateField::Refine => {
            json!({ "params": params, "summary": "The summary so far.", "text": "The next part of the text." })
        }
    }
}

/// Renders every template `spec` sets against its sample context, so a template that does not
/// parse or uses a variable the runtime does not give is refused before a pod starts. Also
/// refuses templates the recipe's mode needs but lacks.
pub fn check_recipe(spec: &RecipeSpec, params: &BTreeMap<String, Value>) -> Result<(), TemplateError> {
    let generate = &spec.generate;
    for field in required(generate) {
        if field.text(generate).is_none() {
            return Err(TemplateError {
                field: field.path(),
                reason: format!("{:?} mode needs this template", generate.mode),
            });
        }
    }
    for field in TemplateField::ALL {
        if let Some(template) = field.text(generate) {
            render(field, template, &sample_context(field, params))?;
        }
    }
    Ok(())
}

fn required(generate: &Generate) -> Vec<TemplateField> {
    match (generate.mode, generate.strategy) {
        (PipelineMode::Retrieve, _) => vec![TemplateField::Prompt],
        (PipelineMode::Summarize, SummaryStrategy::MapReduce) => vec![TemplateField::Map, TemplateField::Combine],
        (PipelineMode::Summarize, SummaryStrategy::Refine) => vec![TemplateField::Refine],
        _ => Vec::new(),
    }
}

/// handlebars' message without its `Error rendering "Unnamed template"` preamble.
fn describe(error: &handlebars::RenderError) -> String {
    let text = error.to_string();
    text.strip_prefix("Error rendering \"Unnamed template\" ").map_or(text.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_names_the_missing_variable() {
        let error = render(
            TemplateField::Prompt,
            "Q: {{question}} ({{params.tone}})",
            &json!({"question": "hi", "params": {}}),
        )
        .unwrap_err();
        assert_eq!(error.field, "generate.promptTemplate");
        assert!(error.reason.contains("tone"), "{error}");
    }

    #[test]
    fn prompts_are_not_html_escaped_and_chunks_iterate() {
        let context = sample_context(TemplateField::Prompt, &BTreeMap::from([("tone".into(), json!("dry"))]));
        let text = render(
            TemplateField::Prompt,
            "{{#each chunks}}[{{index}}] {{documentName}}: {{text}}\n{{/each}}<{{question}}> & {{params.tone}}",
            &context,
        )
        .unwrap();
        assert_eq!(
            text,
            "[1] guide.md: Sample chunk text.\n[2] faq.html: Another chunk.\n<What is the sample about?> & dry"
        );
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused_with_its_field() {
        let mut spec = RecipeSpec::default();
        spec.generate.system_template = Some("{{#if params.x}}unclosed".into());
        let error = check_recipe(&spec, &BTreeMap::from([("x".into(), json!(true))])).unwrap_err();
        assert_eq!(error.field, "generate.systemTemplate", "{error}");
    }

    #[test]
    fn modes_need_their_templates() {
        let mut spec = RecipeSpec::default();
        spec.generate.mode = PipelineMode::Summarize;
        spec.generate.map_template = Some("{{text}}".into());
        let error = check_recipe(&spec, &BTreeMap::new()).unwrap_err();
        assert_eq!(error.to_string(), "generate.combineTemplate: Summarize mode needs this template");
        spec.generate.combine_template = Some("{{#each summaries}}{{this}}{{/each}}".into());
        assert_eq!(check_recipe(&spec, &BTreeMap::new()), Ok(()));
    }
}
