//! `agent-runtime recipes` as a user runs it (the real binary, its output and exit status), and
//! how `agent-runtime run` resolves a recipe: a recipe folder in the manifests, else the built-in.

use std::path::PathBuf;
use std::process::{Command, Output};

fn recipes(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agent-runtime"))
        .arg("recipes")
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("RUST_LOG", "off")
        .output()
        .expect("the agent-runtime binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn list_names_every_builtin_recipe() {
    let output = recipes(&["list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for name in ["chatqna", "chatqna-norerank", "doc-retriever", "docsum", "faqgen", "codegen", "react-agent"] {
        assert!(text.lines().any(|line| line.starts_with(&format!("{name} "))), "{name} missing from:\n{text}");
    }
}

#[test]
fn show_prints_a_recipe_kubectl_can_apply() {
    let output = recipes(&["show", "doc-retriever"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let recipe: serde_json::Value = serde_yaml::from_str(&stdout(&output)).unwrap();
    assert_eq!(recipe["kind"], "Recipe");
    assert_eq!(recipe["metadata"]["name"], "doc-retriever");
    assert_eq!(recipe["spec"]["generate"]["mode"], "Retrieve");
    assert!(recipe["spec"]["generate"]["promptTemplate"].as_str().unwrap().contains("{{documentName}}"));

    let output = recipes(&["show", "nope"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no built-in recipe nope; built in: chatqna"), "{}", stderr(&output));
}

#[test]
fn render_prints_an_agent_manifest_or_refuses_bad_parameters() {
    let output = recipes(&[
        "render",
        "docsum",
        "--set",
        "strategy=Refine",
        "--set",
        "maxWords=80",
        "--agent-name",
        "notes",
        "--namespace",
        "team-a",
        "--model",
        "llama-8b",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let agent: serde_json::Value = serde_yaml::from_str(&stdout(&output)).unwrap();
    assert_eq!(agent["kind"], "Agent");
    assert_eq!(agent["metadata"], serde_json::json!({"name": "notes", "namespace": "team-a"}));
    assert_eq!(agent["spec"]["model"]["modelRef"]["name"], "llama-8b");
    assert_eq!(
        agent["spec"]["knowledge"],
        serde_json::json!({"recipe": "docsum", "parameters": {"strategy": "Refine", "maxWords": 80}})
    );

    let output = recipes(&["render", "docsum", "--set", "strategy=Fast"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing is printed for GitOps to pick up");
    assert!(
        stderr(&output).contains(
            r#"parameter strategy of recipe docsum must be one of "Stuff", "MapReduce", "Refine"; got "Fast""#
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn lint_passes_the_catalogue_and_fails_a_broken_folder() {
    let output = recipes(&["lint", "recipes"]);
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).ends_with("7 recipe folders, 0 problems\n"), "{}", stdout(&output));

    let folder = std::env::temp_dir().join(format!("recipes-cli-broken-{}", std::process::id())).join("broken");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("recipe.yaml"),
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Recipe\nmetadata:\n  name: broken\nspec:\n  description: d\n  generate:\n    mode: Retrieve\n",
    )
    .unwrap();
    std::fs::write(folder.join("prompt.hbs"), "{{#each chunks}}{{txt}}{{/each}}\n").unwrap();
    let output = recipes(&["lint", folder.to_str().unwrap()]);
    std::fs::remove_dir_all(folder.parent().unwrap()).ok();
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("FAIL") && text.contains("generate.promptTemplate") && text.contains("txt"), "{text}");
    assert!(text.contains("no agent.yaml"), "{text}");
}

fn local(manifests: PathBuf) -> agent_crds::RuntimeConfig {
    let scratch = std::env::temp_dir().join(format!("recipes-cli-local-{}", std::process::id()));
    let options = agent_runtime::local::LocalOptions {
        manifests,
        agent: None,
        data_dir: scratch.join("data"),
        secrets_dir: scratch.join("secrets"),
    };
    agent_runtime::local::load(&options).unwrap().config
}

#[test]
fn local_mode_uses_a_recipe_folder_beside_the_agent_else_the_builtin() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let builtin = agent_crds::catalogue::builtin("doc-retriever").unwrap();
    let config = local(repo.join("recipes/doc-retriever/agent.yaml"));
    assert_eq!(config.recipe.unwrap().spec.generate.prompt_template, builtin.spec.generate.prompt_template);

    let folder = std::env::temp_dir().join(format!("recipes-cli-folder-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["recipe.yaml", "agent.yaml"] {
        std::fs::copy(repo.join("recipes/doc-retriever").join(file), folder.join(file)).unwrap();
    }
    std::fs::write(folder.join("prompt.hbs"), "Ours: {{#each chunks}}{{text}}{{/each}}\n").unwrap();
    let config = local(folder.clone());
    std::fs::remove_dir_all(&folder).ok();
    let recipe = config.recipe.unwrap();
    assert_eq!(recipe.spec.generate.prompt_template.as_deref(), Some("Ours: {{#each chunks}}{{text}}{{/each}}"));
    assert_eq!(recipe.parameters["rerank"], "Mmr", "the example's parameters apply to the folder's recipe");
}
