//! The OPA bundle format, read from a directory: `.manifest`, `*.rego` files
//! anywhere, and `data.json` / `data.yaml` merged at the path of their
//! directory. Synchronous, with no timing, no evaluation and no network (data
//! is held as engine values).
//!
//! Bundles come as directories or as `.tar.gz` files in the layout `opa build`
//! writes ([`load`] picks by what the path is).
//!
//! A [`Bundle`] is what one bundle holds after every file has been read,
//! parsed as data and checked against the manifest's roots. Policy files are
//! kept as text; compiling them is the engine's job. Data files are parsed
//! straight into engine values (no JSON tree in between), sharing every part
//! equal to the serving revision's data when one is given
//! ([`load_sharing`]).

mod data;
mod error;
mod fingerprint;
mod limits;
mod manifest;
mod roots;
pub mod signing;
mod tarball;

use std::path::{Path, PathBuf};

use crate::engine::Value;

pub use data::merge_at;
pub use error::BundleError;
pub use fingerprint::fingerprint;
pub use limits::SizeLimits;
pub use manifest::{Manifest, RegoVersion};
pub use roots::{check_disjoint_roots, within_roots, Root};
pub use signing::Verifier;
pub use tarball::write_tarball;

/// One `.rego` file of a bundle.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// The id OPA's policy API shows: `<bundle name>/<path inside the bundle>`.
    pub id: String,
    /// The file's path inside the bundle, with `/` separators.
    pub path: String,
    /// The Rego source text.
    pub source: String,
    /// Which Rego syntax this file is written in.
    pub rego_version: RegoVersion,
}

/// An OPA bundle read from disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle's name: the base name of its directory.
    pub name: String,
    /// Where it was read from.
    pub location: PathBuf,
    /// The `.manifest`, or the default one when the bundle has none.
    pub manifest: Manifest,
    /// Every policy file, sorted by path.
    pub policies: Vec<PolicyFile>,
    /// The bundle's data document (all data files merged), always an
    /// object, as engine values.
    pub data: Value,
    /// YAML files holding Gatekeeper ConstraintTemplates or Constraints,
    /// sorted by path; the `gatekeeper` module interprets them.
    pub gatekeeper: Vec<GatekeeperFile>,
}

/// A YAML file of a bundle that holds Gatekeeper objects.
#[derive(Debug, Clone)]
pub struct GatekeeperFile {
    /// The file's path inside the bundle, with `/` separators.
    pub path: String,
    /// The file, as errors name it (bundle location joined with `path`).
    pub shown: String,
    /// The YAML text (one or more documents).
    pub text: String,
}

impl Bundle {
    /// The revision named in the manifest (empty when none was given).
    pub fn revision(&self) -> &str {
        &self.manifest.revision
    }

    /// The bundle without its Rego unit tests (`*_test.rego`), as the
    /// server loads it: test rules are for `portcullis test`, and serving
    /// them would make `GET /v1/data` run every test.
    pub fn without_tests(mut self) -> Bundle {
        self.policies.retain(|p| !p.path.ends_with("_test.rego"));
        self
    }

    /// The roots this bundle owns, as parsed paths.
    pub fn roots(&self) -> Vec<Root> {
        self.manifest.roots()
    }
}

