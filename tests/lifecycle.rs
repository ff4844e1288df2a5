//! Health, readiness, status, fail-fast start and graceful drain, against the
//! real server on loopback.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{repo, TestServer};
use portcullis::api::{self, AppParts, AppState};
use portcullis::cache::DecisionCache;
use portcullis::config::{Config, Limits};
use portcullis::engine::{DataPath, EngineOptions};
use portcullis::pdp::DecisionPoint;
use portcullis::server::{Server, ServerError};
use serde_json::json;

#[tokio::test]
async fn health_endpoints_and_status_document() {
    let server = TestServer::start().await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, json!({}), "{path}");
    }
    let (status, body) = server.get("/v1/status").await;
    assert_eq!(status, 200);
    let result = &body["result"];
    assert_eq!(result["ready"], json!(true));
    assert_eq!(result["generation"], json!(1));
    assert!(result["activated_at"].as_str().unwrap().ends_with('Z'));
    let revisions: Vec<(String, String)> = result["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["revision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [
            ("policies".to_string(), "policies-2026.11.30.1".to_string()),
            (
                "bundles".to_string(),
                "platform-data-2026.11.22.2".to_string()
            ),
            ("edge".to_string(), "edge-1".to_string()),
        ]
    );
    assert_eq!(result["last_failure"], json!(null));
    server.stop().await;
}

#[tokio::test]
async fn not_ready_until_a_bundle_is_active() {
    let pdp = Arc::new(DecisionPoint::new(
        vec![repo("policies")],
        EngineOptions::default(),
    ));
    let settings = portcullis::config::CacheConfig::default().settings();
    let state = AppState::new(AppParts {
        pdp: pdp.clone(),
        limits: Arc::new(Limits::default()),
        default_decision: Arc::new(DataPath::parse("system/main")),
        shutting_down: Arc::new(AtomicBool::new(false)),
        remotes: Arc::new(Vec::new()),
        admission: None,
        metrics: Arc::new(portcullis::metrics::Metrics::new()),
        decisions: Arc::new(DecisionCache::new("data", &settings, None)),
        verdicts: Arc::new(DecisionCache::new("admission", &settings, None)),
        decision_log: None,
        allow_writes: false,
        ready_after_first_push: false,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, api::router(state)).await.unwrap();
    });
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.unwrap() }
    };
    assert_eq!(get("/health").await.status(), 503);
    assert_eq!(get("/health/ready").await.status(), 503);
    assert_eq!(get("/health/live").await.status(), 200);
    let response = get("/v1/data/system/main").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], json!("internal_error"));

    pdp.reload().expect("shipped policies load");
    assert_eq!(get("/health/ready").await.status(), 200);
    assert_eq!(get("/health").await.status(), 200);
    task.abort();
}

#[tokio::test]
async fn start_fails_fast_on_a_broken_bundle_naming_file_line_column() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.rego"),
        "package bad\n\nallow if {\n  input.x ==\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.server.addr = "127.0.0.1:0".into();
    config.bundles = vec![tmp.path().to_path_buf()];
    let err = Server::bind(&config).await.unwrap_err();
    assert!(matches!(err, ServerError::Load(_)), "{err}");
    let text = err.to_string();
    let dir_name = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(text.contains(&format!("{dir_name}/bad.rego:")), "{text}");
}

#[tokio::test]
async fn start_fails_on_invalid_config_naming_the_key() {
    let mut config = Config::default();
    config.server.addr = "not-an-address".into();
    let err = Server::bind(&config).await.unwrap_err();
    assert!(err.to_string().contains("server.addr"), "{err}");

    let mut config = Config::default();
    config.limits.eval_timeout_ms = 0;
    let err = Server::bind(&config).await.unwrap_err();
    assert!(err.to_string().contains("limits.eval_timeout_ms"), "{err}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let server = TestServer::start_with(|c| c.limits.eval_timeout_ms = 10_000).await;
    let client = server.client.clone();
    let url = server.url("/v1/data/edge/busy");
    let in_flight = tokio::spawn(async move {
        client
            .post(url)
            .body(r#"{"input": {}}"#)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // Let the request reach the handler before shutdown begins.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    server.stop().await;
    let status = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(status, 200);
}
