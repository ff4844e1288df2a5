//! Evaluating only the parts of an input that the read analysis says a
//! policy reads must answer exactly like evaluating the whole input. This
//! checks the analysis (and so the decision cache's keys, which hash the
//! same parts) on every entry point of the shipped library and on every
//! Gatekeeper fixture template, over a spread of inputs.

mod common;

use common::{example_request, repo};
use portcullis::bundle;
use portcullis::engine::input::read_parts;
use portcullis::engine::reads::ReadTree;
use portcullis::engine::{DataPath, EngineOptions, PolicySet, Value};
use serde_json::json;

fn inputs() -> Vec<serde_json::Value> {
    let mut inputs = vec![json!({}), json!([]), json!("text"), example_request()];
    let mut other_team = example_request();
    other_team["team"] = json!("nobody");
    other_team["resources"] = json!({"cpu": 100, "gpu": 3});
    inputs.push(other_team);
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
        inputs.push(example["input"].clone());
    }
    let text = std::fs::read_to_string(repo("benches/admission-pod-20k.json")).unwrap();
    let pod: serde_json::Value = serde_json::from_str(&text).unwrap();
    inputs.push(pod.clone());
    let mut delete = pod.clone();
    delete["request"]["operation"] = json!("DELETE");
    delete["request"]["oldObject"] = delete["request"]["object"].take();
    inputs.push(delete);
    for (kind, object) in [
        (
            "Namespace",
            json!({"metadata": {"name": "payments-feature-x", "labels": {"portcullis.dev/team": "payments"}}}),
        ),
        (
            "Service",
            json!({"metadata": {"name": "api", "namespace": "payments-staging"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}),
        ),
        (
            "NetworkPolicy",
            json!({"metadata": {"name": "allow-all", "namespace": "payments-staging"}, "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}),
        ),
        (
            "Ingress",
            json!({"metadata": {"name": "web", "namespace": "payments-staging"}, "spec": {"rules": [{"host": "*.example.com"}]}}),
        ),
    ] {
        let mut review = pod.clone();
        review["request"]["kind"]["kind"] = json!(kind);
        review["request"]["object"] = object;
        inputs.push(review);
    }
    inputs
}

fn tree_for(policies: &PolicySet, path: &DataPath) -> ReadTree {
    ReadTree::new(&policies.reads_of(path).input)
}

fn same(
    a: &Result<Value, portcullis::engine::EvalError>,
    b: &Result<Value, portcullis::engine::EvalError>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

#[test]
fn every_entry_point_answers_alike_on_its_read_parts() {
    let bundles = vec![
        bundle::load_dir(&repo("policies")).unwrap().without_tests(),
        bundle::load_dir(&repo("bundles")).unwrap(),
        bundle::load_dir(&repo("tests/fixtures/edge")).unwrap(),
    ];
    let policies = PolicySet::compile(&bundles, EngineOptions::default()).unwrap();
    let inputs = inputs();
    let mut checked = 0;
    for (path, _) in policies.entry_point_reads() {
        let path = DataPath::from_dotted(&path);
        let tree = tree_for(&policies, &path);
        for input in &inputs {
            let bytes = serde_json::to_vec(input).unwrap();
            let whole = policies.evaluate(&path, Some(Value::from(input.clone())));
            let parts = policies.evaluate(&path, Some(read_parts(&bytes, &tree).unwrap()));
            assert!(
                same(&whole, &parts),
                "{path} differs on its read parts for input {input}:\nwhole: {whole:?}\nparts: {parts:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} comparisons");
}

#[test]
fn gatekeeper_constraints_answer_alike_on_their_read_parts() {
    let bundles = vec![
        bundle::load_dir(&repo("tests/fixtures/gatekeeper/bundle")).unwrap(),
        bundle::load_dir(&repo("tests/fixtures/gatekeeper/inventory")).unwrap(),
    ];
    let library =
        portcullis::gatekeeper::from_bundles(&bundles, &EngineOptions::default()).unwrap();
    let tree = ReadTree::new(&library.reads().input);
    let mut reviews = inputs();
    for suite in std::fs::read_dir(repo("tests/fixtures/gatekeeper/suites")).unwrap() {
        let samples = suite.unwrap().path().join("samples");
        for sample in std::fs::read_dir(samples).unwrap() {
            let text = std::fs::read_to_string(sample.unwrap().path()).unwrap();
            let first = text.split("\n---\n").next().unwrap();
            let object: serde_json::Value = yaml_serde::from_str(first).unwrap();
            if object["kind"] == json!("AdmissionReview") {
                reviews.push(object);
                continue;
            }
            let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
            let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
            reviews.push(json!({"request": {
                "uid": "u", "operation": "CREATE",
                "kind": {"group": group, "version": version, "kind": object["kind"]},
                "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
                "object": object,
            }}));
        }
    }
    let mut violations = 0;
    for review in &reviews {
        let bytes = serde_json::to_vec(review).unwrap();
        let whole = library.review(&Value::from(review["request"].clone()));
        let parts = read_parts(&bytes, &tree).unwrap();
        let pruned = library.review(&parts["request"]);
        assert_eq!(
            whole, pruned,
            "constraints differ on the read parts of {review}"
        );
        violations += whole.len();
    }
    assert!(
        violations > 10,
        "the reviews exercise the constraints: {violations}"
    );
}
