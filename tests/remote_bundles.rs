//! Bundles polled from a real HTTP bundle server on loopback, started by the
//! test: activation, the 304 path, a bad bundle never going live, and starts
//! with the server down, with and without a persisted copy.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::TestServer;
use portcullis::config::RemoteBundleConfig;
use serde_json::json;

/// A bundle server: one archive, an ETag per version, a switch to fail.
#[derive(Default)]
struct BundleServer {
    archive: Mutex<(Vec<u8>, String)>,
    down: AtomicBool,
    requests: AtomicU32,
    not_modified: AtomicU32,
    last_authorization: Mutex<Option<String>>,
}

async fn serve_bundle(State(server): State<Arc<BundleServer>>, headers: HeaderMap) -> Response {
    server.requests.fetch_add(1, Ordering::SeqCst);
    *server.last_authorization.lock().unwrap() = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    if server.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let (bytes, etag) = server.archive.lock().unwrap().clone();
    if headers.get("if-none-match").map(|v| v.to_str().unwrap()) == Some(etag.as_str()) {
        server.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([("etag", etag)], bytes).into_response()
}

impl BundleServer {
    async fn start() -> (Arc<BundleServer>, String) {
        let server = Arc::new(BundleServer::default());
        let app = axum::Router::new()
            .route("/bundles/hot.tar.gz", axum::routing::get(serve_bundle))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/bundles/hot.tar.gz",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, url)
    }

    fn publish(&self, revision: &str, rego: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("hot");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join(".manifest"),
            format!(r#"{{"revision": "{revision}", "roots": ["hot"]}}"#),
        )
        .unwrap();
        std::fs::write(src.join("hot.rego"), rego).unwrap();
        let out = tmp.path().join("hot.tar.gz");
        let bundle = portcullis::bundle::load(&src).unwrap();
        portcullis::bundle::write_tarball(&bundle, &out, None).unwrap();
        *self.archive.lock().unwrap() = (std::fs::read(out).unwrap(), format!("\"{revision}\""));
    }

    fn publish_bytes(&self, etag: &str, bytes: Vec<u8>) {
        *self.archive.lock().unwrap() = (bytes, format!("\"{etag}\""));
    }
}

fn remote(url: &str, token_file: Option<&Path>) -> RemoteBundleConfig {
    RemoteBundleConfig {
        name: "hot".into(),
        url: url.into(),
        min_delay_ms: 30,
        max_delay_ms: 60,
        timeout_ms: 2000,
        bearer_token_file: token_file.map(Path::to_path_buf),
    }
}

async fn start(url: &str, persist: &Path, token_file: Option<&Path>) -> Result<TestServer, String> {
    let (url, persist, token) = (
        url.to_string(),
        persist.to_path_buf(),
        token_file.map(Path::to_path_buf),
    );
    TestServer::try_start_with(move |c| {
        c.bundles = vec![];
        c.watch.enabled = false;
        c.persist_dir = persist;
        c.remote_bundles = vec![remote(&url, token.as_deref())];
    })
    .await
    .map_err(|err| err.to_string())
}

async fn wait_for(server: &TestServer, expected: serde_json::Value) {
    let started = Instant::now();
    loop {
        let (_, body) = server.get("/v1/data/hot/v").await;
        if body["result"] == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never saw {expected}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn remote_status(server: &TestServer) -> serde_json::Value {
    server.get("/v1/status").await.1["result"]["remote_bundles"][0].clone()
}

#[tokio::test]
async fn polls_activate_new_revisions_and_304s_cost_nothing() {
    let (bundles, url) = BundleServer::start().await;
    bundles.publish("a1", "package hot\nv := 1\n");
    let persist = tempfile::tempdir().unwrap();
    let token = persist.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let server = start(&url, persist.path(), Some(&token)).await.unwrap();
    wait_for(&server, json!(1)).await;
    // Unchanged bundle: the server answers 304 and nothing is reloaded.
    let generation = server.get("/v1/status").await.1["result"]["generation"].clone();
    let before = bundles.not_modified.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        bundles.not_modified.load(Ordering::SeqCst) > before,
        "no 304 seen"
    );
    assert_eq!(
        server.get("/v1/status").await.1["result"]["generation"],
        generation
    );
    assert_eq!(
        bundles.last_authorization.lock().unwrap().as_deref(),
        Some("Bearer s3cret")
    );
    // A new revision goes live.
    bundles.publish("a2", "package hot\nv := 2\n");
    wait_for(&server, json!(2)).await;
    let status = remote_status(&server).await;
    assert_eq!(status["etag"], json!("\"a2\""));
    assert_eq!(status["last_error"], json!(null));
    assert!(persist.path().join("hot.tar.gz").exists());
    server.stop().await;
}

#[tokio::test]
async fn corrupt_and_uncompilable_bundles_never_go_live() {
    let (bundles, url) = BundleServer::start().await;
    bundles.publish("b1", "package hot\nv := 1\n");
    let persist = tempfile::tempdir().unwrap();
    let server = start(&url, persist.path(), None).await.unwrap();
    wait_for(&server, json!(1)).await;

    bundles.publish_bytes("garbage", b"not a tarball".to_vec());
    let started = Instant::now();
    loop {
        let status = remote_status(&server).await;
        if let Some(error) = status["last_error"].as_str() {
            assert!(error.contains("invalid"), "{error}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(&server, json!(1)).await;

    bundles.publish("b3", "package hot\nv := := 3\n");
    let started = Instant::now();
    loop {
        let status = remote_status(&server).await;
        if status["etag"] == json!("\"b3\"") && !status["last_error"].is_null() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(&server, json!(1)).await;
    // The persisted copy is still the last good one.
    let persisted = portcullis::bundle::load(&persist.path().join("hot.tar.gz")).unwrap();
    assert_eq!(persisted.revision(), "b1");

    bundles.publish("b4", "package hot\nv := 4\n");
    wait_for(&server, json!(4)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_start_with_the_server_down_uses_the_persisted_copy() {
    let (bundles, url) = BundleServer::start().await;
    bundles.publish("c1", "package hot\nv := 1\n");
    let persist = tempfile::tempdir().unwrap();
    let first = start(&url, persist.path(), None).await.unwrap();
    wait_for(&first, json!(1)).await;
    first.stop().await;

    bundles.down.store(true, Ordering::SeqCst);
    let second = start(&url, persist.path(), None).await.unwrap();
    wait_for(&second, json!(1)).await;
    let status = remote_status(&second).await;
    assert_eq!(status["serving_persisted"], json!(true));
    assert!(status["last_error"].as_str().unwrap().contains("503"));
    // When the server comes back, polling resumes and a new revision lands.
    bundles.publish("c2", "package hot\nv := 2\n");
    bundles.down.store(false, Ordering::SeqCst);
    wait_for(&second, json!(2)).await;
    assert_eq!(
        remote_status(&second).await["serving_persisted"],
        json!(false)
    );
    second.stop().await;
}

#[tokio::test]
async fn a_start_with_the_server_down_and_nothing_persisted_fails_clearly() {
    let (bundles, url) = BundleServer::start().await;
    bundles.down.store(true, Ordering::SeqCst);
    let persist = tempfile::tempdir().unwrap();
    let err = start(&url, persist.path(), None)
        .await
        .err()
        .expect("start fails");
    assert!(err.contains("503"), "{err}");
    assert!(err.contains("no persisted copy"), "{err}");
}
