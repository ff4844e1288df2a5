//! Starting the real server on 127.0.0.1:0 for integration tests.

#![allow(dead_code)]

pub mod pki;

use std::path::PathBuf;

use portcullis::config::Config;
use portcullis::server::{Server, ServerError};
use tokio::sync::oneshot;

/// A running server and how to stop it.
pub struct TestServer {
    pub base: String,
    /// `https://127.0.0.1:PORT` of the admission listener, when enabled.
    pub admission_base: Option<String>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Start on the shipped policies and data plus the edge-case fixture.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Start with a config adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::try_start_with(adjust)
            .await
            .expect("server starts")
    }

    /// Start with a config adjusted by `adjust`, or say why it did not.
    pub async fn try_start_with(
        adjust: impl FnOnce(&mut Config),
    ) -> Result<TestServer, ServerError> {
        let mut config = Config::default();
        config.server.addr = "127.0.0.1:0".to_string();
        config.bundles = vec![
            repo("policies"),
            repo("bundles"),
            repo("tests/fixtures/edge"),
        ];
        // Writes are off by default; the tests' loopback servers take them.
        config.data_writes.enabled = true;
        adjust(&mut config);
        let server = Server::bind(&config).await?;
        let base = format!("http://{}", server.local_addr());
        let admission_base = server
            .admission_addr()
            .map(|addr| format!("https://{addr}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        Ok(TestServer {
            base,
            admission_base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a body and return status and parsed JSON.
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        answer(request).await
    }

    /// GET and return status and parsed JSON.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        answer(self.client.get(self.url(path))).await
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics answered")
            .text()
            .await
            .expect("metrics read")
    }

    /// Assert that the `/metrics` page holds each of `lines`.
    pub async fn assert_metrics(&self, lines: &[&str]) {
        let metrics = self.metrics().await;
        for line in lines {
            assert!(metrics.contains(line), "{line} not in\n{metrics}");
        }
    }

    /// Ask the server to stop, and wait until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task ends cleanly");
        }
    }
}

/// Send a request; its status and body (parsed as JSON, else as a string).
async fn answer(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// A path inside the repository.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped example environment request (its `input`).
pub fn example_request() -> serde_json::Value {
    let text = std::fs::read_to_string(repo("examples/feature-payments.json")).unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    body["input"].clone()
}

/// `GET /v1/query` for `query`, percent-encoded.
pub fn query_url(query: &str) -> String {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/v1/query?q={encoded}")
}
