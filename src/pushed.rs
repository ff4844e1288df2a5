//! Data pushed through the Data API (`PUT`, `PATCH`, `DELETE /v1/data/...`):
//! an immutable document that each write replaces with a new one, served to
//! policies as one more in-memory bundle named `pushed` whose roots are the
//! paths written. Writes under a root an active bundle owns are refused.
//! Optionally persisted to a JSON file, written atomically after every
//! successful write and read back at start.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::bundle::{Bundle, Manifest, PolicyFile, RegoVersion, Root};
use crate::engine::{shared_data, Value};

/// The name of the in-memory bundle pushed data is served from.
pub const PUSHED_BUNDLE: &str = "pushed";

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Writes need a path below `data`.
    #[error("cannot write the root of the data document; write below it (e.g. /v1/data/usage)")]
    Root,
    /// The path is owned by an active bundle.
    #[error("path /{path} is owned by bundle {bundle} (root /{root}); it can only change by a new bundle revision")]
    OwnedByBundle {
        /// The path written.
        path: String,
        /// The bundle that owns it.
        bundle: String,
        /// The bundle's root.
        root: String,
    },
    /// Nothing is stored at the path.
    #[error("no pushed document at /{0}")]
    NotFound(String),
    /// The JSON Patch cannot be applied.
    #[error("invalid JSON Patch: {0}")]
    InvalidPatch(String),
    /// No pushed policy has this id.
    #[error("no policy with id {0} was pushed")]
    NoPolicy(String),
    /// The policy belongs to a bundle.
    #[error("policy {0} belongs to bundle {1}; it can only change by a new bundle revision")]
    BundlePolicy(String, String),
    /// A path inside the patch or the document crosses a non-object.
    #[error("/{0} is not an object")]
    NotAnObject(String),
}

/// One JSON Patch operation OPA supports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchOp {
    /// `add`, `remove` or `replace`.
    pub op: String,
    /// A JSON pointer below the written path.
    pub path: String,
    /// The value, for `add` and `replace`.
    #[serde(default)]
    pub value: Option<Json>,
}

/// The pushed document and the paths written (the bundle's roots), and
/// the policies pushed through the policy API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pushed {
    /// Everything pushed, as one object below `data`.
    pub data: Map<String, Json>,
    /// The minimal set of paths written, each a list of segments.
    pub roots: BTreeSet<Vec<String>>,
    /// Policies by id.
    #[serde(default)]
    pub policies: BTreeMap<String, PushedPolicy>,
}

/// A policy module pushed through the policy API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushedPolicy {
    /// The Rego source.
    pub source: String,
    /// Its package path below `data`.
    pub package: Vec<String>,
}

fn joined(path: &[String]) -> String {
    path.join("/")
}

/// The object at `path`, created on the way when `create`.
fn object_at<'a>(
    data: &'a mut Map<String, Json>,
    path: &[String],
    create: bool,
) -> Result<Option<&'a mut Map<String, Json>>, WriteError> {
    let mut node = data;
    for (i, segment) in path.iter().enumerate() {
        if !node.contains_key(segment) {
            if !create {
                return Ok(None);
            }
            node.insert(segment.clone(), Json::Object(Map::new()));
        }
        node = match node.get_mut(segment) {
            Some(Json::Object(map)) => map,
            _ => return Err(WriteError::NotAnObject(joined(&path[..=i]))),
        };
    }
    Ok(Some(node))
}

impl Pushed {
    /// The value stored at `path`, if any.
    pub fn get(&self, path: &[String]) -> Option<&Json> {
        let (last, parents) = path.split_last()?;
        let mut node = &self.data;
        for segment in parents {
            node = node.get(segment)?.as_object()?;
        }
        node.get(last)
    }

