//! File watching: every bundle path is watched with notify (directories
//! recursively, so the `..data` symlink swap of a Kubernetes ConfigMap volume
//! is seen; archives with their parent directory, so a replacement by rename
//! is seen). Events are debounced:
//! a reload starts once the files have been quiet for the debounce window,
//! runs on a blocking thread, and either activates a new snapshot or leaves
//! the active one serving (the decision point records the failure).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::SourceError;
use crate::pdp::DecisionPoint;

/// Keeps the watch alive; dropping it stops watching and reloading.
#[derive(Debug)]
pub struct WatchHandle {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watch `paths` and reload `pdp` when they change. Must be called inside
/// a tokio runtime.
pub fn watch_bundles(
    pdp: Arc<DecisionPoint>,
    paths: &[PathBuf],
    debounce: Duration,
) -> Result<WatchHandle, SourceError> {
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(&event.kind) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "file watch error"),
        })
        .map_err(|source| SourceError::Watch {
            path: PathBuf::new(),
            source,
        })?;
    for path in paths {
        for (target, mode) in watch_targets(path) {
            watcher
                .watch(&target, mode)
                .map_err(|source| SourceError::Watch {
                    path: target.clone(),
                    source,
                })?;
        }
    }
    let task = tokio::spawn(reload_loop(pdp, rx, debounce));
    Ok(WatchHandle {
        _watcher: watcher,
        task,
    })
}

/// What to watch for one bundle path: a directory recursively (a ConfigMap
/// volume's `..data` swap happens inside it); an archive through its parent
/// directory too, since replacing it by rename replaces the watched inode.
fn watch_targets(path: &Path) -> Vec<(PathBuf, RecursiveMode)> {
    if path.is_dir() {
        return vec![(path.to_path_buf(), RecursiveMode::Recursive)];
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    vec![
        (path.to_path_buf(), RecursiveMode::NonRecursive),
        (parent.to_path_buf(), RecursiveMode::NonRecursive),
    ]
}

fn is_change(kind: &notify::EventKind) -> bool {
    matches!(
        kind,
        notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
    )
}

async fn reload_loop(
    pdp: Arc<DecisionPoint>,
    mut rx: mpsc::UnboundedReceiver<()>,
    debounce: Duration,
) {
    while rx.recv().await.is_some() {
        // Wait until the files have been quiet for the whole window.
        loop {
            match tokio::time::timeout(debounce, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        let pdp = pdp.clone();
        match tokio::task::spawn_blocking(move || pdp.reload()).await {
            Ok(Ok(snapshot)) => {
                tracing::info!(
                    generation = snapshot.generation,
                    "bundles reloaded after a file change"
                )
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "changed bundles did not load; the previous snapshot keeps serving")
            }
            Err(err) => tracing::error!(error = %err, "bundle reload task failed"),
        }
    }
}
