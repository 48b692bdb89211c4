//! Writes the generated files: the CRD YAML (`crdgen [DIR...]`, default `crds/yaml` and
//! `charts/agent-operator/crds`) and, without arguments, `recipes/catalogue.yaml` (the built-in
//! recipes as `Recipe` objects with their templates inlined).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let defaults = dirs.is_empty();
    if defaults {
        dirs = vec![root.join("crds/yaml"), root.join("charts/agent-operator/crds")];
    }
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        for crd in agent_crds::crd::all() {
            std::fs::write(dir.join(agent_crds::crd::file_name(&crd)), agent_crds::crd::to_yaml(&crd)?)?;
        }
    }
    let first = &dirs[0];
    std::fs::write(first.join("kustomization.yaml"), agent_crds::crd::kustomization())?;
    println!("wrote CRDs to {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "));
    if defaults {
        let catalogue = root.join(agent_crds::catalogue::CATALOGUE_FILE);
        std::fs::write(&catalogue, agent_crds::catalogue::catalogue_yaml())?;
        println!("wrote the recipe catalogue to {}", catalogue.display());
    }
    Ok(())
}
