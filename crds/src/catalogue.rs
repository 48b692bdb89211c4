//! The built-in recipe catalogue: every `recipes/<name>/` folder of the repository compiled in
//! (its `recipe.yaml` and `*.hbs` templates), the rule that joins a folder's templates to its
//! Recipe, and which recipe an Agent's `knowledge.recipe` names.
//!
//! A folder's templates live in files named after the field they fill: `system.hbs` ->
//! `generate.systemTemplate`, `prompt.hbs` -> `generate.promptTemplate`, and so on
//! ([`TEMPLATE_FILES`]); `recipe.yaml` itself holds no template text.

use std::path::Path;
use std::sync::LazyLock;

use kube::ResourceExt;

use crate::recipe::{Generate, Recipe};
use crate::templates::TemplateField;

/// The file of a recipe folder that holds its `Recipe` object.
pub const RECIPE_FILE: &str = "recipe.yaml";

/// Template file names and the `generate` field each fills.
pub const TEMPLATE_FILES: [(&str, TemplateField); 6] = [
    ("system.hbs", TemplateField::System),
    ("prompt.hbs", TemplateField::Prompt),
    ("sources.hbs", TemplateField::Sources),
    ("map.hbs", TemplateField::Map),
    ("combine.hbs", TemplateField::Combine),
    ("refine.hbs", TemplateField::Refine),
];

/// One built-in recipe's files, compiled in.
struct Source {
    recipe: &'static str,
    templates: &'static [(&'static str, &'static str)],
}

/// The files of `recipes/<name>/`: its `recipe.yaml` and the listed templates.
macro_rules! folder {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        Source {
            recipe: include_str!(concat!("../../recipes/", $name, "/recipe.yaml")),
            templates: &[$(($file, include_str!(concat!("../../recipes/", $name, "/", $file)))),*],
        }
    };
}

/// The catalogue, in the order `recipes list` shows it.
const SOURCES: [Source; 7] = [
    folder!("chatqna", ["system.hbs", "prompt.hbs", "sources.hbs"]),
    folder!("chatqna-norerank", ["system.hbs", "prompt.hbs", "sources.hbs"]),
    folder!("doc-retriever", ["prompt.hbs"]),
    folder!("docsum", ["system.hbs", "prompt.hbs", "map.hbs", "combine.hbs", "refine.hbs"]),
    folder!("faqgen", ["system.hbs", "prompt.hbs", "map.hbs", "combine.hbs"]),
    folder!("codegen", ["system.hbs", "prompt.hbs", "sources.hbs"]),
    folder!("react-agent", ["system.hbs"]),
];

/// A recipe folder that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// A file of the folder cannot be read.
    #[error("cannot read {0}: {1}")]
    Read(std::path::PathBuf, std::io::Error),
    /// `recipe.yaml` is not valid YAML or not a valid Recipe.
    #[error("recipe.yaml: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// `recipe.yaml` holds another kind of object.
    #[error("recipe.yaml: expected kind Recipe in agent-operator.dev/v1alpha1, found {0}")]
    NotARecipe(String),
    /// A `*.hbs` file whose name matches no template field.
    #[error("{0}: not a template file name; use one of {names}", names = template_file_names())]
    UnknownTemplateFile(String),
    /// A template both inline in `recipe.yaml` and in its file.
    #[error("{file}: {field} is also set inline in recipe.yaml; keep one")]
    InlineAndFile {
        /// The template file.
        file: String,
        /// The Recipe field, e.g. `generate.promptTemplate`.
        field: &'static str,
    },
}

fn template_file_names() -> String {
    TEMPLATE_FILES.iter().map(|(file, _)| *file).collect::<Vec<_>>().join(", ")
}

/// The field a template file fills, by its file name.
pub fn template_field(file_name: &str) -> Option<TemplateField> {
    TEMPLATE_FILES.iter().find(|(file, _)| *file == file_name).map(|(_, field)| *field)
}

/// The file name of the template in `field`.
pub fn template_file(field: TemplateField) -> &'static str {
    TEMPLATE_FILES.iter().find(|(_, f)| *f == field).map_or("", |(file, _)| file)
}

fn slot(generate: &mut Generate, field: TemplateField) -> &mut Option<String> {
    match field {
        TemplateField::System => &mut generate.system_template,
        TemplateField::Prompt => &mut generate.prompt_template,
        TemplateField::Sources => &mut generate.sources_template,
        TemplateField::Map => &mut generate.map_template,
        TemplateField::Combine => &mut generate.combine_template,
        TemplateField::Refine => &mut generate.refine_template,
    }
}