/// Combine bundles with disjoint roots into one (what `portcullis bundle
/// build` packs): policies side by side, data merged, roots united.
pub fn combine(
    bundles: Vec<Bundle>,
    name: &str,
    revision: Option<String>,
) -> Result<Bundle, BundleError> {
    check_disjoint_roots(&bundles)?;
    let mut combined = Bundle {
        name: name.to_string(),
        location: PathBuf::from(name),
        manifest: Manifest::default(),
        policies: Vec::new(),
        data: Value::new_object(),
        gatekeeper: Vec::new(),
    };
    let mut roots: Option<Vec<String>> = Some(Vec::new());
    for bundle in bundles {
        match (&mut roots, &bundle.manifest.roots) {
            (Some(all), Some(these)) => all.extend(these.iter().cloned()),
            _ => roots = None,
        }
        if combined.manifest.revision.is_empty() {
            combined.manifest.revision = bundle.manifest.revision.clone();
        }
        if bundle.manifest.rego_version == Some(0) {
            combined.manifest.rego_version = Some(0);
        }
        for policy in bundle.policies {
            if combined.policies.iter().any(|p| p.path == policy.path) {
                return Err(BundleError::DataConflict {
                    file: bundle.location.join(&policy.path),
                    path: policy.path,
                });
            }
            combined.policies.push(policy);
        }
        for file in bundle.gatekeeper {
            if combined.gatekeeper.iter().any(|g| g.path == file.path) {
                return Err(BundleError::DataConflict {
                    file: bundle.location.join(&file.path),
                    path: file.path,
                });
            }
            combined.gatekeeper.push(file);
        }
        merge_at(&mut combined.data, &[], bundle.data, &bundle.location)?;
    }
    combined.manifest.roots = roots;
    if let Some(revision) = revision {
        combined.manifest.revision = revision;
    }
    Ok(combined)
}

/// The files a bundle may hold that are data.
const DATA_FILES: [&str; 3] = ["data.json", "data.yaml", "data.yml"];

/// One file of a bundle before interpretation: its path inside the bundle
/// (`/`-separated, no leading slash) and its text.
#[derive(Debug)]
pub(crate) struct RawFile {
    pub(crate) path: String,
    pub(crate) text: String,
    /// A `data.json` that was not read as text (`text` is then empty): with
    /// no signature to check against its bytes, it is parsed as it is read
    /// and its text is never held whole.
    pub(crate) unread: Option<UnreadData>,
}

/// Where the value of a `data.json` that was not read as text comes from.
#[derive(Debug)]
pub(crate) enum UnreadData {
    /// Parse it from this file (a directory bundle).
    File(PathBuf),
    /// Parsed already, from the archive stream (a `.tar.gz` bundle).
    Parsed(Value),
}

impl RawFile {
    /// A file whose text was read.
    pub(crate) fn read(path: String, text: String) -> RawFile {
        RawFile {
            path,
            text,
            unread: None,
        }
    }

    /// A `data.json` whose value comes from `unread`.
    pub(crate) fn unread(path: String, unread: UnreadData) -> RawFile {
        RawFile {
            path,
            text: String::new(),
            unread: Some(unread),
        }
    }
}

/// The directory of a bundle file as data path segments: where its data
/// goes in the tree (`teams/quota/data.json` → `["teams", "quota"]`).
pub(crate) fn data_dir(path: &str) -> Vec<String> {
    path.rsplit_once('/')
        .map(|(dir, _)| dir.split('/').map(str::to_string).collect())
        .unwrap_or_default()
}

/// Read a bundle from a directory or a `.tar.gz` file, by what `path` is.
pub fn load(path: &Path) -> Result<Bundle, BundleError> {
    load_verified(path, None)
}

/// Read a bundle and, when `verifier` is given, refuse it unless its
/// `.signatures.json` verifies every file.
pub fn load_verified(path: &Path, verifier: Option<&Verifier>) -> Result<Bundle, BundleError> {
    load_sharing(path, verifier, None, SizeLimits::default())
}

/// [`load_verified`], for a reload: every part of the bundle's data equal
/// to the part at the same place in `previous` (the serving revision's
/// whole data document) is taken from `previous`, so unchanged data is held
/// once while both revisions are alive.
///
/// No file larger than `limits` allows is read, and a bundle whose files
/// together exceed them is refused before the rest is read.
pub fn load_sharing(
    path: &Path,
    verifier: Option<&Verifier>,
    previous: Option<&Value>,
    limits: SizeLimits,
) -> Result<Bundle, BundleError> {
    let meta = std::fs::metadata(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        load_dir_sharing(path, verifier, previous, limits)
    } else {
        tarball::load_tarball(path, verifier, previous, limits)
    }
}

