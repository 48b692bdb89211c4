//! Tests of the recipes subcommands.

use super::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn list_shows_every_builtin_with_its_mode() {
    let text = list();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("MODE") && lines[0].ends_with("DESCRIPTION"));
    assert_eq!(lines.len(), 1 + catalogue::names().len());
    assert!(lines.iter().any(|l| l.starts_with("doc-retriever") && l.contains("Retrieve")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("docsum") && l.contains("Summarize")), "{text}");
}

#[test]
fn show_prints_the_recipe_with_its_templates_and_refuses_unknown_names() {
    let yaml = show("docsum").unwrap();
    let recipe: Recipe = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(recipe.spec, catalogue::builtin("docsum").unwrap().spec);
    assert!(yaml.contains("refineTemplate:"), "{yaml}");
    let error = show("docsumm").unwrap_err().to_string();
    assert!(error.starts_with("no built-in recipe docsumm; built in: chatqna, "), "{error}");
}

#[test]
fn set_values_are_json_when_they_parse_else_strings() {
    let sets = ["topK=6", "hybrid=true", "lambda=0.3", "style=detailed", "empty=", "quoted=\"6\""].map(String::from);
    let parsed = parse_sets(&sets).unwrap();
    assert_eq!(parsed["topK"], json!(6));
    assert_eq!(parsed["hybrid"], json!(true));
    assert_eq!(parsed["lambda"], json!(0.3));
    assert_eq!(parsed["style"], json!("detailed"));
    assert_eq!(parsed["empty"], json!(""));
    assert_eq!(parsed["quoted"], json!("6"));
    assert!(matches!(parse_sets(&["topK".into()]), Err(RecipesError::BadSet(_))));
}

#[test]
fn render_prints_an_agent_that_renders_with_the_recipe() {
    let options = RenderOptions {
        agent_name: Some("support".into()),
        namespace: Some("team-a".into()),
        model: Some("llama-8b".into()),
    };
    let yaml = render("chatqna", &["topK=6".into(), "answerStyle=detailed".into()], &options).unwrap();
    assert!(
        yaml.starts_with(
            "# Rendered by `agent-runtime recipes render chatqna --set topK=6 --set answerStyle=detailed`\n"
        )
    );
    let agent: Agent = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!((agent.name_any(), agent.namespace().as_deref()), ("support".to_owned(), Some("team-a")));
    assert_eq!(agent.spec.model.model_ref.as_ref().unwrap().name, "llama-8b");
    let knowledge = agent.spec.knowledge.as_ref().unwrap();
    assert_eq!(
        knowledge.parameters,
        BTreeMap::from([("topK".into(), json!(6)), ("answerStyle".into(), json!("detailed"))])
    );
    let config = render_recipe_config(knowledge, &catalogue::builtin("chatqna").unwrap()).unwrap();
    assert_eq!(config.spec.retrieve.top_k, 6);
}

#[test]
fn render_without_a_model_selects_one_by_the_capabilities_the_recipe_needs() {
    let yaml = render("react-agent", &[], &RenderOptions::default()).unwrap();
    let agent: Agent = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(agent.name_any(), "react-agent");
    assert!(agent.namespace().is_none());
    let selector = serde_json::to_value(agent.spec.model.selector.unwrap()).unwrap();
    assert_eq!(selector["capabilities"], json!(["chat", "tools"]));
}

#[test]
fn render_refuses_bad_parameters_with_the_operators_message() {
    let options = RenderOptions::default();
    let error = render("chatqna", &["topk=6".into()], &options).unwrap_err().to_string();
    assert_eq!(
        error,
        "recipe chatqna has no parameter topk; it declares: topK, fetchK, mmrLambda, hybrid, answerStyle"
    );
    let error = render("chatqna", &["answerStyle=long".into()], &options).unwrap_err().to_string();
    assert_eq!(error, r#"parameter answerStyle of recipe chatqna must be one of "concise", "detailed"; got "long""#);
    let error = render("chatqna", &["topK=50".into()], &options).unwrap_err().to_string();
    assert_eq!(error, "recipe chatqna with these parameters: retrieve.fetchK (20) must be at least retrieve.topK (50)");
    let error = render("nope", &[], &options).unwrap_err();
    assert!(matches!(error, RecipesError::UnknownRecipe(_)));
    let long = RenderOptions { agent_name: Some("x".repeat(53)), ..RenderOptions::default() };
    let error = render("chatqna", &[], &long).unwrap_err().to_string();
    assert!(error.ends_with("is longer than 52 characters"), "{error}");
    let upper = RenderOptions { namespace: Some("Team_A".into()), ..RenderOptions::default() };
    let error = render("chatqna", &[], &upper).unwrap_err().to_string();
    assert!(error.starts_with(r#"the rendered Agent is invalid: metadata.namespace "Team_A" must be"#), "{error}");
}

#[test]
fn lint_passes_the_catalogue() {
    let report = lint(&repo().join("recipes"));
    assert_eq!(report.problems, Vec::<Problem>::new(), "{}", report.text());
    assert_eq!(report.folders.len(), catalogue::names().len());
}

#[test]
fn lint_reports_each_problem_of_a_broken_folder() {
    let dir = std::env::temp_dir().join(format!("recipes-lint-{}", std::process::id()));
    let folder = dir.join("broken");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("recipe.yaml"),
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Recipe\nmetadata:\n  name: other\nspec:\n  description: d\n  \
         parameters:\n    - name: tone\n      type: string\n      default: dry\n      enum: [dry, warm]\n    \
         - name: topK\n      type: integer\n      default: 40\n  retrieve:\n    topk: 3\n  generate:\n    mode: Answer\n",
    )
    .unwrap();
    std::fs::write(folder.join("prompt.hbs"), "{{question}} {{params.tone}} {{params.missing}}").unwrap();
    std::fs::write(
        folder.join("agent.yaml"),
        "apiVersion: agent-operator.dev/v1alpha1\nkind: Agent\nmetadata:\n  name: a\nspec:\n  model:\n    \
         modelRef: {name: m}\n  knowledge:\n    recipe: other\n    parameters: {tone: cold}\n",
    )
    .unwrap();
    let report = lint(&dir);
    std::fs::remove_dir_all(&dir).ok();
    let messages: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(!report.is_clean());
    assert!(messages.contains(&"schema: spec.retrieve.topk: unknown field"), "{messages:#?}");
    assert!(messages.contains(&"metadata.name other differs from the folder's name"), "{messages:#?}");
    assert!(
        messages.contains(&"with its defaults: recipe other with these parameters: retrieve.fetchK (20) must be at least retrieve.topK (40)"),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("Agent a: parameter tone of recipe other must be one of")),
        "{messages:#?}"
    );
    assert!(report.text().ends_with("1 recipe folders, 4 problems\n"), "{}", report.text());

    let mut fixed = report.clone();
    fixed.problems.clear();
    assert!(fixed.text().starts_with("ok   "));
}

#[test]
fn lint_of_a_folder_without_recipes_is_a_problem() {
    let report = lint(&repo().join("examples"));
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].message.starts_with("no recipe folder"));
}
