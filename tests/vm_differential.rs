//! The bytecode VM must answer exactly like the interpreter. Every entry
//! point the VM runs in the shipped policy library is evaluated both ways on
//! a spread of inputs: the examples, each field changed in turn, wrong types,
//! empty and missing input.

mod common;

use common::{example_request, repo};
use portcullis::bundle;
use portcullis::engine::{DataPath, EngineOptions, EvalError, PolicySet, Value};
use serde_json::json;

fn shipped_policy_set() -> PolicySet {
    let bundles = vec![
        bundle::load_dir(&repo("policies")).unwrap(),
        bundle::load_dir(&repo("bundles")).unwrap(),
        bundle::load_dir(&repo("tests/fixtures/edge")).unwrap(),
    ];
    PolicySet::compile(&bundles, EngineOptions::default()).unwrap()
}

/// Inputs that reach every branch of the shipped rules.
fn inputs() -> Vec<Option<serde_json::Value>> {
    let base = example_request();
    let mut inputs = vec![
        None,
        Some(json!({})),
        Some(json!([])),
        Some(json!("text")),
        Some(base.clone()),
    ];
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("team", json!("nobody")),
        ("team", json!(42)),
        ("class", json!("prod")),
        ("class", json!("dev")),
        ("class", json!("staging")),
        ("class", json!("huge")),
        ("owner", json!("mallory")),
        ("owner", json!("ben")),
        ("name", json!("Feature_Payments")),
        ("name", json!("-bad-")),
        ("name", json!("")),
        ("name", json!("a".repeat(64))),
        ("name", json!(7)),
        ("ttl_hours", json!(169)),
        ("ttl_hours", json!(72)),
        ("ttl_hours", json!(null)),
        ("source_env", json!("prod")),
        ("estimated_monthly_cost", json!(99999)),
        (
            "resources",
            json!({"cpu": 100, "memory_gb": 900, "storage_gb": 9000, "gpu": 3}),
        ),
        ("resources", json!({})),
        (
            "usage",
            json!({"cpu": 120, "environments": 20, "monthly_cost": 24990}),
        ),
        ("usage", json!({"cpu": 110, "memory_gb": 450})),
        ("a", json!(true)),
        ("b", json!(true)),
    ];
    for (field, value) in variants {
        let mut input = base.clone();
        input[field] = value;
        inputs.push(Some(input));
    }
    for name in [
        "secret-request",
        "secret-request-review",
        "network-feature-payments",
        "network-violations",
        "admission-pod",
        "admission-pod-denied",
    ] {
        let text = std::fs::read_to_string(repo(&format!("examples/{name}.json"))).unwrap();
        let example: serde_json::Value = serde_json::from_str(&text).unwrap();
        inputs.push(Some(example["input"].clone()));
    }
    let secret = |overrides: serde_json::Value| {
        let mut input = json!({"requester": "chen", "secret_path": "kv/prod/payments-api/db",
                               "environment": "prod", "reason": "rotation", "duration_seconds": 1800});
        for (k, v) in overrides.as_object().unwrap() {
            input[k] = v.clone();
        }
        Some(input)
    };
    inputs.extend([
        secret(json!({"requester": "mallory"})),
        secret(json!({"requester": 7})),
        secret(json!({"secret_path": "kv/prod/break-glass/root"})),
        secret(json!({"secret_path": "kv/prod/nothing"})),
        secret(json!({"reason": ""})),
        secret(json!({"reason": 3})),
        secret(json!({"duration_seconds": 7200})),
        secret(json!({"duration_seconds": 999999})),
        secret(json!({"duration_seconds": "long"})),
        secret(json!({"environment": "dev", "secret_path": "kv/dev/payments-api/x"})),
    ]);
    let mut without_ttl = base.clone();
    without_ttl.as_object_mut().unwrap().remove("ttl_hours");
    inputs.push(Some(without_ttl));
    inputs.push(Some(json!({"a": true, "b": true})));
    inputs
}

fn same(vm: &Result<Value, EvalError>, interpreter: &Result<Value, EvalError>) -> bool {
    match (vm, interpreter) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

#[test]
fn the_vm_runs_the_main_decision_paths() {
    let set = shipped_policy_set();
    for path in [
        "provisioning/decision",
        "system/main",
        "secrets/access/decision",
        "network/decision",
        "admission/decision",
    ] {
        assert!(
            set.runs_on_vm(&DataPath::parse(path)),
            "{path} should compile for the VM; VM entry points: {:?}",
            set.vm_entry_points()
        );
    }
}

#[test]
fn vm_and_interpreter_agree_on_every_entry_point_and_input() {
    let set = shipped_policy_set();
    let entry_points = set.vm_entry_points();
    assert!(!entry_points.is_empty());
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for entry in &entry_points {
        let path = DataPath::from_dotted(entry);
        if entry == "data.edge.slow" || entry == "data.edge.busy" {
            continue; // time-limit fixtures
        }
        for input in inputs() {
            let value = input.clone().map(Value::from);
            let vm = set.evaluate(&path, value.clone());
            let interpreted = set.evaluate_interpreted(&path, value);
            if !same(&vm, &interpreted) {
                mismatches.push(format!(
                    "{entry} with input {input:?}:\n  vm:          {vm:?}\n  interpreter: {interpreted:?}"
                ));
            }
            compared += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared > 100, "compared {compared} evaluations");
}

#[test]
fn vm_respects_the_time_limit() {
    let bundles = vec![bundle::load_dir(&repo("tests/fixtures/edge")).unwrap()];
    let set = PolicySet::compile(
        &bundles,
        EngineOptions {
            eval_timeout: std::time::Duration::from_millis(50),
            use_vm: true,
        },
    )
    .unwrap();
    let path = DataPath::parse("edge/slow");
    let started = std::time::Instant::now();
    let result = set.evaluate(&path, None);
    assert!(
        matches!(result, Err(EvalError::TimeLimit { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