    /// Refuse `path` when it is the root or overlaps a bundle's root.
    pub fn check_writable(
        path: &[String],
        bundles: &[crate::pdp::BundleInfo],
    ) -> Result<(), WriteError> {
        if path.is_empty() {
            return Err(WriteError::Root);
        }
        let written = Root {
            segments: path.to_vec(),
        };
        for bundle in bundles.iter().filter(|b| b.name != PUSHED_BUNDLE) {
            for root in &bundle.roots {
                if Root::parse(root).overlaps(&written) {
                    return Err(WriteError::OwnedByBundle {
                        path: joined(path),
                        bundle: bundle.name.clone(),
                        root: root.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn add_root(&mut self, path: &[String]) {
        if self.roots.iter().any(|r| path.starts_with(r)) {
            return;
        }
        self.roots.retain(|r| !r.starts_with(path));
        self.roots.insert(path.to_vec());
    }

    /// Create or replace the value at `path`.
    pub fn put(&self, path: &[String], value: Json) -> Result<Pushed, WriteError> {
        let (last, parents) = path.split_last().ok_or(WriteError::Root)?;
        let mut next = self.clone();
        let parent = object_at(&mut next.data, parents, true)?.expect("created");
        parent.insert(last.clone(), value);
        next.add_root(path);
        Ok(next)
    }

    /// Remove the value at `path`.
    pub fn delete(&self, path: &[String]) -> Result<Pushed, WriteError> {
        let (last, parents) = path.split_last().ok_or(WriteError::Root)?;
        let mut next = self.clone();
        let removed =
            object_at(&mut next.data, parents, false)?.and_then(|parent| parent.remove(last));
        if removed.is_none() {
            return Err(WriteError::NotFound(joined(path)));
        }
        next.roots.retain(|r| !r.starts_with(path));
        Ok(next)
    }

    /// Apply a JSON Patch (add, remove, replace) to the value at `path`;
    /// every operation applies or none does.
    pub fn patch(&self, path: &[String], ops: &[PatchOp]) -> Result<Pushed, WriteError> {
        let mut target = self
            .get(path)
            .cloned()
            .ok_or_else(|| WriteError::NotFound(joined(path)))?;
        for op in ops {
            apply_op(&mut target, op)?;
        }
        self.put(path, target)
    }

    /// Add or replace the policy `id` (its package already checked).
    pub fn put_policy(&self, id: &str, source: String, package: Vec<String>) -> Pushed {
        let mut next = self.clone();
        next.policies
            .insert(id.to_string(), PushedPolicy { source, package });
        next
    }

    /// Remove the policy `id`.
    pub fn delete_policy(&self, id: &str) -> Result<Pushed, WriteError> {
        let mut next = self.clone();
        next.policies
            .remove(id)
            .map(|_| next)
            .ok_or_else(|| WriteError::NoPolicy(id.to_string()))
    }

    /// The pushed document and policies as a bundle (roots: the data paths
    /// written and the policies' packages), or `None` when nothing is
    /// pushed. Its data shares every part equal to `previous` (the serving
    /// revision's whole data document) with it.
    pub fn as_bundle(&self, previous: Option<&Value>) -> Result<Option<Bundle>, serde_json::Error> {
        if self.roots.is_empty() && self.policies.is_empty() {
            return Ok(None);
        }
        let data = shared_data::convert(Cow::Owned(Json::Object(self.data.clone())), previous)?;
        let mut roots = Pushed::default();
        for root in self
            .roots
            .iter()
            .chain(self.policies.values().map(|p| &p.package))
        {
            roots.add_root(root);
        }
        Ok(Some(Bundle {
            name: PUSHED_BUNDLE.to_string(),
            location: PathBuf::from("(pushed through the API)"),
            manifest: Manifest {
                revision: String::new(),
                roots: Some(roots.roots.iter().map(|r| joined(r)).collect()),
                ..Manifest::default()
            },
            policies: self
                .policies
                .iter()
                .map(|(id, policy)| PolicyFile {
                    id: id.clone(),
                    path: id.clone(),
                    source: policy.source.clone(),
                    rego_version: RegoVersion::V1,
                })
                .collect(),
            data,
            gatekeeper: Vec::new(),
        }))
    }

    /// Read a persisted document (none when the file does not exist).
    pub fn load(path: &Path) -> Result<Pushed, std::io::Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Pushed::default()),
            Err(err) => Err(err),
        }
    }

    /// Write the document to `path` atomically (a temporary file renamed
    /// over it, after an fsync).
    pub fn save(&self, path: &Path) -> Result<(), std::io::Error> {
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let staging = path.with_extension("tmp");
        let mut file = std::fs::File::create(&staging)?;
        file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&staging, path)
    }
}

/// Split a patch path below the written document: a JSON pointer (`/a/b`,
/// `~1` is `/`, `~0` is `~`), or, as OPA also accepts, the same without the
/// leading slash (`-` appends to an array).
fn pointer(text: &str) -> Result<Vec<String>, WriteError> {
    if text.is_empty() || text == "/" {
        return Ok(Vec::new());
    }
    let rest = text.strip_prefix('/').unwrap_or(text);
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn apply_op(target: &mut Json, op: &PatchOp) -> Result<(), WriteError> {
    let steps = pointer(&op.path)?;
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| WriteError::InvalidPatch(format!("{} {} needs a value", op.op, op.path)))
    };
    let Some((last, parents)) = steps.split_last() else {
        // The whole target.
        return match op.op.as_str() {
            "add" | "replace" => {
                *target = value()?;
                Ok(())
            }
            other => Err(WriteError::InvalidPatch(format!(
                "cannot {other} the whole document"
            ))),
        };
    };
    let mut node = target;
    for step in parents {
        node = match node {
            Json::Object(map) => map.get_mut(step),
            Json::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| WriteError::InvalidPatch(format!("{} does not exist", op.path)))?;
    }
    let missing = || WriteError::InvalidPatch(format!("{} does not exist", op.path));
    match (op.op.as_str(), node) {
        ("add", Json::Object(map)) => {
            map.insert(last.clone(), value()?);
        }
        ("add", Json::Array(items)) => {
            let at = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= items.len())
                    .ok_or_else(missing)?
            };
            items.insert(at, value()?);
        }
        ("replace", Json::Object(map)) => {
            let slot = map.get_mut(last).ok_or_else(missing)?;
            *slot = value()?;
        }
        ("replace", Json::Array(items)) => {
            let slot = last
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get_mut(i))
                .ok_or_else(missing)?;
            *slot = value()?;
        }
        ("remove", Json::Object(map)) => {
            map.remove(last).ok_or_else(missing)?;
        }
        ("remove", Json::Array(items)) => {
            let at = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < items.len())
                .ok_or_else(missing)?;
            items.remove(at);
        }
        ("add" | "replace" | "remove", _) => {
            return Err(WriteError::InvalidPatch(format!(
                "the parent of {} is not an object or array",
                op.path
            )))
        }
        (other, _) => {
            return Err(WriteError::InvalidPatch(format!(
                "unsupported op {other:?} (add, remove, replace)"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Vec<String> {
        text.split('/').map(str::to_string).collect()
    }

    #[test]
    fn put_get_delete_and_roots_stay_minimal() {
        let pushed = Pushed::default()
            .put(&p("usage/payments"), json!({"cpu": 3}))
            .unwrap()
            .put(&p("usage/ledger"), json!({"cpu": 1}))
            .unwrap();
        assert_eq!(pushed.get(&p("usage/payments/cpu")), Some(&json!(3)));
        assert_eq!(pushed.roots.len(), 2);
        let whole = pushed.put(&p("usage"), json!({"payments": {}})).unwrap();
        assert_eq!(whole.roots, [p("usage")].into_iter().collect());
        let gone = pushed.delete(&p("usage/payments")).unwrap();
        assert!(gone.get(&p("usage/payments")).is_none());
        assert_eq!(gone.roots, [p("usage/ledger")].into_iter().collect());
        assert_eq!(
            gone.delete(&p("usage/payments")),
            Err(WriteError::NotFound("usage/payments".into()))
        );
        assert_eq!(Pushed::default().put(&[], json!(1)), Err(WriteError::Root));
    }

    #[test]
    fn json_patch_add_remove_replace_all_or_nothing() {
        let pushed = Pushed::default()
            .put(&p("usage/payments"), json!({"cpu": 3, "envs": ["a"]}))
            .unwrap();
        let ops: Vec<PatchOp> = serde_json::from_value(json!([
            {"op": "replace", "path": "/cpu", "value": 5},
            {"op": "add", "path": "/gpu", "value": 1},
            {"op": "add", "path": "/envs/-", "value": "b"},
            {"op": "remove", "path": "/envs/0"}
        ]))
        .unwrap();
        let patched = pushed.patch(&p("usage/payments"), &ops).unwrap();
        assert_eq!(
            patched.get(&p("usage/payments")),
            Some(&json!({"cpu": 5, "envs": ["b"], "gpu": 1}))
        );
        let bad: Vec<PatchOp> = serde_json::from_value(json!([
            {"op": "replace", "path": "/cpu", "value": 9},
            {"op": "remove", "path": "/nothing"}
        ]))
        .unwrap();
        assert!(matches!(
            pushed.patch(&p("usage/payments"), &bad),
            Err(WriteError::InvalidPatch(_))
        ));
        assert!(matches!(
            pushed.patch(&p("usage/ledger"), &ops),
            Err(WriteError::NotFound(_))
        ));
    }

    #[test]
    fn writes_overlapping_a_bundle_root_are_refused() {
        let bundles = vec![crate::pdp::BundleInfo {
            name: "bundles".into(),
            revision: "r1".into(),
            roots: vec!["platform/teams".into()],
            location: "bundles".into(),
        }];
        for path in ["platform", "platform/teams", "platform/teams/payments"] {
            assert!(matches!(
                Pushed::check_writable(&p(path), &bundles),
                Err(WriteError::OwnedByBundle { .. })
            ));
        }
        assert!(Pushed::check_writable(&p("platform/usage"), &bundles).is_ok());
    }

    #[test]
    fn persisted_documents_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/pushed.json");
        assert_eq!(Pushed::load(&file).unwrap(), Pushed::default());
        let pushed = Pushed::default().put(&p("a/b"), json!([1, 2])).unwrap();
        pushed.save(&file).unwrap();
        assert_eq!(Pushed::load(&file).unwrap(), pushed);
    }
}
