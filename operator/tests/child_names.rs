//! An Agent and a served Model of the same name in one namespace: both controllers apply their
//! children with the same field manager, so two children of one kind with one name would be
//! overwritten by each controller in turn, forever. Their children's names must never meet.

mod support;

use std::collections::BTreeMap;

use agent_crds::manifests::Manifests;
use agent_crds::{Agent, Model};
use agent_operator::agent::build::labels::data_claim_name;
use agent_operator::model::build::{BuildInput, build};
use agent_operator::model::validate::validate;
use agent_operator::offline::{children, children_as_values};
use serde_json::{Value, json};
use support::example;

/// The name the Agent and the Model share.
const NAME: &str = "llama-8b";

/// The served example Model: DRA claim template, cache claim, download Job, Deployment, Service.
fn model() -> Model {
    let mut model = example("examples/served-model.yaml", "Model", NAME);
    model["metadata"]["uid"] = json!("0b7a6c1e-2222-4333-8444-555566667777");
    serde_json::from_value(model).unwrap()
}

/// The example chat agent, renamed after the Model and using it, in the Model's namespace.
fn agent(model: &Model) -> Agent {
    let mut agent = example("examples/chat-agent.yaml", "Agent", "helpdesk");
    agent["metadata"]["name"] = json!(NAME);
    agent["metadata"]["namespace"] = json!(model.metadata.namespace);
    agent["metadata"]["uid"] = json!("5f0c4a2e-1111-2222-3333-444455556666");
    agent["spec"]["model"]["modelRef"]["name"] = json!(NAME);
    serde_json::from_value(agent).unwrap()
}

fn kind_and_name(object: &Value) -> (String, String) {
    (object["kind"].as_str().unwrap().to_owned(), object["metadata"]["name"].as_str().unwrap().to_owned())
}

/// Every object the Agent controller makes, and the claim its StatefulSet makes from its template.
fn agent_children(agent: &Agent, model: &Model) -> (Vec<(String, String)>, Vec<Value>) {
    let manifests = Manifests { agents: vec![agent.clone()], models: vec![model.clone()], ..Manifests::default() };
    let values = children_as_values(&children(&manifests, agent, "runtime:test").unwrap());
    let mut named: Vec<(String, String)> = values.iter().map(kind_and_name).collect();
    named.push(("PersistentVolumeClaim".to_owned(), data_claim_name(agent)));
    (named, values)
}

/// Every object the Model controller makes for a served Model.
fn model_children(model: &Model) -> Vec<(String, String)> {
    let source = validate(model).unwrap().expect("a served Model");
    let input = BuildInput {
        model,
        serve: model.spec.serve.as_ref().unwrap(),
        source: &source,
        runtime_image: "runtime:test",
        cache_ready: true,
        cache_recorded: false,
    };
    build(&input).to_values().iter().map(kind_and_name).collect()
}

#[test]
fn an_agent_and_a_served_model_of_the_same_name_share_no_child_name_of_any_kind() {
    let model = model();
    let agent = agent(&model);
    let (agent_named, agent_values) = agent_children(&agent, &model);
    let model_named = model_children(&model);
    for kind in ["Service", "PersistentVolumeClaim"] {
        assert!(
            agent_named.iter().any(|(k, _)| k == kind) && model_named.iter().any(|(k, _)| k == kind),
            "both controllers make a {kind}, so the check below can fail"
        );
    }
    let mut made_by: BTreeMap<&(String, String), &str> = BTreeMap::new();
    let all = agent_named.iter().map(|child| ("Agent", child)).chain(model_named.iter().map(|child| ("Model", child)));
    for (owner, child) in all {
        if let Some(first) = made_by.insert(child, owner) {
            panic!("the {first} and the {owner} both make {} {}", child.0, child.1);
        }
    }

    let services = |named: &[(String, String)]| -> Vec<String> {
        named.iter().filter(|(kind, _)| kind == "Service").map(|(_, name)| name.clone()).collect()
    };
    assert_eq!(services(&agent_named), ["llama-8b-headless", "llama-8b"]);
    assert_eq!(services(&model_named), ["llama-8b-model"]);
    let config_map = agent_values.iter().find(|v| v["kind"] == "ConfigMap").unwrap();
    let config: Value = serde_json::from_str(config_map["data"]["runtime-config.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["model"]["baseUrl"], "http://llama-8b-model.models.svc:8000/v1",
        "the agent calls the Model's Service"
    );
}
