//! The bundle `.manifest`: revision, roots, Rego version and metadata.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BundleError, Root};
use crate::location::Location;

/// Which Rego syntax a policy file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegoVersion {
    /// Rego v0 (pre-1.0 syntax: `if` and `contains` optional).
    V0,
    /// Rego v1, the default.
    #[default]
    V1,
}

/// A bundle manifest as OPA writes it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The bundle's revision; empty when not given.
    #[serde(default)]
    pub revision: String,
    /// The paths under `data` this bundle owns; `None` means the whole tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<String>>,
    /// `0` selects Rego v0 for every file, `1` (the default) Rego v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego_version: Option<u8>,
    /// Per-file Rego versions, keyed by path inside the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_rego_versions: Option<std::collections::BTreeMap<String, u8>>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// WebAssembly modules (accepted for compatibility, not evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<serde_json::Value>,
}

/// The longest revision a manifest may name, in bytes (a commit hash, a
/// version and a date fit many times over).
pub const MAX_REVISION_BYTES: usize = 256;

impl Manifest {
    /// Parse a manifest's JSON text; errors carry the manifest's position.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, BundleError> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|err| BundleError::Manifest {
                location: Location::new(path.display().to_string(), err.line(), err.column()),
                message: err.to_string(),
            })?;
        let check = |version: u8, what: &str| -> Result<(), BundleError> {
            if version > 1 {
                return Err(BundleError::Manifest {
                    location: Location::new(path.display().to_string(), 1, 1),
                    message: format!(
                        "{what}: unsupported rego_version {version} (expected 0 or 1)"
                    ),
                });
            }
            Ok(())
        };
        if let Some(v) = manifest.rego_version {
            check(v, "rego_version")?;
        }
        // The revision is exported as a metric label, shown in status and
        // written into every decision-log event: it must stay small.
        if manifest.revision.len() > MAX_REVISION_BYTES {
            return Err(BundleError::Manifest {
                location: Location::new(path.display().to_string(), 1, 1),
                message: format!(
                    "revision is {} bytes long; at most {MAX_REVISION_BYTES} are accepted",
                    manifest.revision.len()
                ),
            });
        }
        for (file, v) in manifest.file_rego_versions.iter().flatten() {
            check(*v, file)?;
        }
        Ok(manifest)
    }

    /// The declared roots, parsed. No roots means one empty root (everything).
    pub fn roots(&self) -> Vec<Root> {
        match &self.roots {
            None => vec![Root::parse("")],
            Some(roots) => roots.iter().map(|r| Root::parse(r)).collect(),
        }
    }

    /// The Rego version of a file at `path` inside the bundle.
    pub fn rego_version_for(&self, path: &str) -> RegoVersion {
        let per_file = self
            .file_rego_versions
            .as_ref()
            .and_then(|m| m.get(path).or_else(|| m.get(&format!("/{path}"))).copied());
        match per_file.or(self.rego_version) {
            Some(0) => RegoVersion::V0,
            _ => RegoVersion::V1,
        }
    }
}
