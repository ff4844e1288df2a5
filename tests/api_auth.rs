//! Authentication and authorization of the decision API against the real
//! server: bearer tokens from a file that is reloaded, the shipped
//! `system.authz` policy, mutual TLS, and open health and metrics.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{example_request, TestServer};
use portcullis::config::ApiTlsConfig;
use serde_json::{json, Value};

const ORCHESTRATOR: &str = "orch-7d1e0c55a9b34f1f8e2b";
const BROKER: &str = "broker-9c2f4a7e61d04b5c";
const ADMIN: &str = "admin-3b8e1d9f0a6c4e72";

fn write_tokens(path: &Path, lines: &str) {
    // Write and rename, as a Secret volume update does.
    let staging = path.with_extension("new");
    std::fs::write(&staging, lines).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

#[tokio::test]
async fn tokens_are_required_checked_and_reloaded_while_health_and_metrics_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    write_tokens(
        &tokens,
        &format!("# API callers\nprovisioning-orchestrator {ORCHESTRATOR}\n"),
    );
    let tokens_file = tokens.clone();
    let server = TestServer::start_with(move |c| c.auth.tokens_file = Some(tokens_file)).await;
    let post = reqwest::Method::POST;
    let url = server.url("/v1/data/provisioning/decision");
    let input = Some(json!({ "input": example_request() }));

    let (status, body, headers) = call(
        &server.client,
        post.clone(),
        url.clone(),
        None,
        input.clone(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], json!("unauthorized"));
    assert!(headers.contains_key("www-authenticate"));
    let (status, body, _) = call(
        &server.client,
        post.clone(),
        url.clone(),
        Some("not-a-token-at-all"),
        input.clone(),
    )
    .await;
    assert_eq!((status, &body["code"]), (401, &json!("unauthorized")));
    assert_eq!(body["message"], json!("the bearer token is not valid"));
    let (status, body, _) = call(
        &server.client,
        post.clone(),
        url.clone(),
        Some(ORCHESTRATOR),
        input.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["allowed"], json!(true));
    // Unknown paths are refused before routing: no probing without a token.
    let (status, _, _) = call(
        &server.client,
        reqwest::Method::GET,
        server.url("/v2/nothing"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    for open in ["/health", "/health/ready", "/metrics"] {
        let response = server.client.get(server.url(open)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{open}");
    }

    // Rotate: the new token works within seconds, the old one stops working.
    write_tokens(&tokens, &format!("provisioning-orchestrator {BROKER}\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = call(
            &server.client,
            post.clone(),
            url.clone(),
            Some(BROKER),
            input.clone(),
        )
        .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated token was never accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, _) = call(
        &server.client,
        post.clone(),
        url.clone(),
        Some(ORCHESTRATOR),
        input.clone(),
    )
    .await;
    assert_eq!(status, 401);
    // A broken file keeps the tokens in force.
    write_tokens(&tokens, "this line has three fields\n");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, _) = call(&server.client, post, url, Some(BROKER), input).await;
    assert_eq!(status, 200);
    server
        .assert_metrics(&[
            // Refusals while the rotation lands vary in number; these do not.
            "portcullis_auth_requests_total{result=\"allowed\"} 3",
            "portcullis_auth_requests_total{result=\"forbidden\"} 0",
        ])
        .await;
    server.stop().await;
}

#[tokio::test]
async fn the_authorization_policy_decides_per_caller_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    write_tokens(
        &tokens,
        &format!(
            "provisioning-orchestrator {ORCHESTRATOR}\nsecret-broker {BROKER}\nplatform-admin {ADMIN}\n"
        ),
    );
    let tokens_file = tokens.clone();
    let server = TestServer::start_with(move |c| {
        c.auth.tokens_file = Some(tokens_file);
        c.auth.authz_policy = Some("/system/authz/allow".into());
    })
    .await;
    let post = reqwest::Method::POST;
    let input = Some(json!({ "input": example_request() }));
    let quota = server.url("/v1/data/provisioning/decision");
    let secrets = server.url("/v1/data/secrets/access/decision");

    let (status, _, _) = call(
        &server.client,
        post.clone(),
        quota.clone(),
        Some(ORCHESTRATOR),
        input.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body, _) = call(
        &server.client,
        post.clone(),
        secrets.clone(),
        Some(ORCHESTRATOR),
        input.clone(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], json!("unauthorized"));
    assert_eq!(
        body["message"],
        json!("request rejected by administrative policy")
    );
    let (status, _, _) = call(
        &server.client,
        post.clone(),
        secrets,
        Some(BROKER),
        input.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(&server.client, post.clone(), quota, Some(BROKER), input).await;
    assert_eq!(status, 403);
    let status_url = server.url("/v1/status");
    let (status, _, _) = call(
        &server.client,
        reqwest::Method::GET,
        status_url.clone(),
        Some(ORCHESTRATOR),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &server.client,
        reqwest::Method::GET,
        status_url,
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    server
        .assert_metrics(&[
            "portcullis_auth_requests_total{result=\"allowed\"} 3",
            "portcullis_auth_requests_total{result=\"forbidden\"} 3",
        ])
        .await;
    server.stop().await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate with
/// common name `provisioning-orchestrator`, as PEM files in `dir`.
struct Pki {
    ca_pem: String,
    client_identity_pem: String,
}

fn pki(dir: &Path) -> Pki {
    let ca = common::pki::TestCa::new("portcullis API test CA");
    let (cert, key) = ca.serving(None);
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    std::fs::write(dir.join("clients-ca.crt"), ca.pem()).unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_identity_pem: ca.client("provisioning-orchestrator"),
    }
}

fn tls_client(pki: &Pki, with_certificate: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    if with_certificate {
        builder = builder
            .identity(reqwest::Identity::from_pem(pki.client_identity_pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn start_mtls(dir: &Path, required: bool) -> TestServer {
    let dir = dir.to_path_buf();
    TestServer::start_with(move |c| {
        c.server.tls = Some(ApiTlsConfig {
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
            client_ca_file: Some(dir.join("clients-ca.crt")),
            require_client_certificate: required,
        });
        c.auth.authz_policy = Some("/system/authz/allow".into());
    })
    .await
}

#[tokio::test]
async fn client_certificates_identify_callers_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let server = start_mtls(dir.path(), false).await;
    let base = server.base.replace("http://", "https://");
    let input = Some(json!({ "input": example_request() }));
    let quota = format!("{base}/v1/data/provisioning/decision");

    // The certificate's common name is the identity the policy sees.
    let with_cert = tls_client(&pki, true);
    let (status, body, _) = call(
        &with_cert,
        reqwest::Method::POST,
        quota.clone(),
        None,
        input.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secrets = format!("{base}/v1/data/secrets/access/decision");
    let (status, _, _) = call(
        &with_cert,
        reqwest::Method::POST,
        secrets,
        None,
        input.clone(),
    )
    .await;
    assert_eq!(status, 403);
    // Without a certificate the caller is anonymous: the policy refuses.
    let without = tls_client(&pki, false);
    let (status, _, _) = call(
        &without,
        reqwest::Method::POST,
        quota.clone(),
        None,
        input.clone(),
    )
    .await;
    assert_eq!(status, 403);
    let health = without.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;

    // Required: a client without a certificate does not get past the handshake.
    let server = start_mtls(dir.path(), true).await;
    let base = server.base.replace("http://", "https://");
    let refused = tls_client(&pki, false)
        .get(format!("{base}/health"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a handshake without a client certificate must fail"
    );
    let (status, _, _) = call(
        &tls_client(&pki, true),
        reqwest::Method::POST,
        format!("{base}/v1/data/provisioning/decision"),
        None,
        input,
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}
