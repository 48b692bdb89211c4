//! `agent-runtime recipes`: the recipe catalogue from the command line. `list` and `show` the
//! built-in recipes, `render` a ready Agent manifest for a GitOps repository (its parameters
//! checked by the operator's own render path), and `lint` recipe folders before they ship.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use agent_crds::catalogue::{self, RECIPE_FILE};
use agent_crds::manifests::Manifests;
use agent_crds::model_selection::{Readiness, resolve_model};
use agent_crds::recipe::{PipelineMode, Recipe};
use agent_crds::render::{RenderError, render_recipe_config, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, Model, structural};
use clap::Subcommand;
use kube::ResourceExt;
use serde_json::{Value, json};

/// The `recipes` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum RecipesCommand {
    /// List the built-in recipes: name, mode and description.
    List,
    /// Print a built-in recipe as a `Recipe` object with its templates inlined.
    Show {
        /// Name of the recipe.
        name: String,
    },
    /// Print an Agent manifest using a built-in recipe, after checking its parameters.
    Render {
        /// Name of the recipe.
        name: String,
        /// A parameter, `name=value`; the value is read as JSON when it parses (`6`, `true`,
        /// `0.5`), else as a string. Repeatable.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Name of the Agent; defaults to the recipe's name.
        #[arg(long)]
        agent_name: Option<String>,
        /// Namespace of the Agent; unset, `kubectl apply -n` decides.
        #[arg(long)]
        namespace: Option<String>,
        /// The `Model` the Agent uses; unset, the Agent selects a Model by capability.
        #[arg(long)]
        model: Option<String>,
    },
    /// Check recipe folders: a folder holding `recipe.yaml`, or every such folder in a directory.
    Lint {
        /// A recipe folder, or a directory of them.
        path: PathBuf,
    },
}

/// A subcommand that cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RecipesError {
    /// No built-in recipe has this name.
    #[error("no built-in recipe {0}; built in: {names}", names = catalogue::names().join(", "))]
    UnknownRecipe(String),
    /// A `--set` argument without `=`.
    #[error("--set {0:?}: expected NAME=VALUE")]
    BadSet(String),
    /// The parameters do not suit the recipe.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The rendered Agent does not pass the Agent schema (a bad `--agent-name`, for example).
    #[error("the rendered Agent is invalid: {0}")]
    InvalidAgent(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Write(#[from] std::io::Error),
}

/// Runs `command`, writing its output to `out`. Returns whether everything checked was fine
/// (`lint` finds problems: `false`, and the caller exits with status 1).
pub fn run(command: &RecipesCommand, out: &mut impl Write) -> Result<bool, RecipesError> {
    match command {
        RecipesCommand::List => out.write_all(list().as_bytes())?,
        RecipesCommand::Show { name } => out.write_all(show(name)?.as_bytes())?,
        RecipesCommand::Render { name, set, agent_name, namespace, model } => {
            let options =
                RenderOptions { agent_name: agent_name.clone(), namespace: namespace.clone(), model: model.clone() };
            out.write_all(render(name, set, &options)?.as_bytes())?;
        }
        RecipesCommand::Lint { path } => {
            let report = lint(path);
            out.write_all(report.text().as_bytes())?;
            return Ok(report.is_clean());
        }
    }
    Ok(true)
}

/// The built-in recipes as a table: name, mode, first sentence of the description.
pub fn list() -> String {
    let recipes = catalogue::builtins();
    let width = recipes.iter().map(|r| r.name_any().len()).max().unwrap_or(4).max(4);
    let mut text = format!("{:<width$}  {:<9}  DESCRIPTION\n", "NAME", "MODE");
    for recipe in &recipes {
        let description = &recipe.spec.description;
        let first = description.split_once(". ").map_or(description.as_str(), |(first, _)| first);
        let mode = format!("{:?}", recipe.spec.generate.mode);
        let _ = writeln!(text, "{:<width$}  {mode:<9}  {}", recipe.name_any(), first.trim_end_matches('.'));
    }
    text
}

/// A built-in recipe as YAML, templates inlined.
pub fn show(name: &str) -> Result<String, RecipesError> {
    let recipe = catalogue::builtin(name).ok_or_else(|| RecipesError::UnknownRecipe(name.to_owned()))?;
    Ok(catalogue::recipe_yaml(&recipe))
}

/// Where the rendered Agent goes and what it runs on.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Name of the Agent (default: the recipe's).
    pub agent_name: Option<String>,
    /// Namespace of the Agent.
    pub namespace: Option<String>,
    /// The Model (default: a selector on the capabilities the recipe needs).
    pub model: Option<String>,
}

/// Parses `name=value` arguments; values are JSON when they parse, else strings.
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, Value>, RecipesError> {
    sets.iter()
        .map(|set| {
            let (name, value) = set.split_once('=').ok_or_else(|| RecipesError::BadSet(set.clone()))?;
            if name.is_empty() {
                return Err(RecipesError::BadSet(set.clone()));
            }
            let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            Ok((name.to_owned(), value))
        })
        .collect()
}

