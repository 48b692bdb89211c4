//! Dereference: read everything the Agent points at (Model, Recipe, ConfigMaps, a
//! delegated agent's parent and siblings, the Agents it calls) and the children it already has,
//! from the operator's stores ([`crate::stores`]); only referenced ConfigMaps are read from the
//! API. Secrets are only named (to mount them), never read.
//! An agent's recipe is the `Recipe` of that name in its namespace, else the built-in one.

use agent_crds::Agent;
use agent_crds::catalogue;
use agent_crds::model::Model;
use agent_crds::model_selection::{NoMatch, Readiness, select_model};
use agent_crds::render::ResolvedReferences;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, ResourceExt};

use agent_crds::render::PARENT_LABEL;

use super::build::labels::{config_map_name, data_claim_name, headless_service_name, service_account_name};
use super::build::rbac::role_name;
use super::secrets::{SecretKeys, referenced_secret_keys};
use crate::stores::{ChildState, ClaimState, Stores, WorkloadState, find, in_namespace};

/// What the reconcile found in the cluster.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The model the agent uses, or why there is none.
    pub model: ModelLookup,
    /// Referenced objects ready for rendering.
    pub references: ResolvedReferences,
    /// References that do not resolve (ConfigMaps, Secrets, keys, embedding Model).
    pub missing: Vec<String>,
    /// Why the agent's recipe resolves neither to a `Recipe` in its namespace nor to a built-in
    /// one (Recipes are watched, so this waits for a change rather than polling).
    pub recipe_not_found: Option<String>,
    /// Secret keys the pod mounts.
    pub secret_keys: SecretKeys,
    /// The agent's existing children.
    pub children: ObservedChildren,
    /// For an Agent created by delegation (it carries the parent label): its parent and the
    /// parent's other children.
    pub family: Option<Family>,
}

/// A child Agent's parent and siblings, as read for the delegation check.
#[derive(Clone, Debug, Default)]
pub struct Family {
    /// The parent named by the label, if it exists in the child's namespace.
    pub parent: Option<Agent>,
    /// Agents carrying the same parent label (the child itself may be among them).
    pub siblings: Vec<Agent>,
}

/// The outcome of finding the agent's model.
#[derive(Clone, Debug, Default)]
pub enum ModelLookup {
    /// Found.
    Found(Box<Model>),
    /// The named Model does not exist.
    NotFound(String),
    /// No Model matches the selector.
    NoMatch(NoMatch),
    /// Not looked up.
    #[default]
    NotLookedUp,
}

/// Children that already exist, as the API server returned them.
#[derive(Clone, Debug, Default)]
pub struct ObservedChildren {
    /// The ServiceAccount.
    pub service_account: Option<ChildState>,
    /// The Role of the pod's ServiceAccount.
    pub role: Option<ChildState>,
    /// The RoleBinding of the pod's ServiceAccount.
    pub role_binding: Option<ChildState>,
    /// The RuntimeConfig ConfigMap.
    pub config_map: Option<ChildState>,
    /// The headless Service.
    pub headless_service: Option<ChildState>,
    /// The API Service.
    pub service: Option<ChildState>,
    /// The NetworkPolicy.
    pub network_policy: Option<ChildState>,
    /// The StatefulSet.
    pub stateful_set: Option<WorkloadState>,
    /// The data claim of the pod.
    pub data_claim: Option<ClaimState>,
}