/// A Recipe from the text of a folder's `recipe.yaml` and its template files (`(file name, text)`).
/// The one newline editors end a file with is dropped from each template.
pub fn load<N: AsRef<str>, T: AsRef<str>>(recipe_yaml: &str, templates: &[(N, T)]) -> Result<Recipe, CatalogueError> {
    let value: serde_yaml::Value = serde_yaml::from_str(recipe_yaml)?;
    let kind = value.get("kind").and_then(serde_yaml::Value::as_str).unwrap_or("(none)");
    let api_version = value.get("apiVersion").and_then(serde_yaml::Value::as_str).unwrap_or("(none)");
    if kind != "Recipe" || api_version != "agent-operator.dev/v1alpha1" {
        return Err(CatalogueError::NotARecipe(format!("kind {kind} in {api_version}")));
    }
    let mut recipe: Recipe = serde_yaml::from_value(value)?;
    for (file, text) in templates {
        let file = file.as_ref();
        let field = template_field(file).ok_or_else(|| CatalogueError::UnknownTemplateFile(file.to_owned()))?;
        let slot = slot(&mut recipe.spec.generate, field);
        if slot.is_some() {
            return Err(CatalogueError::InlineAndFile { file: file.to_owned(), field: field.path() });
        }
        let text = text.as_ref();
        *slot = Some(text.strip_suffix('\n').unwrap_or(text).to_owned());
    }
    Ok(recipe)
}

/// The Recipe of a recipe folder: its `recipe.yaml` with the folder's `*.hbs` templates.
pub fn read_folder(dir: &Path) -> Result<Recipe, CatalogueError> {
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|e| CatalogueError::Read(path.to_owned(), e));
    let recipe_yaml = read(&dir.join(RECIPE_FILE))?;
    let mut templates = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| CatalogueError::Read(dir.to_owned(), e))? {
        let path = entry.map_err(|e| CatalogueError::Read(dir.to_owned(), e))?.path();
        if path.extension().is_some_and(|e| e == "hbs") {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            templates.push((name, read(&path)?));
        }
    }
    templates.sort();
    load(&recipe_yaml, &templates)
}

/// Names of the built-in recipes, in catalogue order.
pub fn names() -> Vec<String> {
    BUILTINS.iter().map(ResourceExt::name_any).collect()
}

/// The built-in recipes, parsed once.
static BUILTINS: LazyLock<Vec<Recipe>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|source| load(source.recipe, source.templates).expect("the built-in catalogue loads (tested)"))
        .collect()
});

/// Every built-in recipe with its templates.
pub fn builtins() -> Vec<Recipe> {
    BUILTINS.clone()
}

/// The built-in recipe named `name`.
pub fn builtin(name: &str) -> Option<Recipe> {
    BUILTINS.iter().find(|recipe| recipe.name_any() == name).cloned()
}

/// The recipe an Agent naming `name` uses: the `Recipe` object of that name in its namespace
/// when there is one (it overrides the built-in), else the built-in recipe of that name.
pub fn resolve(name: &str, object: Option<Recipe>) -> Option<Recipe> {
    object.or_else(|| builtin(name))
}

/// Why no recipe resolves: what an Agent may name instead (`in_namespace`: the names of the
/// Recipe objects in its namespace).
pub fn not_found_message(name: &str, namespace: &str, in_namespace: &[String]) -> String {
    let mut available: Vec<String> = names();
    available.extend(in_namespace.iter().cloned());
    available.sort();
    available.dedup();
    format!(
        "recipe {name} is neither a Recipe in namespace {namespace} nor built in; available: {}",
        available.join(", ")
    )
}

/// Path of the generated catalogue, from the repository root.
pub const CATALOGUE_FILE: &str = "recipes/catalogue.yaml";

/// `recipes/catalogue.yaml`: every built-in recipe as a `Recipe` object with its templates
/// inlined, for `kubectl apply -f`.
///
/// # Panics
/// Never: a Recipe always serializes.
pub fn catalogue_yaml() -> String {
    let mut text = String::from(
        "# Generated by `cargo run -p agent-crds --bin crdgen` from recipes/*/; do not edit.\n\
         # The built-in recipe catalogue as Recipe objects (templates inlined):\n\
         #   kubectl apply -n <namespace> -f recipes/catalogue.yaml\n",
    );
    for (index, recipe) in builtins().iter().enumerate() {
        if index > 0 {
            text.push_str("---\n");
        }
        text.push_str(&recipe_yaml(recipe));
    }
    text
}

