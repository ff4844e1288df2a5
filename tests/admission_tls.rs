//! The admission webhook over real TLS: a client that trusts the test CA
//! sends AdmissionReviews and gets exact answers; the certificate rotates
//! without a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pki::client_trusting;
use common::{repo, TestServer};
use serde_json::{json, Value};

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A fresh CA and a serving certificate for 127.0.0.1 and localhost.
fn pki() -> Pki {
    pki_valid_until(None)
}

/// The same, with the serving certificate expiring at `not_after`.
fn pki_valid_until(not_after: Option<(i32, u8, u8)>) -> Pki {
    let ca = common::pki::TestCa::new("portcullis test CA");
    let (cert_pem, key_pem) = ca.serving(not_after);
    Pki {
        ca_pem: ca.pem(),
        cert_pem,
        key_pem,
    }
}

fn install(pki: &Pki, dir: &Path) {
    std::fs::write(dir.join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.key_pem).unwrap();
}

async fn start(dir: &Path) -> Result<TestServer, String> {
    start_on(dir, vec![repo("policies"), repo("bundles")]).await
}

async fn start_on(dir: &Path, bundles: Vec<std::path::PathBuf>) -> Result<TestServer, String> {
    start_adjusted(dir, bundles, |_| {}).await
}

async fn start_adjusted(
    dir: &Path,
    bundles: Vec<std::path::PathBuf>,
    adjust: impl FnOnce(&mut portcullis::config::Config),
) -> Result<TestServer, String> {
    let dir = dir.to_path_buf();
    TestServer::try_start_with(move |c| {
        c.bundles = bundles;
        c.admission.enabled = true;
        c.admission.addr = "127.0.0.1:0".into();
        c.admission.cert_file = Some(dir.join("tls.crt"));
        c.admission.key_file = Some(dir.join("tls.key"));
        adjust(c);
    })
    .await
    .map_err(|e| e.to_string())
}

fn example_review(name: &str) -> Value {
    let text = std::fs::read_to_string(repo(&format!("examples/{name}.json"))).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["input"].clone()
}

fn review(kind: &str, namespace: &str, operation: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{kind}-{operation}"),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "namespace": namespace,
            "operation": operation,
            "object": object,
        }
    })
}