/// An Agent manifest using built-in recipe `name` with the `--set` parameters, checked with the
/// operator's render path (unknown parameters, types, enums, overrides, templates).
pub fn render(name: &str, sets: &[String], options: &RenderOptions) -> Result<String, RecipesError> {
    let recipe = catalogue::builtin(name).ok_or_else(|| RecipesError::UnknownRecipe(name.to_owned()))?;
    let parameters = parse_sets(sets)?;
    let mut knowledge = json!({ "recipe": name });
    if !parameters.is_empty() {
        knowledge["parameters"] = json!(parameters);
    }
    let model = match &options.model {
        Some(model) => json!({ "modelRef": { "name": model } }),
        None if recipe.spec.generate.mode == PipelineMode::Agent => {
            json!({ "selector": { "capabilities": ["chat", "tools"] } })
        }
        None => json!({ "selector": { "capabilities": ["chat"] } }),
    };
    let mut metadata = json!({ "name": options.agent_name.as_deref().unwrap_or(name) });
    if let Some(namespace) = &options.namespace {
        metadata["namespace"] = json!(namespace);
    }
    let manifest = json!({
        "apiVersion": "agent-operator.dev/v1alpha1",
        "kind": "Agent",
        "metadata": metadata,
        "spec": { "model": model, "knowledge": knowledge },
    });
    let mut problems = structural::check_kind::<Agent>(&manifest);
    if let Some(why) = bad_name(metadata_name(&manifest), MAX_AGENT_NAME) {
        problems.push(format!("metadata.name {why}"));
    }
    if let Some(why) = options.namespace.as_deref().and_then(|ns| bad_name(ns, 63)) {
        problems.push(format!("metadata.namespace {why}"));
    }
    if !problems.is_empty() {
        return Err(RecipesError::InvalidAgent(problems.join("; ")));
    }
    let agent: Agent =
        serde_json::from_value(manifest.clone()).map_err(|e| RecipesError::InvalidAgent(e.to_string()))?;
    if let Some(knowledge) = &agent.spec.knowledge {
        render_recipe_config(knowledge, &recipe)?;
    }
    let mut command = format!("agent-runtime recipes render {name}");
    for set in sets {
        let _ = write!(command, " --set {set}");
    }
    let yaml = serde_yaml::to_string(&manifest).map_err(|e| RecipesError::InvalidAgent(e.to_string()))?;
    Ok(format!("# Rendered by `{command}`\n{yaml}"))
}

/// Longest Agent name the operator accepts (its StatefulSet's revision label must fit in 63).
const MAX_AGENT_NAME: usize = 52;

fn metadata_name(manifest: &Value) -> &str {
    manifest["metadata"]["name"].as_str().unwrap_or_default()
}

/// Why `name` is not a DNS label of at most `max` characters, if it is not.
fn bad_name(name: &str, max: usize) -> Option<String> {
    let valid_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_ends =
        name.starts_with(|c: char| c.is_ascii_alphanumeric()) && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.len() > max {
        Some(format!("{name:?} is longer than {max} characters"))
    } else if !(valid_chars && valid_ends) {
        Some(format!("{name:?} must be lowercase letters, digits and '-', starting and ending with a letter or digit"))
    } else {
        None
    }
}

/// One problem `lint` found, in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (or folder) concerned.
    pub file: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// What `lint` checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LintReport {
    /// The recipe folders checked.
    pub folders: Vec<PathBuf>,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl LintReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// One line per folder (`ok`) or problem (`FAIL`), and a summary.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for folder in &self.folders {
            let problems: Vec<&Problem> = self.problems.iter().filter(|p| p.file.starts_with(folder)).collect();
            if problems.is_empty() {
                let _ = writeln!(text, "ok   {}", folder.display());
            }
            for problem in problems {
                let _ = writeln!(text, "FAIL {}: {}", problem.file.display(), problem.message);
            }
        }
        for problem in self.problems.iter().filter(|p| !self.folders.iter().any(|f| p.file.starts_with(f))) {
            let _ = writeln!(text, "FAIL {}: {}", problem.file.display(), problem.message);
        }
        let _ = writeln!(text, "{} recipe folders, {} problems", self.folders.len(), self.problems.len());
        text
    }
}

