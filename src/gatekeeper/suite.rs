//! Gatekeeper test suites (`kind: Suite`, `test.gatekeeper.sh/v1alpha1`),
//! the format `gator verify` runs: each test names a template and a
//! constraint file, each case an object (or a whole AdmissionReview) and
//! optional inventory files, and assertions on the violations found:
//! `violations: yes | no | N`, optionally counting only those whose message
//! matches a `message` regular expression. Paths are relative to the suite
//! file. Pure apart from reading those files.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use super::document::{self, ObjectKind};
use super::library::{Library, Violation};
use super::GatekeeperError;
use crate::engine::{EngineOptions, Value};

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Pass,
    /// An assertion did not hold.
    Fail,
    /// The case could not be run (a missing file, a broken template).
    Error,
    /// Marked `skip: true`.
    Skip,
}

impl Outcome {
    /// The label printed before the case.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
            Outcome::Skip => "SKIP",
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `<test>/<case>`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, when it did not pass.
    pub detail: Option<String>,
}

/// Why a suite file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid suite.
    #[error(transparent)]
    Document(#[from] GatekeeperError),
    /// The suite's structure is wrong.
    #[error("{path}: not a valid Suite: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct Suite {
    #[serde(default)]
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    #[serde(default)]
    name: String,
    template: String,
    constraint: String,
    #[serde(default)]
    cases: Vec<Case>,
    /// The template and constraint are expected not to load.
    #[serde(default)]
    invalid: bool,
    #[serde(default)]
    skip: bool,
}

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    name: String,
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    assertions: Vec<Assertion>,
    #[serde(default)]
    skip: bool,
}

#[derive(Deserialize)]
struct Assertion {
    #[serde(default)]
    violations: Option<Json>,
    #[serde(default)]
    message: Option<String>,
}

/// How many violations an assertion expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Some,
    None,
    Exactly(u64),
}

impl Assertion {
    fn expected(&self) -> Result<Expected, String> {
        match &self.violations {
            None => Ok(Expected::Some),
            Some(Json::String(s)) if s == "yes" => Ok(Expected::Some),
            Some(Json::String(s)) if s == "no" => Ok(Expected::None),
            Some(Json::Bool(true)) => Ok(Expected::Some),
            Some(Json::Bool(false)) => Ok(Expected::None),
            Some(Json::Number(n)) if n.as_u64().is_some() => {
                Ok(Expected::Exactly(n.as_u64().unwrap_or_default()))
            }
            Some(Json::String(s)) if s.parse::<u64>().is_ok() => {
                Ok(Expected::Exactly(s.parse().unwrap_or_default()))
            }
            Some(other) => Err(format!(
                "violations must be yes, no or a count, not {other}"
            )),
        }
    }

    /// `None` when it holds, otherwise why not.
    fn check(&self, violations: &[Violation]) -> Result<Option<String>, String> {
        let expected = self.expected()?;
        let pattern = match &self.message {
            Some(text) => Some(
                regex::Regex::new(text)
                    .map_err(|e| format!("message {text:?} is not a valid regex: {e}"))?,
            ),
            None => None,
        };
        let counted = violations
            .iter()
            .filter(|v| pattern.as_ref().is_none_or(|p| p.is_match(&v.message)))
            .count() as u64;
        let holds = match expected {
            Expected::Some => counted > 0,
            Expected::None => counted == 0,
            Expected::Exactly(n) => counted == n,
        };
        if holds {
            return Ok(None);
        }
        let wanted = match expected {
            Expected::Some => "at least one violation".to_string(),
            Expected::None => "no violation".to_string(),
            Expected::Exactly(n) => format!("{n} violation(s)"),
        };
        let matching = self
            .message
            .as_ref()
            .map(|m| format!(" matching {m:?}"))
            .unwrap_or_default();
        let found: Vec<&str> = violations.iter().map(|v| v.message.as_str()).collect();
        Ok(Some(format!(
            "expected {wanted}{matching}, found {counted} (messages: {found:?})"
        )))
    }
}