async fn admit(client: &reqwest::Client, server: &TestServer, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1/admit", server.admission_base.as_ref().unwrap());
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("TLS request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn admission_reviews_get_exact_answers_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    install(&pki, tmp.path());
    let server = start(tmp.path()).await.unwrap();
    let client = client_trusting(&pki.ca_pem);

    // A compliant Pod: allowed, uid echoed, audited.
    let (status, body) = admit(&client, &server, &example_review("admission-pod")).await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], json!("admission.k8s.io/v1"));
    assert_eq!(body["kind"], json!("AdmissionReview"));
    let response = &body["response"];
    assert_eq!(
        response["uid"],
        json!("705ab4f5-6393-11e8-b7cc-42010a800002")
    );
    assert_eq!(response["allowed"], json!(true));
    assert!(response.get("status").is_none());
    let annotations = &response["auditAnnotations"];
    assert!(
        annotations["portcullis.dev/decision-id"]
            .as_str()
            .unwrap()
            .len()
            == 36
    );
    assert_eq!(
        annotations["portcullis.dev/revision"],
        json!("policies=policies-2026.11.30.1,bundles=platform-data-2026.11.22.2")
    );

    // A privileged debug Pod: denied with every reason.
    let (_, body) = admit(&client, &server, &example_review("admission-pod-denied")).await;
    let response = &body["response"];
    assert_eq!(response["allowed"], json!(false));
    assert_eq!(response["status"]["code"], json!(403));
    assert_eq!(response["status"]["reason"], json!("Forbidden"));
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("[admission] container shell must not run privileged"),
        "{message}"
    );
    assert!(
        message.contains("[admission] Pod debug-shell must not set hostNetwork"),
        "{message}"
    );
    assert_eq!(message.matches("[admission]").count(), 10, "{message}");
    assert_eq!(
        response["warnings"],
        json!(["[admission] container shell has no readinessProbe"])
    );

    // A Deployment and a NetworkPolicy get exact answers too.
    let mut deployment = review(
        "Deployment",
        "payments-staging",
        "CREATE",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "api", "namespace": "payments-staging",
                            "labels": {"portcullis.dev/team": "payments"}},
               "spec": {"template": {"spec": {"containers": [{
                   "name": "api", "image": "docker.io/library/api:latest",
                   "securityContext": {"privileged": true}}]}}}}),
    );
    deployment["request"]["kind"]["group"] = json!("apps");
    let (_, body) = admit(&client, &server, &deployment).await;
    let mut response = body["response"].clone();
    response.as_object_mut().unwrap().remove("auditAnnotations");
    assert_eq!(
        response,
        json!({
            "uid": "uid-Deployment-CREATE",
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": ([
                "[admission] Deployment api must carry the label portcullis.dev/owner",
                "[admission] container api must not run privileged",
                "[admission] container api must set resources.limits.cpu",
                "[admission] container api must set resources.limits.memory",
                "[admission] container api must set resources.requests.cpu",
                "[admission] container api must set resources.requests.memory",
                "[admission] container api: image docker.io/library/api:latest is not from an allowed registry [\"registry.example.com\", \"ghcr.io/example\", \"public.ecr.aws/example\"]",
                "[admission] container api: image docker.io/library/api:latest must name a tag other than latest, or a digest",
            ].join("; "))},
            "warnings": ["[admission] container api has no readinessProbe"],
        })
    );
    let policy = review(
        "NetworkPolicy",
        "payments-staging",
        "CREATE",
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "open", "namespace": "payments-staging"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}),
    );
    let (_, body) = admit(&client, &server, &policy).await;
    let mut response = body["response"].clone();
    response.as_object_mut().unwrap().remove("auditAnnotations");
    assert_eq!(
        response,
        json!({
            "uid": "uid-NetworkPolicy-CREATE",
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message":
                "[admission] ingress from public range 0.0.0.0/0 is only allowed into the ingress-controller namespaces [\"ingress-nginx\"]"},
        })
    );

    // A Lease update: no policy checks leases, so no evaluation at all.
    let lease = review(
        "Lease",
        "kube-node-lease",
        "UPDATE",
        json!({"kind": "Lease", "metadata": {"name": "node-1"}}),
    );
    let (_, body) = admit(&client, &server, &lease).await;
    assert_eq!(
        body["response"],
        json!({"uid": "uid-Lease-UPDATE", "allowed": true})
    );

    // An exempt namespace is not checked either.
    let mut privileged = example_review("admission-pod-denied");
    privileged["request"]["namespace"] = json!("kube-system");
    let (_, body) = admit(&client, &server, &privileged).await;
    assert_eq!(body["response"]["allowed"], json!(true));
    assert!(body["response"].get("auditAnnotations").is_none());

    // DELETE carries only oldObject and is allowed.
    let mut delete = example_review("admission-pod-denied");
    delete["request"]["operation"] = json!("DELETE");
    delete["request"]["oldObject"] = delete["request"]["object"].take();
    let (_, body) = admit(&client, &server, &delete).await;
    assert_eq!(body["response"]["allowed"], json!(true));

    // A v1beta1 review is answered in v1beta1.
    let mut beta = example_review("admission-pod");
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let (_, body) = admit(&client, &server, &beta).await;
    assert_eq!(body["apiVersion"], json!("admission.k8s.io/v1beta1"));

    // Malformed reviews are 400 with a message.
    let url = format!("{}/v1/admit", server.admission_base.as_ref().unwrap());
    let response = client
        .post(&url)
        .body("{\"apiVersion\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, body) = admit(
        &client,
        &server,
        &json!({"apiVersion": "v1", "kind": "Pod"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("not an AdmissionReview"));
    server.stop().await;
}

/// The shipped policies and data plus the Gatekeeper fixtures (bundle and
/// inventory).
fn gatekeeper_bundles() -> Vec<std::path::PathBuf> {
    vec![
        repo("policies"),
        repo("bundles"),
        repo("tests/fixtures/gatekeeper/bundle"),
        repo("tests/fixtures/gatekeeper/inventory"),
    ]
}

/// A server on the shipped policies plus the Gatekeeper fixtures (bundle
/// and inventory), and a client trusting its fresh CA. The directory holds
/// the certificate files and must live as long as the server.
async fn start_with_gatekeeper() -> (tempfile::TempDir, TestServer, reqwest::Client) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    install(&pki, tmp.path());
    let server = start_on(tmp.path(), gatekeeper_bundles()).await.unwrap();
    (tmp, server, client_trusting(&pki.ca_pem))
}

