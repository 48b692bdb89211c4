//! Local mode: `agent-runtime run <agent.yaml | folder>` reads an Agent and the Models (and
//! Recipes, ConfigMaps) beside it, renders the RuntimeConfig with the operator's own function,
//! and serves it on this machine. Secret keys are read from `<secrets-dir>/<secret>/<key>`.
//! A recipe resolves as in a cluster: a `Recipe` in the manifests (a `recipe.yaml` takes its
//! templates from the `*.hbs` files beside it), else the built-in recipe of that name.

use std::path::{Path, PathBuf};

use agent_crds::catalogue;
use agent_crds::manifests::Manifests;
use agent_crds::model_selection::{ModelResolutionError, NoMatch, Readiness, resolve_model};
use agent_crds::render::{RenderError, render_runtime_config};
use agent_crds::runtime_config::PodPaths;
use agent_crds::{Agent, RuntimeConfig};
use kube::ResourceExt;

/// Where local mode finds and keeps things.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// A manifest file or a folder of them.
    pub manifests: PathBuf,
    /// Which Agent to run when there are several.
    pub agent: Option<String>,
    /// Root of the agents' data (sessions, vectors); each agent gets `<namespace>-<name>` below it.
    pub data_dir: PathBuf,
    /// Where Secret keys live: `<secrets-dir>/<secret>/<key>`.
    pub secrets_dir: PathBuf,
}

/// Why local mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// A manifest does not parse.
    #[error("{0}: {1}")]
    Parse(PathBuf, agent_crds::manifests::ParseError),
    /// A recipe folder (`recipe.yaml` and its `*.hbs` templates) does not load.
    #[error("{0}: {1}")]
    Recipe(PathBuf, catalogue::CatalogueError),
    /// No Agent, or several without `--agent`, or not the one asked for.
    #[error("{0}")]
    Agent(String),
    /// The Model cannot be determined.
    #[error("{0}")]
    Model(String),
    /// The RuntimeConfig cannot be rendered.
    #[error("Agent {0}: {1}")]
    Render(String, RenderError),
}

/// The agent to run locally.
#[derive(Clone, Debug)]
pub struct LocalAgent {
    /// Its RuntimeConfig, as the operator would render it.
    pub config: RuntimeConfig,
    /// The Model, when it says the runtime serves it (`serve.engine: runtime`): local mode then
    /// runs it in this process instead of calling its (cluster) Service.
    pub in_process: Option<agent_crds::model::ModelServe>,
}

