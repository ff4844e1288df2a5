//! Reloading things read from files when the files change: a notify watch
//! on each file's directory (so the symlink swap Kubernetes does for
//! mounted Secrets and ConfigMaps is seen), debounced, calling one reload
//! function when the files' content differs from what was last loaded.
//! Reads (the reload's own included) are not changes, and a file touched
//! or written beside the watched ones changes no content. Used for serving
//! certificates and API tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
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

/// Call `reload` when the content of `paths` changes, once the changes
/// have been quiet for 100 ms (so a certificate and its key, written one
/// after the other, are read together).
pub fn watch_files(
    paths: &[&Path],
    reload: impl Fn() + Send + 'static,
) -> Result<FileWatch, WatchError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and closing a file (reading it) is an access, not a
        // change.
        if event.is_ok_and(|e| !matches!(e.kind, EventKind::Access(_))) {
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
    let files: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    let task = tokio::spawn(async move {
        let mut loaded = content_hash(&files);
        while rx.recv().await.is_some() {
            while let Ok(Some(())) =
                tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            {}
            let now = content_hash(&files);
            if now != loaded {
                loaded = now;
                reload();
            }
        }
    });
    Ok(FileWatch {
        _watcher: watcher,
        task,
    })
}

/// A hash of the files' contents (small files: certificates, keys,
/// tokens); a file that cannot be read hashes as missing.
fn content_hash(files: &[PathBuf]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => {
                hasher.update(&[1]);
                hasher.update(&(bytes.len() as u64).to_le_bytes());
                hasher.update(&bytes);
            }
            Err(_) => hasher.update(&[0]),
        }
    }
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn reads_touches_and_neighbours_do_not_reload_a_content_change_does() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        std::fs::write(&tokens, "a 0123456789abcdef\n").unwrap();
        let reloads = Arc::new(AtomicUsize::new(0));
        let counted = reloads.clone();
        let reading = tokens.clone();
        let _watch = watch_files(&[&tokens], move || {
            // The reload reads the file, as the token store does.
            let _ = std::fs::read(&reading);
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        for i in 0..5 {
            let _ = std::fs::read(&tokens).unwrap();
            std::fs::write(tmp.path().join("beside.log"), format!("line {i}")).unwrap();
            let file = std::fs::File::options().append(true).open(&tokens).unwrap();
            file.set_modified(std::time::SystemTime::now()).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(reloads.load(Ordering::SeqCst), 0);
        std::fs::write(&tokens, "b 0123456789abcdef\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while reloads.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Exactly one reload, and its own read starts no other.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(reloads.load(Ordering::SeqCst), 1);
    }
}
