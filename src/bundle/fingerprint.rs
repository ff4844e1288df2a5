//! A bundle's content fingerprint: a hash of the names and bytes of the
//! files the loader would read (an archive: its bytes). A watcher compares
//! fingerprints so that it reloads when content changed, not when a file
//! was read, touched, or written beside the bundle.

use std::io::Read;
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use super::{is_bundle_file, relative_path, walk};

/// The fingerprint of the bundle at `path` (a directory or an archive);
/// `None` when it cannot be read (missing, or mid-replacement), which
/// differs from every readable state.
pub fn fingerprint(path: &Path) -> Option<u64> {
    let mut hasher = Xxh3::new();
    if path.is_dir() {
        for entry in walk(path) {
            let entry = entry.ok()?;
            let name = entry.file_name().to_string_lossy();
            if !entry.file_type().is_file() || !is_bundle_file(&name) {
                continue;
            }
            let relative = relative_path(path, entry.path());
            hasher.update(&(relative.len() as u64).to_le_bytes());
            hasher.update(relative.as_bytes());
            hash_file(entry.path(), &mut hasher)?;
        }
    } else {
        hash_file(path, &mut hasher)?;
    }
    Some(hasher.digest())
}

/// Add a file's length and bytes to `hasher`.
fn hash_file(path: &Path, hasher: &mut Xxh3) -> Option<()> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut buffer = vec![0u8; 64 << 10];
    let mut length = 0u64;
    loop {
        let n = file.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        length += n as u64;
        hasher.update(&buffer[..n]);
    }
    hasher.update(&length.to_le_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bundle_content_changes_the_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("a.rego"), "package a\nx := 1\n").unwrap();
        let first = fingerprint(dir).unwrap();
        // Reading, touching and writing a file the loader ignores change
        // nothing.
        let _ = std::fs::read(dir.join("a.rego")).unwrap();
        std::fs::write(dir.join("server.log"), "noise").unwrap();
        let file = std::fs::File::options()
            .append(true)
            .open(dir.join("a.rego"))
            .unwrap();
        file.set_modified(std::time::SystemTime::now()).unwrap();
        assert_eq!(fingerprint(dir), Some(first));
        std::fs::write(dir.join("a.rego"), "package a\nx := 2\n").unwrap();
        assert_ne!(fingerprint(dir), Some(first));
        assert_eq!(fingerprint(&dir.join("missing")), None);
    }
}