/// Reads the manifests and renders the chosen agent's RuntimeConfig.
pub fn load(options: &LocalOptions) -> Result<LocalAgent, LocalError> {
    let mut manifests = Manifests::default();
    for file in manifest_files(&options.manifests)? {
        if file.file_name().is_some_and(|name| name == catalogue::RECIPE_FILE) {
            // A recipe folder: its templates live in the `*.hbs` files beside recipe.yaml.
            let folder = file.parent().unwrap_or(Path::new("."));
            manifests.recipes.push(catalogue::read_folder(folder).map_err(|e| LocalError::Recipe(file.clone(), e))?);
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| LocalError::Read(file.clone(), e))?;
        manifests.add_yaml(&text).map_err(|e| LocalError::Parse(file.clone(), e))?;
    }
    default_namespaces(&mut manifests);
    let agent = choose_agent(&manifests, options.agent.as_deref())?;
    let model = choose_model(&manifests, &agent)?;
    let in_process = model.spec.serve.clone().filter(|serve| serve.engine == agent_crds::model::Engine::Runtime);
    let references = manifests.references(&agent, Some(model));
    let paths = PodPaths {
        data_dir: options
            .data_dir
            .join(format!("{}-{}", agent.namespace().unwrap_or_default(), agent.name_any()))
            .display()
            .to_string(),
        secrets_dir: options.secrets_dir.display().to_string(),
    };
    let config =
        render_runtime_config(&agent, &references, &paths).map_err(|e| LocalError::Render(agent.name_any(), e))?;
    Ok(LocalAgent { config, in_process })
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, LocalError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| LocalError::Read(path.to_owned(), e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Objects without a namespace live in `default`, as `kubectl apply` would put them.
fn default_namespaces(manifests: &mut Manifests) {
    let fill = |ns: &mut Option<String>| {
        ns.get_or_insert_with(|| "default".to_owned());
    };
    manifests.agents.iter_mut().for_each(|o| fill(&mut o.metadata.namespace));
    manifests.models.iter_mut().for_each(|o| fill(&mut o.metadata.namespace));
    manifests.recipes.iter_mut().for_each(|o| fill(&mut o.metadata.namespace));
    manifests.config_maps.iter_mut().for_each(|o| fill(&mut o.metadata.namespace));
}

fn choose_agent(manifests: &Manifests, wanted: Option<&str>) -> Result<Agent, LocalError> {
    let names: Vec<String> = manifests.agents.iter().map(ResourceExt::name_any).collect();
    match (wanted, manifests.agents.as_slice()) {
        (_, []) => Err(LocalError::Agent("the manifests contain no Agent".into())),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(LocalError::Agent(format!("several Agents ({}); pick one with --agent", names.join(", ")))),
        (Some(name), agents) => agents
            .iter()
            .find(|a| a.name_any() == name)
            .cloned()
            .ok_or_else(|| LocalError::Agent(format!("no Agent {name}; found: {}", names.join(", ")))),
    }
}

/// The agent's Model by agent-crds' rule (the operator's scheduler for selectors); Models on disk
/// have no status, so they count as Ready.
fn choose_model(manifests: &Manifests, agent: &Agent) -> Result<agent_crds::Model, LocalError> {
    let models = manifests.models_for(agent);
    match resolve_model(agent, &models, Readiness::AssumedWithoutStatus) {
        Ok(model) => Ok(model.clone()),
        Err(ModelResolutionError::NotFound(name)) => {
            Err(LocalError::Model(format!("Model {name} is not in the manifests; add it beside the Agent")))
        }
        Err(ModelResolutionError::NoMatch(NoMatch(why))) => {
            Err(LocalError::Model(format!("no Model in the manifests matches spec.model.selector: {why}")))
        }
        Err(unspecified @ ModelResolutionError::Unspecified) => Err(LocalError::Model(unspecified.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &str = "\
apiVersion: agent-operator.dev/v1alpha1
kind: Model
metadata: {name: chat-only}
spec:
  endpoint: {baseUrl: 'http://127.0.0.1:9/v1', model: small}
  capabilities: {chat: true}
---
apiVersion: agent-operator.dev/v1alpha1
kind: Model
metadata: {name: with-tools}
spec:
  endpoint: {baseUrl: 'http://127.0.0.1:9/v1', model: large}
  capabilities: {chat: true, tools: true}
";

    /// Loads `MODELS` and an Agent whose spec is `spec` (YAML flow mappings, one per line).
    fn load_agent(test: &str, spec: &str) -> Result<RuntimeConfig, LocalError> {
        let dir = std::env::temp_dir().join(format!("agent-runtime-local-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("agent.yaml");
        let agent =
            format!("apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata: {{name: a}}\nspec:\n{spec}");
        std::fs::write(&file, format!("{MODELS}---\n{agent}")).unwrap();
        let options =
            LocalOptions { manifests: file, agent: None, data_dir: dir.join("data"), secrets_dir: dir.join("secrets") };
        let result = load(&options).map(|agent| agent.config);
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    #[test]
    fn a_bad_schedule_fails_at_start_naming_the_field_and_a_once_task_loads() {
        let spec =
            "  model: {modelRef: {name: chat-only}}\n  task: {mode: Schedule, schedule: '61 * * * *', input: go}\n";
        let error = load_agent("schedule", spec).unwrap_err().to_string();
        assert!(error.starts_with("Agent a: task.schedule \"61 * * * *\" is not a valid cron expression"), "{error}");
        let config =
            load_agent("once", "  model: {modelRef: {name: chat-only}}\n  task: {mode: Once, input: go}\n").unwrap();
        assert_eq!((config.task.input.as_deref(), config.task.generation.len()), (Some("go"), 16));
        assert_eq!(config.cluster, None, "local mode never reaches for a cluster");
    }

    #[test]
    fn a_selector_binds_a_model_by_the_operators_rule_and_says_why_none_matches() {
        let config = load_agent("selector", "  model: {selector: {capabilities: [chat, tools]}}\n").unwrap();
        assert_eq!(config.model.model_object, "with-tools");
        let error = load_agent("no-match", "  model: {selector: {capabilities: [embeddings]}}\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "no Model in the manifests matches spec.model.selector: chat-only (lacks Embeddings), \
             with-tools (lacks Embeddings)"
        );
        let error = load_agent("missing", "  model: {modelRef: {name: gone}}\n").unwrap_err();
        assert_eq!(error.to_string(), "Model gone is not in the manifests; add it beside the Agent");
    }
}
