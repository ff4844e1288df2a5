//! The admission webhook over real TLS: a client that trusts the test CA
//! sends AdmissionReviews and gets exact answers; the certificate rotates
//! without a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

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
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portcullis test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    if let Some((year, month, day)) = not_after {
        params.not_before = rcgen::date_time_ymd(year - 1, month, day);
        params.not_after = rcgen::date_time_ymd(year, month, day);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn install(pki: &Pki, dir: &Path) {
    std::fs::write(dir.join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &pki.key_pem).unwrap();
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn start(dir: &Path) -> Result<TestServer, String> {
    let dir = dir.to_path_buf();
    TestServer::try_start_with(move |c| {
        c.bundles = vec![repo("policies"), repo("bundles")];
        c.admission.enabled = true;
        c.admission.addr = "127.0.0.1:0".into();
        c.admission.cert_file = Some(dir.join("tls.crt"));
        c.admission.key_file = Some(dir.join("tls.key"));
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
        json!("policies=policies-2026.11.22.2,bundles=platform-data-2026.11.22.2")
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
        json!(["container shell has no readinessProbe"])
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
