//! Scratch directories for tests, under `$TMPDIR/agent-runtime-tests/<pid>/`. Stores opened
//! by tests are often still open (or their process killed) when a test ends, so nothing is
//! removed on drop; instead the first directory a test process asks for sweeps away the
//! folders of test processes that are no longer running.

use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory path for `name` (not created).
pub fn scratch_path(name: &str) -> PathBuf {
    static SWEEP: Once = Once::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let root = std::env::temp_dir().join("agent-runtime-tests");
    SWEEP.call_once(|| sweep_finished_processes(&root));
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    root.join(std::process::id().to_string()).join(format!("{name}-{unique}"))
}

fn sweep_finished_processes(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let running = entry
            .file_name()
            .to_str()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| std::path::Path::new("/proc").join(pid.to_string()).exists());
        if !running {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