/// Reads the agent's references and children: from the stores, except the ConfigMaps it
/// references (arbitrary, unlabelled objects: caching them would cache every ConfigMap of the
/// cluster), which are read with a GET each. Secrets are not read at all.
pub async fn dereference(client: &Client, stores: &Stores, agent: &Agent) -> Result<Observed, kube::Error> {
    let namespace = agent.namespace().unwrap_or_default();
    let mut observed = Observed { model: find_model(stores, agent, &namespace), ..Observed::default() };

    if let Some(wanted) = &agent.spec.memory.embedding_model_ref {
        match find(&stores.models, &namespace, &wanted.name) {
            Some(model) => observed.references.embedding_model = Some(model),
            None => observed.missing.push(format!("embedding Model {} not found", wanted.name)),
        }
    }
    if let Some(knowledge) = &agent.spec.knowledge {
        let object = find(&stores.recipes, &namespace, &knowledge.recipe);
        observed.references.recipe = catalogue::resolve(&knowledge.recipe, object);
        if observed.references.recipe.is_none() {
            let names: Vec<String> = in_namespace(&stores.recipes, &namespace).iter().map(|r| r.name_any()).collect();
            observed.recipe_not_found = Some(catalogue::not_found_message(&knowledge.recipe, &namespace, &names));
        }
    }

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    if let Some(cm) = agent.spec.persona.system_prompt_from.as_ref().and_then(|v| v.config_map_key_ref.as_ref()) {
        match config_map_value(&config_maps, &cm.name, &cm.key).await? {
            Ok(value) => {
                observed.references.config_map_values.insert((cm.name.clone(), cm.key.clone()), value);
            }
            Err(missing) => observed.missing.push(missing),
        }
    }
    for ca in agent.spec.tools.iter().filter_map(|t| t.mcp.as_ref()).filter_map(|m| m.ca_config_map_ref.as_ref()) {
        match config_map_value(&config_maps, &ca.name, &ca.key).await? {
            Ok(value) => {
                observed.references.config_map_values.insert((ca.name.clone(), ca.key.clone()), value);
            }
            Err(missing) => observed.missing.push(missing),
        }
    }
    if let ModelLookup::Found(model) = &observed.model
        && let Some(ca) = model.spec.endpoint.as_ref().and_then(|e| e.ca_config_map_ref.as_ref())
    {
        match config_map_value(&config_maps, &ca.name, &ca.key).await? {
            Ok(value) => observed.references.model_ca_pem = Some(value),
            Err(missing) => observed.missing.push(missing),
        }
    }

    if let Some(parent) = agent.labels().get(PARENT_LABEL) {
        let siblings = in_namespace(&stores.agents, &namespace)
            .into_iter()
            .filter(|a| a.labels().get(PARENT_LABEL) == Some(parent))
            .map(|a| (*a).clone())
            .collect();
        let parent = find(&stores.agents, &namespace, parent);
        observed.family = Some(Family { parent, siblings });
    }
    for callee in agent.spec.tools.iter().filter_map(|t| t.agent.as_ref()) {
        let Some(name) = &callee.name else { continue };
        let callee_namespace = callee.namespace.clone().unwrap_or_else(|| namespace.clone());
        match find(&stores.agents, &callee_namespace, name) {
            None => observed
                .missing
                .push(format!("Agent {name} (called as a tool) not found in namespace {callee_namespace}")),
            // The callee's API key is mounted for a callee in the same namespace, unless the
            // tool names its own token.
            Some(found) if callee_namespace == namespace && callee.token_secret_ref.is_none() => {
                if let Some(key) = found.spec.api.auth_secret_ref {
                    observed.references.callee_keys.insert(name.clone(), key);
                }
            }
            Some(_) => {}
        }
    }

    let mut used_models: Vec<&Model> = observed.references.embedding_model.iter().collect();
    if let ModelLookup::Found(model) = &observed.model {
        used_models.push(model);
    }
    observed.secret_keys = referenced_secret_keys(agent, &used_models);
    for key in observed.references.callee_keys.values() {
        observed.secret_keys.entry(key.name.clone()).or_default().insert(key.key.clone());
    }
    // Secrets are mounted, never read: the runtime reloads rotated values itself, and a missing
    // Secret or key shows as the pod's mount or start error (`Ready=False`, `PodNotReady`).

    if let ModelLookup::Found(model) = &observed.model {
        observed.references.model = Some((**model).clone());
    }
    observed.children = observe_children(stores, agent, &namespace);
    Ok(observed)
}

fn find_model(stores: &Stores, agent: &Agent, namespace: &str) -> ModelLookup {
    if let Some(reference) = &agent.spec.model.model_ref {
        return match find(&stores.models, namespace, &reference.name) {
            Some(model) => ModelLookup::Found(Box::new(model)),
            None => ModelLookup::NotFound(reference.name.clone()),
        };
    }
    let Some(selector) = &agent.spec.model.selector else { return ModelLookup::NotLookedUp };
    let all: Vec<Model> = in_namespace(&stores.models, namespace).iter().map(|m| (**m).clone()).collect();
    let bound = agent.status.as_ref().and_then(|s| s.bound_model.as_deref());
    match select_model(selector, &all, bound, Readiness::FromStatus) {
        Ok(model) => ModelLookup::Found(Box::new(model.clone())),
        Err(no_match) => ModelLookup::NoMatch(no_match),
    }
}
/// The value of a ConfigMap key, or a sentence saying what is missing.
async fn config_map_value(api: &Api<ConfigMap>, name: &str, key: &str) -> Result<Result<String, String>, kube::Error> {
    Ok(match api.get_opt(name).await? {
        None => Err(format!("ConfigMap {name} not found")),
        Some(cm) => {
            cm.data.and_then(|mut data| data.remove(key)).ok_or_else(|| format!("ConfigMap {name} has no key {key}"))
        }
    })
}

fn observe_children(stores: &Stores, agent: &Agent, namespace: &str) -> ObservedChildren {
    let name = agent.name_any();
    ObservedChildren {
        service_account: stores.service_accounts.get(namespace, &service_account_name(agent)),
        role: stores.roles.get(namespace, &role_name(agent)),
        role_binding: stores.role_bindings.get(namespace, &role_name(agent)),
        config_map: stores.config_maps.get(namespace, &config_map_name(agent)),
        headless_service: stores.services.get(namespace, &headless_service_name(agent)),
        service: stores.services.get(namespace, &name),
        network_policy: stores.network_policies.get(namespace, &name),
        stateful_set: stores.stateful_sets.get(namespace, &name),
        data_claim: stores.data_claims.get(namespace, &data_claim_name(agent)),
    }
}