/// A Recipe as YAML with sorted keys and no status.
///
/// # Panics
/// Never: a Recipe always serializes.
pub fn recipe_yaml(recipe: &Recipe) -> String {
    let mut value = serde_json::to_value(recipe).expect("a Recipe serializes");
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    serde_yaml::to_string(&crate::crd::canonical(value)).expect("JSON serializes as YAML")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::recipe::PipelineMode;

    #[test]
    fn every_builtin_loads_with_its_templates_and_passes_the_template_check() {
        let recipes = builtins();
        assert_eq!(
            names(),
            ["chatqna", "chatqna-norerank", "doc-retriever", "docsum", "faqgen", "codegen", "react-agent"]
        );
        for recipe in &recipes {
            let params: BTreeMap<String, serde_json::Value> =
                recipe.spec.parameters.iter().filter_map(|p| Some((p.name.clone(), p.default.clone()?))).collect();
            crate::templates::check_recipe(&recipe.spec, &params)
                .unwrap_or_else(|e| panic!("{}: {e}", recipe.name_any()));
        }
        let retriever = builtin("doc-retriever").unwrap();
        assert_eq!(retriever.spec.generate.mode, PipelineMode::Retrieve);
        let prompt = retriever.spec.generate.prompt_template.unwrap();
        assert!(prompt.starts_with("{{#each chunks}}") && !prompt.ends_with('\n'), "{prompt:?}");
    }

    fn render(recipe: &str, field: TemplateField, params: &serde_json::Value) -> String {
        let recipe = builtin(recipe).unwrap();
        let params: BTreeMap<String, serde_json::Value> = serde_json::from_value(params.clone()).unwrap();
        let context = crate::templates::sample_context(field, &params);
        crate::templates::render(field, field.text(&recipe.spec.generate).unwrap(), &context).unwrap()
    }

    #[test]
    fn chatqna_numbers_the_passages_and_lists_the_cited_sources() {
        let prompt = render("chatqna", TemplateField::Prompt, &serde_json::json!({}));
        assert_eq!(
            prompt,
            "Passages:\n[1] (guide.md) Sample chunk text.\n[2] (faq.html) Another chunk.\n\n\
             Question: What is the sample about?\nAnswer, citing passages as [n]:"
        );
        let sources = render("chatqna", TemplateField::Sources, &serde_json::json!({}));
        assert_eq!(sources, "Sources:\n[1] guide.md\n[2] faq.html\n");
    }

    #[test]
    fn doc_retriever_formats_passages_with_their_documents() {
        let answer = render("doc-retriever", TemplateField::Prompt, &serde_json::json!({"showScores": false}));
        assert_eq!(answer, "[1] guide.md (chunk 0)\nSample chunk text.\n\n[2] faq.html (chunk 3)\nAnother chunk.\n\n");
    }

    #[test]
    fn a_folder_template_fills_its_field_and_conflicts_are_refused() {
        let yaml =
            "apiVersion: agent-operator.dev/v1alpha1\nkind: Recipe\nmetadata: {name: r}\nspec:\n  description: d\n";
        let recipe = load(yaml, &[("prompt.hbs", "{{question}}\n\n")]).unwrap();
        assert_eq!(recipe.spec.generate.prompt_template.as_deref(), Some("{{question}}\n"));

        let error = load(yaml, &[("answer.hbs", "x")]).unwrap_err();
        assert!(error.to_string().starts_with("answer.hbs: not a template file name; use one of system.hbs"));

        let inline = format!("{yaml}  generate:\n    promptTemplate: hi\n");
        let error = load(&inline, &[("prompt.hbs", "x")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "prompt.hbs: generate.promptTemplate is also set inline in recipe.yaml; keep one"
        );

        let model = "apiVersion: agent-operator.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec: {}\n";
        assert!(matches!(load::<&str, &str>(model, &[]), Err(CatalogueError::NotARecipe(_))));
    }

    #[test]
    fn a_recipe_object_overrides_the_builtin_and_unknown_names_list_what_exists() {
        let mut own = builtin("chatqna").unwrap();
        own.spec.description = "ours".into();
        assert_eq!(resolve("chatqna", Some(own)).unwrap().spec.description, "ours");
        assert!(resolve("chatqna", None).unwrap().spec.description.starts_with("Question answering"));
        assert!(resolve("nope", None).is_none());
        let message = not_found_message("nope", "demo", &["team-qna".into(), "chatqna".into()]);
        assert_eq!(
            message,
            "recipe nope is neither a Recipe in namespace demo nor built in; available: chatqna, chatqna-norerank, \
             codegen, doc-retriever, docsum, faqgen, react-agent, team-qna"
        );
    }
}