/// Checks a recipe folder, or every recipe folder in a directory: `recipe.yaml` is a Recipe
/// that passes the CRD schema and rules, its parameters' defaults suit their declarations, its
/// templates render against the runtime's contexts, and `agent.yaml` renders a RuntimeConfig.
pub fn lint(path: &Path) -> LintReport {
    let mut report = LintReport::default();
    let folders = if path.join(RECIPE_FILE).is_file() {
        vec![path.to_owned()]
    } else {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|dir| dir.join(RECIPE_FILE).is_file())
            .collect();
        found.sort();
        found
    };
    if folders.is_empty() {
        let message = format!("no recipe folder (a folder holding {RECIPE_FILE}) here");
        report.problems.push(Problem { file: path.to_owned(), message });
    }
    for folder in folders {
        lint_folder(&folder, &mut report.problems);
        report.folders.push(folder);
    }
    report
}

fn lint_folder(folder: &Path, problems: &mut Vec<Problem>) {
    let recipe_file = folder.join(RECIPE_FILE);
    let mut problem = |file: &Path, message: String| problems.push(Problem { file: file.to_owned(), message });
    match read_yaml(&recipe_file) {
        Ok(documents) => {
            for document in &documents {
                for message in structural::check_kind::<Recipe>(document) {
                    problem(&recipe_file, format!("schema: {message}"));
                }
            }
        }
        Err(message) => problem(&recipe_file, message),
    }
    let recipe = match catalogue::read_folder(folder) {
        Ok(recipe) => recipe,
        Err(error) => {
            problem(folder, error.to_string());
            return;
        }
    };
    let name = recipe.name_any();
    if folder.file_name().is_some_and(|dir| dir.to_string_lossy() != name) {
        problem(&recipe_file, format!("metadata.name {name} differs from the folder's name"));
    }
    for message in agent_crds::recipe_params::recipe_problems(&recipe) {
        problem(&recipe_file, message);
    }
    let agent_file = folder.join("agent.yaml");
    if agent_file.is_file() {
        for message in check_example(&agent_file, &recipe) {
            problem(&agent_file, message);
        }
    } else {
        problem(folder, "no agent.yaml (an example Agent using the recipe)".to_owned());
    }
}

fn read_yaml(file: &Path) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).map_err(|e| format!("invalid YAML: {e}")))
        .filter(|document| !matches!(document, Ok(Value::Null)))
        .collect()
}

/// Problems of a folder's example `agent.yaml`: schema of its Agent and Models, and the
/// RuntimeConfig it renders with the folder's recipe (or a built-in one it names).
fn check_example(file: &Path, recipe: &Recipe) -> Vec<String> {
    let documents = match read_yaml(file) {
        Ok(documents) => documents,
        Err(message) => return vec![message],
    };
    let mut problems = Vec::new();
    for document in &documents {
        let checked = match document["kind"].as_str() {
            Some("Agent") => structural::check_kind::<Agent>(document),
            Some("Model") => structural::check_kind::<Model>(document),
            Some("Recipe") => structural::check_kind::<Recipe>(document),
            _ => Vec::new(),
        };
        problems.extend(checked.into_iter().map(|m| format!("schema of {}: {m}", document["kind"])));
    }
    let mut manifests = Manifests::default();
    for document in documents {
        let text = serde_yaml::to_string(&document).unwrap_or_default();
        if let Err(error) = manifests.add_yaml(&text) {
            problems.push(error.to_string());
        }
    }
    if manifests.agents.is_empty() {
        problems.push("holds no Agent".to_owned());
    }
    for agent in &mut manifests.agents {
        agent.metadata.namespace.get_or_insert_with(|| "default".to_owned());
    }
    for model in &mut manifests.models {
        model.metadata.namespace.get_or_insert_with(|| "default".to_owned());
    }
    for agent in manifests.agents.clone() {
        let mut own = recipe.clone();
        own.metadata.namespace = agent.namespace();
        manifests.recipes.push(own);
        let model = chosen_model(&manifests, &agent);
        let references = manifests.references(&agent, Some(model));
        if let Err(error) = render_runtime_config(&agent, &references, &PodPaths::default()) {
            problems.push(format!("Agent {}: {error}", agent.name_any()));
        }
    }
    problems
}

/// The Model the example resolves to by agent-crds' rule (the one local mode and the operator
/// use), else a stand-in so the rest of the Agent can be checked.
fn chosen_model(manifests: &Manifests, agent: &Agent) -> Model {
    let models = manifests.models_for(agent);
    let found = resolve_model(agent, &models, Readiness::AssumedWithoutStatus).ok().cloned();
    found.unwrap_or_else(|| {
        let wanted = agent.spec.model.model_ref.as_ref().map(|r| r.name.clone());
        let name = wanted.unwrap_or_else(|| "stand-in".to_owned());
        serde_json::from_value(json!({
            "apiVersion": "agent-operator.dev/v1alpha1", "kind": "Model",
            "metadata": { "name": name, "namespace": agent.namespace() },
            "spec": {
                "endpoint": { "baseUrl": "http://model.invalid/v1", "model": "stand-in" },
                "capabilities": { "chat": true, "tools": true }
            }
        }))
        .expect("the stand-in Model is valid")
    })
}

#[cfg(test)]
mod tests;
