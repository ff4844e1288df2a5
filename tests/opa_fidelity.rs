//! OPA fidelity: the corpus in `tests/fidelity/corpus` replayed against
//! the answers OPA gave (`scripts/opa-oracle.sh record` wrote them into
//! `tests/fidelity/answers.json`; no OPA is needed here).
//!
//! Each case is compiled as its own bundle and evaluated twice: the query
//! on the interpreter, and every rule of the package that the bytecode VM
//! serves, on the VM, as the server would. A case must give OPA's answer
//! (value, undefined, or an error) on both, or be refused at load where the
//! case says Portcullis refuses it (`# portcullis: refused TEXT`), with the
//! file, line and column of the construct. A case may instead be a
//! documented difference that Portcullis warns about at load (`#
//! portcullis: warned TEXT`): the warning must be given, at its place.
//!
//! `PORTCULLIS_FIDELITY_ANSWERS` and `PORTCULLIS_FIDELITY_CORPUS` point the
//! replay at other files (the oracle's live comparison and its generator).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis::bundle::{Bundle, Manifest, PolicyFile, RegoVersion};
use portcullis::engine::{CompileError, DataPath, EngineOptions, EvalError, PolicySet, Value};
use serde_json::Value as Json;

/// One corpus case (the format `scripts/opa_oracle.py` documents).
#[derive(Debug)]
struct Case {
    name: String,
    origin: String,
    module: String,
    settings: BTreeMap<String, String>,
}

const SETTINGS: [&str; 6] = ["input", "data", "query", "v0", "strict", "portcullis"];

fn parse_cases(text: &str, origin: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut in_header = false;
    for (index, line) in text.lines().enumerate() {
        if let Some(name) = line.strip_prefix("## ") {
            cases.push(Case {
                name: name.trim().to_string(),
                origin: format!("{origin}:{}", index + 1),
                module: String::new(),
                settings: BTreeMap::new(),
            });
            in_header = true;
            continue;
        }
        let Some(case) = cases.last_mut() else {
            continue;
        };
        if in_header {
            if let Some(setting) = line.strip_prefix("# ") {
                let (key, value) = setting.split_once(':').unwrap_or((setting, ""));
                if SETTINGS.contains(&key.trim()) {
                    case.settings
                        .insert(key.trim().to_string(), value.trim().to_string());
                    continue;
                }
            }
        }
        in_header = false;
        case.module.push_str(line);
        case.module.push('\n');
    }
    for case in &mut cases {
        case.module = format!("{}\n", case.module.trim_matches('\n'));
    }
    cases
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("PORTCULLIS_FIDELITY_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity/corpus"))
}

fn answers_file() -> PathBuf {
    std::env::var_os("PORTCULLIS_FIDELITY_ANSWERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity/answers.json")
        })
}

fn load_corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cases"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|file| {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            parse_cases(&std::fs::read_to_string(file).unwrap(), &name)
        })
        .collect()
}

/// What the recorded answer depends on (as `scripts/opa_oracle.py`
/// computes it): a case edited since OPA answered it is stale.
fn digest(case: &Case) -> String {
    use sha2::{Digest, Sha256};
    let mut blob = format!("{}\0", case.module);
    for (key, value) in &case.settings {
        if key != "portcullis" {
            blob.push_str(&format!("{key}={value}\n"));
        }
    }
    let hash = Sha256::digest(blob.as_bytes());
    hash.iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What Portcullis answered for a case that compiled.
enum Outcome {
    Error(String),
    Undefined,
    Value(Json),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Error(message) => write!(f, "error {message}"),
            Outcome::Undefined => write!(f, "undefined"),
            Outcome::Value(value) => write!(f, "value {value}"),
        }
    }
}

fn to_json(value: &Value) -> Json {
    serde_json::from_str(&value.to_json_str().expect("values serialise")).unwrap()
}

fn outcome(result: Result<Value, EvalError>) -> Outcome {
    match result {
        Ok(Value::Undefined) => Outcome::Undefined,
        Ok(value) => Outcome::Value(to_json(&value)),
        Err(err) => Outcome::Error(err.to_string()),
    }
}

fn compile(case: &Case) -> Result<PolicySet, CompileError> {
    let rego_version = if case.settings.contains_key("v0") {
        RegoVersion::V0
    } else {
        RegoVersion::V1
    };
    let data = case
        .settings
        .get("data")
        .map(|text| Value::from_json_str(text).expect("the case's data is JSON"))
        .unwrap_or_else(Value::new_object);
    let bundle = Bundle {
        name: "case".to_string(),
        location: PathBuf::from("case"),
        manifest: Manifest::default(),
        policies: vec![PolicyFile {
            id: "t.rego".to_string(),
            path: "t.rego".to_string(),
            source: case.module.clone(),
            rego_version,
        }],
        data,
        gatekeeper: Vec::new(),
    };
    let options = EngineOptions {
        strict_builtin_errors: case.settings.contains_key("strict"),
        ..EngineOptions::default()
    };
    PolicySet::compile(&[bundle], options)
}

