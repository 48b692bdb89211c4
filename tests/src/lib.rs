//! Shared helpers of the cross-crate and end-to-end tests: the repository's paths and the
//! external tools (Python validators, kubectl, helm) the tests call.

pub mod llama;

use std::path::PathBuf;
use std::process::Command;

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Directory of the tools installed by `scripts/install-tools.sh`.
pub fn tools_bin() -> PathBuf {
    let home = std::env::var_os("AGENT_TOOLS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agent-operator/tools"),
        PathBuf::from,
    );
    home.join("bin")
}

/// Runs `program args` from the repository root with the tools on `PATH`; panics with its
/// output when it fails, returns its stdout otherwise.
///
/// # Panics
/// When the program cannot start or exits unsuccessfully.
pub fn run_checked(program: &str, args: &[&str]) -> String {
    let path = format!("{}:{}", tools_bin().display(), std::env::var("PATH").unwrap_or_default());
    let output =
        Command::new(program).args(args).current_dir(repo_root()).env("PATH", path).output().unwrap_or_else(|e| {
            panic!("cannot run {program}: {e}; run scripts/install-tools.sh (the README's test command does)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{program} {args:?} failed ({}):\n{stdout}\n{stderr}", output.status);
    stdout
}
