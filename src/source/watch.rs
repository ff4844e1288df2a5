//! File watching: every bundle path is watched with notify (directories
//! recursively, so the `..data` symlink swap of a Kubernetes ConfigMap volume
//! is seen; archives with their parent directory, so a replacement by rename
//! is seen). Only changes (not reads) of the bundles' own paths count, and
//! they are debounced: once the files have been quiet for the debounce
//! window, the bundles' content fingerprints are compared with those of the
//! last load, and only a changed content reloads (a file written beside an
//! archive, a `touch`, or the reload's own reads never do). A reload runs on
//! a blocking thread, and either activates a new snapshot or leaves the
//! active one serving (the decision point records the failure).

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
    let targets: Vec<Target> = paths.iter().map(|path| Target::of(path)).collect();
    let watched: Vec<PathBuf> = targets.iter().map(|t| t.path.clone()).collect();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event)
                if is_change(&event.kind)
                    && event
                        .paths
                        .iter()
                        .any(|changed| concerns(changed, &watched)) =>
            {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "file watch error"),
        })
        .map_err(|source| SourceError::Watch {
            path: PathBuf::new(),
            source,
        })?;
    for target in &targets {
        for (dir, mode) in target.watches() {
            watcher
                .watch(&dir, mode)
                .map_err(|source| SourceError::Watch {
                    path: dir.clone(),
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

/// One bundle path as the watch sees it: its directory resolved (events
/// name resolved paths), the file name of an archive kept as configured
/// (in a ConfigMap volume it is a link that is swapped, not followed).
struct Target {
    path: PathBuf,
    is_dir: bool,
}

impl Target {
    fn of(path: &Path) -> Target {
        if path.is_dir() {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            return Target { path, is_dir: true };
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let parent = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        let path = match path.file_name() {
            Some(name) => parent.join(name),
            None => path.to_path_buf(),
        };
        Target {
            path,
            is_dir: false,
        }
    }

    /// What to watch: a directory recursively (a ConfigMap volume's `..data`
    /// swap happens inside it); an archive through its parent directory,
    /// since replacing it by rename replaces the watched inode.
    fn watches(&self) -> Vec<(PathBuf, RecursiveMode)> {
        if self.is_dir {
            return vec![(self.path.clone(), RecursiveMode::Recursive)];
        }
        let parent = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        vec![(parent, RecursiveMode::NonRecursive)]
    }
}

/// Whether a change at `changed` may change one of the bundles at
/// `watched`: a path inside one, or the `..data` link of the directory
/// holding an archive (a Kubernetes volume swaps it to update the
/// archive's link).
fn concerns(changed: &Path, watched: &[PathBuf]) -> bool {
    watched.iter().any(|bundle| {
        changed.starts_with(bundle)
            || (changed.parent() == bundle.parent()
                && changed
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("..data")))
    })
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
        let reload = move || {
            if pdp.sources_changed() {
                pdp.reload().map(Some)
            } else {
                Ok(None)
            }
        };
        match tokio::task::spawn_blocking(reload).await {
            Ok(Ok(None)) => {
                tracing::debug!("bundle files changed on disk but not in content; not reloading")
            }
            Ok(Ok(Some(snapshot))) => {
                tracing::info!(
                    generation = snapshot.generation,
                    "bundles reloaded after a file change"
                )
            }
            Ok(Err(crate::pdp::LoadError::ShuttingDown)) => return,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "changed bundles did not load; the previous snapshot keeps serving")
            }
            Err(err) => tracing::error!(error = %err, "bundle reload task failed"),
        }
    }
}