/// Every suite file under `paths` (files are taken as given; directories
/// are searched for YAML files that declare `kind: Suite`), sorted.
pub fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_file() {
            found.push(path.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = entry.map_err(|err| SuiteError::Io {
                path: err.path().unwrap_or(path).to_path_buf(),
                source: err
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("directory loop")),
            })?;
            let name = entry.file_name().to_string_lossy();
            if !entry.file_type().is_file() || !(name.ends_with(".yaml") || name.ends_with(".yml"))
            {
                continue;
            }
            let text = read(entry.path())?;
            if text.contains("test.gatekeeper.sh/") && text.contains("Suite") {
                found.push(entry.path().to_path_buf());
            }
        }
    }
    Ok(found)
}

/// Run every test and case of one suite file.
pub fn run_suite(path: &Path, options: &EngineOptions) -> Result<Vec<CaseResult>, SuiteError> {
    let shown = path.display().to_string();
    let base = path.parent().unwrap_or(Path::new("."));
    let mut results = Vec::new();
    for doc in document::documents(&shown, &read(path)?)? {
        if doc.kind() != "Suite" {
            continue;
        }
        let suite: Suite =
            serde_json::from_value(doc.value.clone()).map_err(|e| SuiteError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for test in &suite.tests {
            run_test(test, base, options, &mut results);
        }
    }
    Ok(results)
}

fn run_test(test: &Test, base: &Path, options: &EngineOptions, results: &mut Vec<CaseResult>) {
    let result = |case: &str, outcome, detail: Option<String>| CaseResult {
        name: format!("{}/{}", test.name, case),
        outcome,
        detail,
    };
    if test.skip {
        results.push(result("*", Outcome::Skip, None));
        return;
    }
    let definitions = read_definitions(test, base);
    if test.invalid {
        results.push(
            match definitions.and_then(|(t, c)| {
                Library::compile(t, c, Value::new_object(), options).map_err(|e| e.to_string())
            }) {
                Err(_) => result("invalid", Outcome::Pass, None),
                Ok(_) => result(
                    "invalid",
                    Outcome::Fail,
                    Some("expected the template and constraint not to load".into()),
                ),
            },
        );
        return;
    }
    let (templates, constraints) = match definitions {
        Ok(found) => found,
        Err(err) => {
            results.push(result("*", Outcome::Error, Some(err)));
            return;
        }
    };
    for case in &test.cases {
        if case.skip {
            results.push(result(&case.name, Outcome::Skip, None));
            continue;
        }
        let (outcome, detail) =
            match run_case(case, base, templates.clone(), constraints.clone(), options) {
                Ok(None) => (Outcome::Pass, None),
                Ok(Some(why)) => (Outcome::Fail, Some(why)),
                Err(err) => (Outcome::Error, Some(err)),
            };
        results.push(result(&case.name, outcome, detail));
    }
}

type Definitions = (Vec<super::TemplateDef>, Vec<super::ConstraintDef>);

fn read_definitions(test: &Test, base: &Path) -> Result<Definitions, String> {
    let mut templates = Vec::new();
    let mut constraints = Vec::new();
    for file in [&test.template, &test.constraint] {
        for doc in objects(base, file)? {
            match document::object_kind(&doc) {
                ObjectKind::Template => {
                    templates.push(document::template(&doc).map_err(|e| e.to_string())?)
                }
                ObjectKind::Constraint => {
                    constraints.push(document::constraint(&doc).map_err(|e| e.to_string())?)
                }
                ObjectKind::Other => {
                    return Err(format!(
                        "{}: {} {} is neither a ConstraintTemplate nor a constraint",
                        doc.file,
                        doc.api_version(),
                        doc.kind()
                    ))
                }
            }
        }
    }
    Ok((templates, constraints))
}

fn objects(base: &Path, file: &str) -> Result<Vec<document::Document>, String> {
    let path = base.join(file);
    let text = read(&path).map_err(|e| e.to_string())?;
    document::documents(&path.display().to_string(), &text).map_err(|e| e.to_string())
}

/// `Ok(None)` when every assertion holds, `Ok(Some(why))` when one fails.
fn run_case(
    case: &Case,
    base: &Path,
    templates: Vec<super::TemplateDef>,
    constraints: Vec<super::ConstraintDef>,
    options: &EngineOptions,
) -> Result<Option<String>, String> {
    let mut inventory = serde_json::json!({"cluster": {}, "namespace": {}});
    for file in &case.inventory {
        for doc in objects(base, file)? {
            add_to_inventory(&mut inventory, &doc.value);
        }
    }
    let library = Library::compile(templates, constraints, Value::from(inventory), options)
        .map_err(|e| e.to_string())?;
    let object = objects(base, &case.object)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: holds no object", case.object))?;
    let request = Value::from(review_request(object.value));
    let violations = library.review(&request);
    if let Some(failed) = violations.iter().find(|v| v.evaluation_failed) {
        return Err(format!("{}: {}", failed.constraint, failed.message));
    }
    let assertions = if case.assertions.is_empty() {
        vec![Assertion {
            violations: None,
            message: None,
        }]
    } else {
        case.assertions
            .iter()
            .map(|a| Assertion {
                violations: a.violations.clone(),
                message: a.message.clone(),
            })
            .collect()
    };
    for assertion in &assertions {
        if let Some(why) = assertion.check(&violations)? {
            return Ok(Some(why));
        }
    }
    Ok(None)
}

/// The AdmissionRequest for a case object: the `request` of an
/// AdmissionReview as is, otherwise a CREATE of the object.
fn review_request(object: Json) -> Json {
    if object.get("kind").and_then(Json::as_str) == Some("AdmissionReview") {
        return object.get("request").cloned().unwrap_or(Json::Null);
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let metadata = object.get("metadata").cloned().unwrap_or(Json::Null);
    let mut request = serde_json::json!({
        "uid": "portcullis-verify",
        "kind": {"group": group, "version": version, "kind": object.get("kind").cloned().unwrap_or(Json::Null)},
        "name": metadata.get("name").cloned().unwrap_or(Json::Null),
        "operation": "CREATE",
        "userInfo": {"username": "portcullis-verify"},
    });
    if let Some(namespace) = metadata.get("namespace") {
        request["namespace"] = namespace.clone();
    }
    request["object"] = object;
    request
}

/// Put an object where Gatekeeper's inventory keeps it:
/// `cluster/<groupVersion>/<Kind>/<name>` or
/// `namespace/<ns>/<groupVersion>/<Kind>/<name>`.
fn add_to_inventory(inventory: &mut Json, object: &Json) {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (version, kind, name) = (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    );
    let namespace = field("/metadata/namespace");
    let slot = if namespace.is_empty() {
        &mut inventory["cluster"]
    } else {
        &mut inventory["namespace"][namespace.as_str()]
    };
    slot[version.as_str()][kind.as_str()][name.as_str()] = object.clone();
}

fn read(path: &Path) -> Result<String, SuiteError> {
    std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(message: &str) -> Violation {
        Violation {
            constraint: "c".into(),
            kind: "K".into(),
            action: super::super::EnforcementAction::Deny,
            message: message.into(),
            details: Value::Undefined,
            evaluation_failed: false,
        }
    }

    fn assertion(yaml: &str) -> Assertion {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn assertion_forms() {
        let two = [
            violation("missing label owner"),
            violation("image not allowed"),
        ];
        assert_eq!(assertion("violations: yes").check(&two).unwrap(), None);
        assert!(assertion("violations: no").check(&two).unwrap().is_some());
        assert_eq!(assertion("violations: 2").check(&two).unwrap(), None);
        assert!(assertion("violations: 1").check(&two).unwrap().is_some());
        assert_eq!(
            assertion("{violations: 1, message: 'label \\w+$'}")
                .check(&two)
                .unwrap(),
            None
        );
        assert_eq!(
            assertion("{violations: no, message: 'cpu'}")
                .check(&two)
                .unwrap(),
            None
        );
        assert_eq!(assertion("{message: image}").check(&two).unwrap(), None);
        assert!(assertion("violations: maybe").check(&two).is_err());
        assert!(assertion("message: '('").check(&two).is_err());
    }

    #[test]
    fn objects_become_create_requests_and_inventory_entries() {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns"}
        });
        let request = review_request(pod.clone());
        assert_eq!(request["kind"]["group"], "");
        assert_eq!(request["kind"]["version"], "v1");
        assert_eq!(request["namespace"], "ns");
        assert_eq!(request["operation"], "CREATE");
        let ingress = serde_json::json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i"}
        });
        assert_eq!(
            review_request(ingress)["kind"]["group"],
            "networking.k8s.io"
        );
        let mut inventory = serde_json::json!({"cluster": {}, "namespace": {}});
        add_to_inventory(&mut inventory, &pod);
        assert_eq!(inventory["namespace"]["ns"]["v1"]["Pod"]["p"], pod);
    }
}