/// Numbers compare by value (OPA prints `1` where an engine may keep
/// `1.0`); everything else structurally.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64())
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Whether `got` is what OPA's `answer` says.
fn agrees(answer: &Json, got: &Outcome) -> bool {
    match got {
        Outcome::Error(_) => answer.get("error").is_some(),
        Outcome::Undefined => answer.get("undefined").is_some(),
        Outcome::Value(value) => answer.get("value").is_some_and(|want| same(want, value)),
    }
}

/// Compare one case; `None` when it agrees.
fn check(case: &Case, answer: &Json) -> Option<String> {
    let query = case.settings.get("query").map_or("data.t", String::as_str);
    let expected_refusal = case
        .settings
        .get("portcullis")
        .and_then(|note| note.strip_prefix("refused"))
        .map(str::trim);
    let set = match compile(case) {
        Ok(set) => set,
        Err(err) => {
            let message = err.to_string();
            let located = message.contains("t.rego:");
            return match expected_refusal {
                Some(text) if message.contains(text) && located => None,
                _ if answer.get("error").is_some() && located => None,
                _ => Some(format!("refused at load: {message}")),
            };
        }
    };
    if let Some(text) = expected_refusal {
        return Some(format!(
            "expected a refusal at load ({text}), but it compiled"
        ));
    }
    // A documented difference that Portcullis warns about at load: the
    // warning must be there, at its place; the answers may differ.
    if let Some(text) = case
        .settings
        .get("portcullis")
        .and_then(|note| note.strip_prefix("warned"))
        .map(str::trim)
    {
        let warned = set.warnings().iter().any(|warning| {
            let shown = warning.to_string();
            shown.contains(text) && shown.starts_with("t.rego:")
        });
        return (!warned).then(|| {
            format!(
                "expected a warning at load ({text}); warnings: {:?}",
                set.warnings()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            )
        });
    }
    let path = DataPath::from_dotted(query);
    let input = case
        .settings
        .get("input")
        .map(|text| Value::from_json_str(text).expect("the case's input is JSON"));
    // A case with no note whose module draws warnings: a difference is one
    // of those documented (the generator counts it as explained).
    let warned = if set.warnings().is_empty() {
        ""
    } else {
        "[warned] "
    };
    let interpreted = outcome(set.evaluate_interpreted(&path, input.clone()));
    if !agrees(answer, &interpreted) {
        return Some(format!("{warned}interpreter: {interpreted}"));
    }
    // Each rule the VM serves, against OPA's value for it.
    let Some(Json::Object(document)) = answer.get("value") else {
        return None;
    };
    for entry in set.vm_entry_points() {
        let Some(rule) = entry.strip_prefix(&format!("{query}.")) else {
            continue;
        };
        if rule.contains('.') {
            continue;
        }
        let want = match document.get(rule) {
            Some(value) => serde_json::json!({ "value": value }),
            None => serde_json::json!({ "undefined": true }),
        };
        let got = outcome(set.evaluate(&DataPath::from_dotted(&entry), input.clone()));
        if !agrees(&want, &got) {
            return Some(format!("{warned}VM, {entry}: {got} where OPA has {want}"));
        }
    }
    None
}

#[test]
fn the_corpus_answers_as_opa_recorded() {
    let cases = load_corpus();
    let answers: BTreeMap<String, Json> =
        serde_json::from_str(&std::fs::read_to_string(answers_file()).unwrap()).unwrap();
    let mut differences = Vec::new();
    for case in &cases {
        let Some(answer) = answers.get(&case.name) else {
            differences.push(format!(
                "{} ({}): no recorded answer; run scripts/opa-oracle.sh record",
                case.name, case.origin
            ));
            continue;
        };
        if answer.get("digest").and_then(Json::as_str) != Some(digest(case).as_str()) {
            differences.push(format!(
                "{} ({}): edited since OPA answered it; run scripts/opa-oracle.sh record",
                case.name, case.origin
            ));
            continue;
        }
        if let Some(difference) = check(case, answer) {
            let opa = answer
                .get("value")
                .map(|v| format!("value {v}"))
                .or_else(|| answer.get("error").map(|e| format!("error {e}")))
                .unwrap_or_else(|| "undefined".to_string());
            differences.push(format!(
                "{} ({}): OPA {opa}; Portcullis {difference}",
                case.name, case.origin
            ));
        }
    }
    for difference in &differences {
        eprintln!("DIFF {difference}");
    }
    eprintln!("{} cases, {} differences", cases.len(), differences.len());
    assert!(differences.is_empty(), "{} differences", differences.len());
}