/// A review of `object` as the API server sends it for a CREATE.
fn create_review(object: Value) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-create",
            "kind": {"group": group, "version": version, "kind": object["kind"]},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "ci"},
            "object": object,
        }
    })
}

#[tokio::test]
async fn gatekeeper_constraints_deny_warn_and_dryrun_over_tls() {
    let (_certs, server, client) = start_with_gatekeeper().await;

    // A Pod breaking several constraints: every deny constraint is listed
    // by name, the warn constraint rides along as a warning.
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent", "namespace": "payments-prod",
                     "labels": {"app": "agent", "portcullis.dev/team": "payments"}},
        "spec": {"containers": [{
            "name": "agent", "image": "docker.io/library/agent:latest",
            "securityContext": {"privileged": true},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "readinessProbe": {"exec": {"command": ["true"]}},
            "livenessProbe": {"exec": {"command": ["true"]}}
        }]}
    });
    let (status, body) = admit(&client, &server, &create_review(pod.clone())).await;
    assert_eq!(status, 200);
    let response = &body["response"];
    assert_eq!(response["allowed"], json!(false), "{body}");
    assert_eq!(response["status"]["code"], json!(403));
    let message = response["status"]["message"].as_str().unwrap();
    for expected in [
        "[pods-must-have-owner] missing required label(s): portcullis.dev/owner",
        "[allowed-repos] container agent: image docker.io/library/agent:latest is not from an allowed repository",
        "[no-privileged-containers] privileged container agent is not allowed",
    ] {
        assert!(message.contains(expected), "{expected} not in {message}");
    }
    assert!(!message.contains("[no-latest-tag]"), "warn only: {message}");
    assert!(!message.contains("[required-probes]"), "{message}");
    let warnings = response["warnings"].as_array().unwrap();
    assert!(
        warnings.contains(&json!(
            "[no-latest-tag] container agent uses the disallowed tag latest"
        )),
        "{warnings:?}"
    );

    // The same Pod in a namespace whose inventory labels exempt it from the
    // privileged constraint (namespaceSelector).
    let mut in_monitoring = pod.clone();
    in_monitoring["metadata"]["namespace"] = json!("monitoring");
    let (_, body) = admit(&client, &server, &create_review(in_monitoring)).await;
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(!message.contains("[no-privileged-containers]"), "{message}");
    assert!(
        !message.contains("[allowed-repos]"),
        "namespaces: {message}"
    );
    assert!(message.contains("[pods-must-have-owner]"), "{message}");

    // A compliant Pod is allowed; the dryrun constraint it breaks (no
    // livenessProbe) is only counted.
    let (_, body) = admit(&client, &server, &example_review("admission-pod")).await;
    assert_eq!(body["response"]["allowed"], json!(true), "{body}");
    assert!(body["response"].get("warnings").is_none(), "{body}");

    // Constraints on other kinds: a NodePort Service, an Ingress whose host
    // the inventory says is taken, a Namespace without a team.
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api", "namespace": "payments-prod"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let (_, body) = admit(&client, &server, &create_review(service)).await;
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("[no-nodeport] Services of type NodePort are not allowed"),
        "{message}"
    );
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "copy", "namespace": "payments-prod"},
        "spec": {"rules": [{"host": "shop.example.com"}]}});
    let (_, body) = admit(&client, &server, &create_review(ingress)).await;
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "[unique-ingress-host] ingress host shop.example.com is already used by ingress shop/shop"
        ),
        "{message}"
    );
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "scratch", "namespace": null}});
    let (_, body) = admit(&client, &server, &create_review(namespace)).await;
    let message = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message
            .contains("[namespaces-must-have-team] missing required label(s): portcullis.dev/team"),
        "{message}"
    );

    // Kinds no policy and no constraint selects still take the fast path,
    // and exempt namespaces are not checked.
    let lease = review(
        "Lease",
        "kube-node-lease",
        "UPDATE",
        json!({"kind": "Lease"}),
    );
    let (_, body) = admit(&client, &server, &lease).await;
    assert_eq!(
        body["response"],
        json!({"uid": "uid-Lease-UPDATE", "allowed": true})
    );
    let mut exempt = pod.clone();
    exempt["metadata"]["namespace"] = json!("kube-system");
    let (_, body) = admit(&client, &server, &create_review(exempt)).await;
    assert_eq!(body["response"]["allowed"], json!(true));

    server
        .assert_metrics(&[
        r#"portcullis_gatekeeper_violations_total{constraint="required-probes",enforcement_action="dryrun"} 1"#,
        r#"portcullis_gatekeeper_violations_total{constraint="no-latest-tag",enforcement_action="warn"} 2"#,
        r#"portcullis_gatekeeper_violations_total{constraint="no-nodeport",enforcement_action="deny"} 1"#,
        // Lease is neither a configured kind nor named by a constraint:
        // its label is "other", from a bounded set.
        r#"portcullis_admission_reviews_total{kind="other",operation="UPDATE",outcome="fast_path"} 1"#,
        r#"portcullis_admission_reviews_total{kind="Pod",operation="CREATE",outcome="fast_path"} 1"#,
        r#"portcullis_admission_reviews_total{kind="Pod",operation="CREATE",outcome="denied"} 2"#,
        r#"portcullis_admission_reviews_total{kind="Service",operation="CREATE",outcome="denied"} 1"#,
        r#"portcullis_constraint_evaluation_duration_seconds_count{constraint="no-nodeport"} 1"#,
        r#"portcullis_evaluation_duration_seconds_count{path="data.admission.decision"}"#,
        ])
        .await;
    server.stop().await;
}