/// Read a bundle from a directory in OPA's bundle layout.
///
/// Hidden directories below the top are skipped: editor and VCS folders, and
/// in a Kubernetes ConfigMap volume the `..data` link and the timestamped
/// `..2026_…` directory behind it, whose files are read once through the
/// visible links. Files other than `.manifest`, `.signatures.json`, `*.rego`,
/// data files and YAML files holding Gatekeeper templates or constraints are
/// ignored.
pub fn load_dir(dir: &Path) -> Result<Bundle, BundleError> {
    load_dir_sharing(dir, None, None, SizeLimits::default())
}

fn load_dir_sharing(
    dir: &Path,
    verifier: Option<&Verifier>,
    previous: Option<&Value>,
    limits: SizeLimits,
) -> Result<Bundle, BundleError> {
    let meta = std::fs::metadata(dir).map_err(|source| BundleError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(BundleError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let mut budget = limits::Budget::new(limits);
    for entry in walk(dir) {
        let entry = entry.map_err(|err| BundleError::Io {
            path: err.path().unwrap_or(dir).to_path_buf(),
            source: err
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("directory loop")),
        })?;
        let file_name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || !is_bundle_file(&file_name) {
            continue;
        }
        let path = relative_path(dir, entry.path());
        let size = entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        budget.take(size).map_err(|over| BundleError::TooLarge {
            path: entry.path().to_path_buf(),
            message: over.to_string(),
        })?;
        files.push(if verifier.is_none() && file_name == "data.json" {
            RawFile::unread(path, UnreadData::File(entry.path().to_path_buf()))
        } else {
            RawFile::read(path, read_text(entry.path(), budget.read_cap())?)
        });
    }
    assemble(bundle_name(dir), dir, files, verifier, previous)
}

/// Whether a file name is one a bundle may be made of. YAML files other
/// than data files are read and then kept only when they hold Gatekeeper
/// objects ([`holds_gatekeeper_objects`]).
pub(crate) fn is_bundle_file(name: &str) -> bool {
    name == ".manifest"
        || name == signing::SIGNATURES_FILE
        || name.ends_with(".rego")
        || is_yaml(name)
        || DATA_FILES.contains(&name)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The API groups whose objects a bundle carries for the `gatekeeper`
/// module. Other YAML (sample objects, test suites, kustomizations) is not
/// part of the bundle.
const GATEKEEPER_GROUPS: [&str; 2] = ["templates.gatekeeper.sh/", "constraints.gatekeeper.sh/"];

/// Whether a YAML file mentions a Gatekeeper template or constraint API
/// version (a cheap textual test; the `gatekeeper` module parses it).
fn holds_gatekeeper_objects(text: &str) -> bool {
    GATEKEEPER_GROUPS.iter().any(|group| text.contains(group))
}

/// Interpret a bundle's files: manifest, policies, data merged by directory,
/// everything checked against the roots. `location` names the bundle in errors;
/// data shares what it can with `previous` ([`load_sharing`]).
pub(crate) fn assemble(
    name: String,
    location: &Path,
    mut files: Vec<RawFile>,
    verifier: Option<&Verifier>,
    previous: Option<&Value>,
) -> Result<Bundle, BundleError> {
    files.retain(|f| {
        let file_name = f.path.rsplit('/').next().unwrap_or(&f.path);
        !is_yaml(file_name) || DATA_FILES.contains(&file_name) || holds_gatekeeper_objects(&f.text)
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // What is verified must be what is loaded: one file per path.
    if let Some(pair) = files.windows(2).find(|pair| pair[0].path == pair[1].path) {
        return Err(BundleError::Archive {
            path: location.to_path_buf(),
            message: format!("file {:?} appears more than once", pair[0].path),
        });
    }
    if let Some(verifier) = verifier {
        let contents = files
            .iter()
            .map(|f| (f.path.clone(), f.text.as_bytes().to_vec()))
            .collect();
        verifier
            .verify(&contents)
            .map_err(|source| BundleError::Signature {
                bundle: location.to_path_buf(),
                source,
            })?;
    }
    let file_path = |rel: &str| location.join(rel);
    let manifest = match files.iter().find(|f| f.path == ".manifest") {
        Some(file) => Manifest::parse(&file.text, &file_path(&file.path))?,
        None => Manifest::default(),
    };
    let roots = manifest.roots();
    let mut policies = Vec::new();
    let mut gatekeeper = Vec::new();
    let mut data = Value::new_object();
    for file in files {
        let file_name = file
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&file.path)
            .to_string();
        if file_name.ends_with(".rego") {
            policies.push(PolicyFile {
                id: format!("{name}/{}", file.path),
                rego_version: manifest.rego_version_for(&file.path),
                path: file.path,
                source: file.text,
            });
        } else if DATA_FILES.contains(&file_name.as_str()) {
            let shown = file_path(&file.path);
            let dir_segments = data_dir(&file.path);
            let previous = previous.map(|data| data::value_at(data, &dir_segments));
            let value = match file.unread {
                Some(UnreadData::File(on_disk)) => {
                    data::parse_json_file(&on_disk, &shown, previous)?
                }
                Some(UnreadData::Parsed(value)) => value,
                None if file_name == "data.json" => data::parse_json(&file.text, &shown, previous)?,
                None => data::parse_yaml(&file.text, &shown, previous)?,
            };
            roots::check_data_within(&roots, &dir_segments, &value, &shown)?;
            merge_at(&mut data, &dir_segments, value, &shown)?;
        } else if is_yaml(&file_name) {
            gatekeeper.push(GatekeeperFile {
                shown: file_path(&file.path).display().to_string(),
                path: file.path,
                text: file.text,
            });
        }
    }
    Ok(Bundle {
        name,
        location: location.to_path_buf(),
        manifest,
        policies,
        data,
        gatekeeper,
    })
}

fn bundle_name(dir: &Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string())
}

/// Every entry below a bundle directory, sorted by name, links followed,
/// hidden directories below the top skipped ([`load_dir`] says why).
pub(crate) fn walk(dir: &Path) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> {
    walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_hidden_dir(entry))
}

fn is_hidden_dir(entry: &walkdir::DirEntry) -> bool {
    entry.file_type().is_dir() && entry.file_name().to_string_lossy().starts_with('.')
}

fn relative_path(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A file's text, reading at most `cap` bytes (a file that grew since its
/// size was taken is cut there and then fails as over-long or malformed).
fn read_text(path: &Path, cap: u64) -> Result<String, BundleError> {
    use std::io::Read;
    let io_error = |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut text = String::new();
    file.take(cap).read_to_string(&mut text).map_err(io_error)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn a_reload_shares_unchanged_data_with_the_serving_revision() {
        use crate::engine::shared_data::reused;
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "teams/data.json",
            r#"{"a": {"cpu": 4}, "b": {"cpu": 8}}"#,
        );
        write(tmp.path(), "classes/data.yaml", "- dev\n- prod\n");
        let serving = load_dir(tmp.path()).unwrap().data;
        let again = load_sharing(tmp.path(), None, Some(&serving), SizeLimits::default())
            .unwrap()
            .data;
        assert_eq!(again, serving);
        assert!(reused(&again["teams"], &serving["teams"]));
        assert!(reused(&again["classes"], &serving["classes"]));
        write(
            tmp.path(),
            "teams/data.json",
            r#"{"a": {"cpu": 4}, "b": {"cpu": 16}}"#,
        );
        let changed = load_sharing(tmp.path(), None, Some(&serving), SizeLimits::default())
            .unwrap()
            .data;
        assert_eq!(changed["teams"]["b"]["cpu"], Value::from(16));
        assert!(!reused(&changed["teams"], &serving["teams"]));
        assert!(reused(&changed["teams"]["a"], &serving["teams"]["a"]));
        assert!(reused(&changed["classes"], &serving["classes"]));
    }

    #[test]
    fn data_files_merge_at_their_directory() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "data.json", r#"{"top": 1}"#);
        write(
            tmp.path(),
            "teams/data.json",
            r#"{"payments": {"lead": "ana"}}"#,
        );
        write(tmp.path(), "teams/quota/data.yaml", "payments:\n  cpu: 4\n");
        write(tmp.path(), "policy/a.rego", "package a\nx := 1\n");
        let bundle = load_dir(tmp.path()).unwrap();
        assert_eq!(
            bundle.data,
            Value::from(serde_json::json!({
                "top": 1,
                "teams": {"payments": {"lead": "ana"}, "quota": {"payments": {"cpu": 4}}}
            }))
        );
        assert_eq!(bundle.policies.len(), 1);
        assert_eq!(bundle.policies[0].path, "policy/a.rego");
        assert!(bundle.policies[0].id.ends_with("/policy/a.rego"));
        assert_eq!(bundle.revision(), "");
    }

    #[test]
    fn a_data_file_that_is_not_utf8_is_a_positioned_data_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("x")).unwrap();
        fs::write(tmp.path().join("x/data.json"), b"{\"a\": \"\xff\"}").unwrap();
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, BundleError::Data { .. }), "{err}");
        let loc = err.location().expect("a location");
        assert!(loc.file.ends_with("x/data.json"), "{loc:?}");
        assert_eq!(loc.row, 1, "{err}");
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x/data.json", "{\n  \"a\": tru, \"b\": 1\n}");
        let err = load_dir(tmp.path()).unwrap_err();
        let loc = err.location().expect("a location");
        assert!(loc.file.ends_with("x/data.json"), "{loc:?}");
        assert_eq!(loc.row, 2);
        assert!(loc.col > 0);
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "data.yaml", "a: 1\nb: [1, 2\n");
        let err = load_dir(tmp.path()).unwrap_err();
        let loc = err.location().expect("a location");
        assert!(loc.file.ends_with("data.yaml"));
        assert!(loc.row >= 2, "{loc:?}");
    }

    #[test]
    fn data_outside_roots_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            ".manifest",
            r#"{"revision": "r1", "roots": ["teams"]}"#,
        );
        write(tmp.path(), "teams/data.json", r#"{"a": 1}"#);
        assert!(load_dir(tmp.path()).is_ok());
        write(tmp.path(), "other/data.json", r#"{"a": 1}"#);
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, BundleError::OutsideRoots { .. }), "{err}");
        assert!(err.to_string().contains("other"), "{err}");
    }

    #[test]
    fn top_level_data_may_fill_declared_roots() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            ".manifest",
            r#"{"roots": ["teams/quota", "catalog"]}"#,
        );
        write(
            tmp.path(),
            "data.json",
            r#"{"teams": {"quota": {"a": 1}}, "catalog": []}"#,
        );
        assert!(load_dir(tmp.path()).is_ok());
        write(tmp.path(), "data.json", r#"{"teams": {"members": {}}}"#);
        assert!(load_dir(tmp.path()).is_err());
    }

    #[test]
    fn conflicting_data_names_both_places() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "data.json", r#"{"a": {"b": 1}}"#);
        write(tmp.path(), "a/data.json", r#"{"b": 2}"#);
        let err = load_dir(tmp.path()).unwrap_err();
        assert!(matches!(err, BundleError::DataConflict { .. }), "{err}");
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let err = load_dir(Path::new("/nonexistent/portcullis")).unwrap_err();
        assert!(matches!(err, BundleError::Io { .. }));
    }

    #[test]
    fn gatekeeper_yaml_is_kept_and_other_yaml_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "templates/t.yaml",
            "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\n",
        );
        write(
            tmp.path(),
            "constraints/c.yml",
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sX\n",
        );
        write(
            tmp.path(),
            "samples/pod.yaml",
            "apiVersion: v1\nkind: Pod\n",
        );
        write(tmp.path(), "notes.yaml", "this: [is not: valid yaml\n");
        let bundle = load_dir(tmp.path()).unwrap();
        let paths: Vec<&str> = bundle.gatekeeper.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["constraints/c.yml", "templates/t.yaml"]);
        assert!(bundle.gatekeeper[1].shown.ends_with("templates/t.yaml"));
        assert_eq!(bundle.data, Value::new_object());
    }

    #[test]
    fn manifest_rego_version_zero_selects_v0() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), ".manifest", r#"{"rego_version": 0}"#);
        write(tmp.path(), "p.rego", "package p\nallow { true }\n");
        let bundle = load_dir(tmp.path()).unwrap();
        assert_eq!(bundle.policies[0].rego_version, RegoVersion::V0);
    }
}
