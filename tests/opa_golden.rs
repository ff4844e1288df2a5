//! OPA's answers for the shipped policies, recorded by running OPA
//! (`scripts/opa-golden.py`, into `tests/fixtures/opa_golden/`), replayed
//! against the policy set `serve` builds (VM where it serves, interpreter
//! elsewhere). Every case must give OPA's value exactly, or be undefined
//! where OPA's is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use portcullis::engine::{DataPath, EngineOptions, Value};
use portcullis::pdp::{build_policy_set, LoadOptions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    query: String,
    input: serde_json::Value,
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read<T: serde::de::DeserializeOwned>(rel: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(repo(rel)).unwrap()).unwrap()
}

#[test]
fn the_shipped_policies_answer_as_opa_recorded() {
    let cases: BTreeMap<String, Case> = read("tests/fixtures/opa_golden/cases.json");
    let answers: BTreeMap<String, serde_json::Value> =
        read("tests/fixtures/opa_golden/answers.json");
    let prepared = build_policy_set(
        &[repo("policies"), repo("bundles")],
        &EngineOptions::default(),
        &LoadOptions::serving(None),
    )
    .unwrap();
    let mut differences = Vec::new();
    for (name, case) in &cases {
        let expected = answers
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no recorded answer: run scripts/opa-golden.py"));
        let path = DataPath::from_dotted(&case.query);
        let got = prepared
            .policies
            .evaluate(&path, Some(Value::from(case.input.clone())))
            .map(|value| match value {
                Value::Undefined => serde_json::json!("<undefined>"),
                value => serde_json::from_str(&value.to_json_str().unwrap()).unwrap(),
            });
        match got {
            Ok(got) if &got == expected => {}
            other => differences.push(format!("{name}: OPA {expected}, Portcullis {other:?}")),
        }
    }
    assert!(cases.len() >= 60, "{} cases", cases.len());
    assert!(differences.is_empty(), "{differences:#?}");
}
