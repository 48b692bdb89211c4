//! Local mode: `agent-runtime run <agent.yaml | folder>` reads an Agent and the Models (and
//! Recipes, ConfigMaps) beside it, renders the RuntimeConfig with the operator's own function,
//! and serves it on this machine. Secret keys are read from `<secrets-dir>/<secret>/<key>`.
//! A recipe resolves as in a cluster: a `Recipe` in the manifests (a `recipe.yaml` takes its
//! templates from the `*.hbs` files beside it), else the built-in recipe of that name.

use std::path::{Path, PathBuf};

use agent_crds::catalogue;
use agent_crds::manifests::Manifests;
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

/// Reads the manifests and renders the chosen agent's RuntimeConfig.
pub fn load(options: &LocalOptions) -> Result<RuntimeConfig, LocalError> {
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
    let references = manifests.references(&agent, Some(model));
    let paths = PodPaths {
        data_dir: options
            .data_dir
            .join(format!("{}-{}", agent.namespace().unwrap_or_default(), agent.name_any()))
            .display()
            .to_string(),
        secrets_dir: options.secrets_dir.display().to_string(),
    };
    render_runtime_config(&agent, &references, &paths).map_err(|e| LocalError::Render(agent.name_any(), e))
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

fn choose_model(manifests: &Manifests, agent: &Agent) -> Result<agent_crds::Model, LocalError> {
    let models = manifests.models_for(agent);
    if let Some(reference) = &agent.spec.model.model_ref {
        return models.into_iter().find(|m| m.name_any() == reference.name).ok_or_else(|| {
            LocalError::Model(format!("Model {} is not in the manifests; add it beside the Agent", reference.name))
        });
    }
    let chat: Vec<_> = models.into_iter().filter(|m| m.spec.capabilities.chat).collect();
    match chat.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(LocalError::Model("no chat Model in the manifests".into())),
        _ => Err(LocalError::Model("several Models match; name one with spec.model.modelRef".into())),
    }
}