#[tokio::test]
async fn reviews_differing_only_in_unread_fields_share_a_cached_verdict() {
    let (_certs, server, client) = start_with_gatekeeper().await;
    let base = example_review("admission-pod");
    let hits = || async {
        let metrics = server.metrics().await;
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(
                    r#"portcullis_decision_cache_requests_total{cache="admission",result="hit"}"#,
                )
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap());
        line.unwrap_or(0)
    };

    let (_, first) = admit(&client, &server, &base).await;
    assert_eq!(hits().await, 0);
    // What the API server changes between two writes of the same object:
    // uid, resourceVersion, managedFields, status. None is read.
    let mut again = base.clone();
    again["request"]["uid"] = json!("another-uid");
    let object = &mut again["request"]["object"];
    object["metadata"]["resourceVersion"] = json!("99999");
    object["metadata"]["managedFields"] =
        json!([{"manager": "kubectl", "operation": "Update", "time": "2026-11-22T00:00:00Z"}]);
    object["status"] = json!({"phase": "Running", "podIP": "10.0.0.7"});
    let (_, second) = admit(&client, &server, &again).await;
    assert_eq!(hits().await, 1, "{second}");
    assert_eq!(second["response"]["uid"], json!("another-uid"));
    assert_eq!(second["response"]["allowed"], first["response"]["allowed"]);
    assert_eq!(
        second["response"].get("warnings"),
        first["response"].get("warnings")
    );
    assert_ne!(
        second["response"]["auditAnnotations"]["portcullis.dev/decision-id"],
        first["response"]["auditAnnotations"]["portcullis.dev/decision-id"]
    );

    // Any difference in a field some policy or constraint reads misses,
    // and gets its own verdict.
    let mut changes: Vec<(&str, Value)> = Vec::new();
    let mut image = base.clone();
    image["request"]["object"]["spec"]["containers"][0]["image"] = json!("docker.io/x:latest");
    changes.push(("container image", image));
    let mut label = base.clone();
    label["request"]["object"]["metadata"]["labels"]["tier"] = json!("batch");
    changes.push(("a label a selector reads", label));
    let mut namespace = base.clone();
    namespace["request"]["namespace"] = json!("monitoring");
    changes.push(("namespace", namespace));
    let mut operation = base.clone();
    operation["request"]["operation"] = json!("UPDATE");
    changes.push(("operation", operation));
    let mut group = base.clone();
    group["request"]["kind"]["group"] = json!("example.com");
    changes.push(("API group", group));
    for (what, review) in &changes {
        let before = hits().await;
        let (status, _) = admit(&client, &server, review).await;
        assert_eq!(status, 200);
        assert_eq!(hits().await, before, "a change of {what} must miss");
    }
    let (_, denied) = admit(&client, &server, &changes[0].1).await;
    assert_eq!(denied["response"]["allowed"], json!(false), "{denied}");
    assert!(denied["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("[allowed-repos]"));
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let first = pki();
    install(&first, tmp.path());
    let server = start(tmp.path()).await.unwrap();
    let old_client = client_trusting(&first.ca_pem);
    let pod = example_review("admission-pod");
    assert_eq!(admit(&old_client, &server, &pod).await.0, 200);

    let second = pki();
    install(&second, tmp.path());
    let new_client = client_trusting(&second.ca_pem);
    let url = format!("{}/v1/admit", server.admission_base.as_ref().unwrap());
    let started = Instant::now();
    loop {
        if let Ok(response) = new_client.post(&url).json(&pod).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A client with no resumable session sees only the new certificate.
    let fresh_old_client = client_trusting(&first.ca_pem);
    assert!(fresh_old_client.post(&url).json(&pod).send().await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_missing_broken_or_expired_certificate_fails_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let err = start(tmp.path()).await.err().unwrap();
    assert!(err.contains("tls.crt"), "{err}");

    std::fs::write(tmp.path().join("tls.crt"), "not a certificate").unwrap();
    std::fs::write(tmp.path().join("tls.key"), "not a key").unwrap();
    let err = start(tmp.path()).await.err().unwrap();
    assert!(
        err.contains("tls.crt") && err.contains("no certificate"),
        "{err}"
    );

    let a = pki();
    let b = pki();
    std::fs::write(tmp.path().join("tls.crt"), &a.cert_pem).unwrap();
    std::fs::write(tmp.path().join("tls.key"), &b.key_pem).unwrap();
    let err = start(tmp.path()).await.err().unwrap();
    assert!(err.contains("does not match"), "{err}");

    install(&pki_valid_until(Some((2021, 1, 1))), tmp.path());
    let err = start(tmp.path()).await.err().unwrap();
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn admission_decisions_are_logged_without_secret_values_and_with_dryrun_violations() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki();
    install(&pki, tmp.path());
    let log = tmp.path().join("decisions.jsonl");
    let log_path = log.clone();
    let server = start_adjusted(tmp.path(), gatekeeper_bundles(), move |c| {
        c.admission.kinds.push("Secret".into());
        c.decision_logs.enabled = true;
        c.decision_logs.sink = portcullis::config::DecisionLogSink::File;
        c.decision_logs.file.path = log_path;
    })
    .await
    .unwrap();
    let client = client_trusting(&pki.ca_pem);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "payments", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration":
                "{\"data\":{\"password\":\"aHVudGVyMi1zZWNyZXQ=\"}}"}},
        "data": {"password": "aHVudGVyMi1zZWNyZXQ="},
        "stringData": {"token": "plain-token-value"},
    });
    let (status, body) = admit(&client, &server, &create_review(secret)).await;
    assert_eq!(status, 200, "{body}");
    let (_, pod_answer) = admit(&client, &server, &example_review("admission-pod")).await;
    assert_eq!(pod_answer["response"]["allowed"], json!(true));
    // A lease is allowed on the fast path: no policy decision, no event.
    let lease = review(
        "Lease",
        "payments",
        "UPDATE",
        json!({"metadata": {"name": "l"}}),
    );
    assert_eq!(admit(&client, &server, &lease).await.0, 200);
    server.stop().await;

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("aHVudGVyMi1zZWNyZXQ=") && !text.contains("plain-token-value"),
        "{text}"
    );
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    let secret_event = &events[0];
    assert_eq!(secret_event["path"], json!("admission/decision"));
    assert_eq!(
        secret_event["input"]["request"]["object"]["metadata"]["name"],
        json!("db")
    );
    let erased: Vec<&str> = secret_event["erased"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(erased.contains(&"/input/request/object/data"), "{erased:?}");
    assert!(
        erased.contains(&"/input/request/object/stringData"),
        "{erased:?}"
    );
    let pod_event = &events[1];
    assert_eq!(
        pod_event["decision_id"],
        pod_answer["response"]["auditAnnotations"]["portcullis.dev/decision-id"]
    );
    // The dryrun constraint's finding is in the record, not in the answer.
    assert_eq!(pod_event["result"]["allowed"], json!(true));
    assert_eq!(
        pod_event["result"]["violations"],
        json!([{"constraint": "required-probes", "enforcement_action": "dryrun",
                "message": "container api has no livenessProbe"}])
    );
    assert!(pod_answer["response"]
        .get("warnings")
        .is_none_or(|w| w == &json!([])));
}
