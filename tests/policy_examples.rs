//! Every example in examples/ POSTed to the running server on the shipped
//! policies and data, with the full decision asserted.

mod common;

use common::{repo, TestServer};
use serde_json::{json, Value};

fn example(name: &str) -> String {
    std::fs::read_to_string(repo(&format!("examples/{name}.json"))).unwrap()
}

async fn decide(server: &TestServer, path: &str, name: &str) -> Value {
    let (status, body) = server
        .post(&format!("/v1/data/{path}"), example(name))
        .await;
    assert_eq!(status, 200, "{name}: {body}");
    body["result"].clone()
}

#[tokio::test]
async fn environment_request_fits_quota_and_class() {
    let server = TestServer::start().await;
    let result = decide(&server, "provisioning/decision", "feature-payments").await;
    assert_eq!(result["allowed"], json!(true));
    assert_eq!(result["violations"], json!([]));
    assert_eq!(result["warnings"], json!([]));
    assert_eq!(result["limits"]["max_ttl_hours"], json!(168));
    server.stop().await;
}

#[tokio::test]
async fn secret_request_by_team_member_is_approved() {
    let server = TestServer::start().await;
    assert_eq!(
        decide(&server, "secrets/access/decision", "secret-request").await,
        json!({
            "decision": "approve",
            "reasons": ["chen is a member of payments, which owns service payments-api"],
            "approvers": [],
            "max_duration_seconds": 3600
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn secret_request_by_outsider_goes_to_the_owning_leads() {
    let server = TestServer::start().await;
    assert_eq!(
        decide(&server, "secrets/access/decision", "secret-request-review").await,
        json!({
            "decision": "review",
            "reasons": ["gia is not on team ledger, which owns service ledger-api"],
            "approvers": ["omar"],
            "max_duration_seconds": 86400
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn compliant_network_objects_are_allowed() {
    let server = TestServer::start().await;
    assert_eq!(
        decide(&server, "network/decision", "network-feature-payments").await,
        json!({"allowed": true, "violations": [], "warnings": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn network_violations_are_each_named() {
    let server = TestServer::start().await;
    let object = "NetworkPolicy/payments-feature-y/wide-open";
    assert_eq!(
        decide(&server, "network/decision", "network-violations").await,
        json!({
            "allowed": false,
            "warnings": [],
            "violations": [
                {"code": "cross_team_ingress", "object": object,
                 "message": "team payments does not allow ingress from team growth (data.platform.teams.payments.network.allow_from_teams)"},
                {"code": "exposed_service", "object": "Service/payments-feature-y/payments-api",
                 "message": "a Service of type LoadBalancer is not allowed in feature environments; use ClusterIP behind the ingress controller"},
                {"code": "missing_default_deny", "object": "Namespace/payments-feature-y",
                 "message": "namespace payments-feature-y has no default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress], no ingress rules)"},
                {"code": "protected_destination", "object": object,
                 "message": "egress to 169.254.169.254/32 reaches the protected range 169.254.0.0/16 (cloud metadata and link-local)"},
                {"code": "public_ingress", "object": object,
                 "message": "ingress from public range 0.0.0.0/0 is only allowed into the ingress-controller namespaces [\"ingress-nginx\"]"}
            ]
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn compliant_pod_is_admitted() {
    let server = TestServer::start().await;
    assert_eq!(
        decide(&server, "admission/decision", "admission-pod").await,
        json!({"allowed": true, "deny": [], "warn": []})
    );
    server.stop().await;
}

#[tokio::test]
async fn debug_pod_is_refused_for_every_reason() {
    let server = TestServer::start().await;
    assert_eq!(
        decide(&server, "admission/decision", "admission-pod-denied").await,
        json!({
            "allowed": false,
            "deny": [
                "Pod debug-shell must carry the label portcullis.dev/owner",
                "Pod debug-shell must carry the label portcullis.dev/team",
                "Pod debug-shell must not set hostNetwork",
                "container shell must not run privileged",
                "container shell must set resources.limits.cpu",
                "container shell must set resources.limits.memory",
                "container shell must set resources.requests.cpu",
                "container shell must set resources.requests.memory",
                "container shell: image docker.io/library/busybox:latest is not from an allowed registry [\"registry.example.com\", \"ghcr.io/example\", \"public.ecr.aws/example\"]",
                "container shell: image docker.io/library/busybox:latest must name a tag other than latest, or a digest"
            ],
            "warn": ["container shell has no readinessProbe"]
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn shipped_data_passes_the_consistency_checks() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/v1/data/system/check/errors").await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!([]));
    server.stop().await;
}
