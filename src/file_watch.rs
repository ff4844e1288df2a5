//! Reloading things read from files when the files change: a notify watch
//! on each file's directory (so the symlink swap Kubernetes does for
//! mounted Secrets and ConfigMaps is seen), debounced, calling one reload
//! function. Used for serving certificates and API tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps a watch alive; dropping it stops the watch.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileWatch")
    }
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: notify::Error,
}

/// Call `reload` after any change to the directories holding `paths`,
/// once the changes have been quiet for 100 ms (so a certificate and its
/// key, written one after the other, are read together).
pub fn watch_files(
    paths: &[&Path],
    reload: impl Fn() + Send + 'static,
) -> Result<FileWatch, WatchError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|source| WatchError {
        path: PathBuf::new(),
        source,
    })?;
    for path in paths {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while let Ok(Some(())) =
                tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {}
            reload();
        }
    });
    Ok(FileWatch {
        _watcher: watcher,
        task,
    })
}
