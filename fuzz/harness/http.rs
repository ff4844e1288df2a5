//! The HTTP surface under fuzzing: one request per input, routed in process
//! through the same routers the server binds (Data API, batch, query and
//! the admission endpoint), on the shipped policies and the Gatekeeper
//! fixtures, with the cache off so that every request is evaluated.
//!
//! An input's first byte picks the route; the rest is the request body.
//! Besides not panicking, every answer must be what a client can read: a
//! JSON body, and for an error status OPA's `code` and `message` strings.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use portcullis::api::{self, AppParts, AppState};
use portcullis::cache::DecisionCache;
use portcullis::config::{AdmissionConfig, CacheConfig, Limits};
use portcullis::engine::{DataPath, EngineOptions};
use portcullis::metrics::Metrics;
use portcullis::pdp::DecisionPoint;

/// The routes an input can pick, by its first byte.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/data/provisioning/decision"),
    ("POST", "/v1/data/secrets/access/decision"),
    ("POST", "/v1/data/network/decision"),
    ("POST", "/v1/data/admission/deny"),
    (
        "POST",
        "/v1/data/provisioning/decision?pretty&provenance&metrics",
    ),
    ("POST", "/v0/data/provisioning/decision"),
    ("POST", "/v1/batch/data/provisioning/decision"),
    ("POST", "/v1/batch/data/secrets/access/decision"),
    ("POST", "/"),
    ("POST", "/v1/query"),
    ("POST", "/v1/admit"),
    ("POST", "/v1/data/system/check"),
];

/// The routers and the runtime that drives them.
pub struct HttpHarness {
    runtime: tokio::runtime::Runtime,
    data_api: Router,
    admission: Router,
}

/// What one request got back.
#[derive(Debug)]
pub struct Answer {
    pub method: &'static str,
    pub path: &'static str,
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl HttpHarness {
    /// Load the shipped policies and data and the Gatekeeper fixtures
    /// from the repository at `repo`.
    pub fn new(repo: &Path) -> HttpHarness {
        let bundles = [
            "policies",
            "bundles",
            "tests/fixtures/gatekeeper/bundle",
            "tests/fixtures/gatekeeper/inventory",
        ]
        .map(|rel| repo.join(rel));
        let pdp = DecisionPoint::load(&bundles, EngineOptions::default()).expect("bundles load");
        let metrics = Arc::new(Metrics::new());
        let cache = CacheConfig {
            enabled: false,
            ..CacheConfig::default()
        }
        .settings();
        let admission = AdmissionConfig::default();
        let state = AppState::new(AppParts {
            pdp: Arc::new(pdp),
            limits: Arc::new(Limits::default()),
            default_decision: Arc::new(DataPath::parse("system/main")),
            shutting_down: Arc::new(AtomicBool::new(false)),
            remotes: Arc::new(Vec::new()),
            admission: Some(api::admission::settings(
                &admission.kinds,
                &admission.exempt_namespaces,
            )),
            decisions: Arc::new(DecisionCache::new("data", &cache, Some(metrics.clone()))),
            verdicts: Arc::new(DecisionCache::new(
                "admission",
                &cache,
                Some(metrics.clone()),
            )),
            metrics,
            decision_log: None,
            allow_writes: false,
            ready_after_first_push: false,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        HttpHarness {
            runtime,
            data_api: api::router(state.clone()),
            admission: api::admission::router(state),
        }
    }

    /// Send the request `input` describes and check the answer's shape;
    /// panics (a finding) when it is not what a client can read.
    pub fn run(&self, input: &[u8]) -> Option<Answer> {
        let (&selector, body) = input.split_first()?;
        let (method, path) = ROUTES[usize::from(selector) % ROUTES.len()];
        let answer = self.send(method, path, body.to_vec());
        check_shape(&answer);
        Some(answer)
    }

    /// Send one request and read the whole answer.
    pub fn send(&self, method: &'static str, path: &'static str, body: Vec<u8>) -> Answer {
        let router = if path == "/v1/admit" {
            self.admission.clone()
        } else {
            self.data_api.clone()
        };
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                panic!(
                    "{method} {path} answered {status} with a body that is not JSON ({err}): {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            Answer {
                method,
                path,
                status,
                body,
            }
        })
    }
}

/// An error answer carries OPA's `code` and `message`; nothing answers
/// with a status outside 200, 400, 404, 413 and 500.
fn check_shape(answer: &Answer) {
    let status = answer.status.as_u16();
    assert!(
        matches!(status, 200 | 400 | 404 | 413 | 500),
        "{} {} answered {status}: {}",
        answer.method,
        answer.path,
        answer.body
    );
    if status >= 400 {
        for field in ["code", "message"] {
            assert!(
                answer.body.get(field).is_some_and(|v| v.is_string()),
                "{} {} answered {status} without a string {field}: {}",
                answer.method,
                answer.path,
                answer.body
            );
        }
    }
}
