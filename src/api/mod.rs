//! The HTTP surface: OPA's Data API (v1, v0, `POST /`), the batch API, the
//! policy list, health and status. Handlers only read snapshots; they never
//! take a lock. Every failure goes through [`error::ApiError`].

pub mod admission;
mod batch;
pub mod body;
mod data;
mod decide;
pub mod error;
mod health;
mod lane;
pub mod overload;
mod policies;
mod query;
mod write;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::Router;
use serde::Serialize;

use crate::cache::{CachedDecision, DecisionCache};
use crate::config::Limits;
use crate::decision_log::DecisionEvent;
use crate::engine::DataPath;
use crate::pdp::DecisionPoint;

/// What every handler shares. axum clones it for every request, so it is
/// one reference count: [`AppParts`] behind an `Arc`.
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    /// Share `parts` with every handler.
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct AppParts {
    /// The decision point.
    pub pdp: Arc<DecisionPoint>,
    /// Input limits.
    pub limits: Arc<Limits>,
    /// The document `POST /` evaluates.
    pub default_decision: Arc<DataPath>,
    /// Set once shutdown begins; readiness turns false.
    pub shutting_down: Arc<AtomicBool>,
    /// Remote bundle sources, for the status API.
    pub remotes: Arc<Vec<Arc<crate::source::RemoteSource>>>,
    /// The admission endpoint's settings, when it is enabled.
    pub admission: Option<Arc<admission::AdmissionSettings>>,
    /// The Prometheus collectors.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Cached Data API decisions.
    pub decisions: Arc<DecisionCache<CachedDecision>>,
    /// Cached admission verdicts.
    pub verdicts: Arc<DecisionCache<Arc<admission::Verdict>>>,
    /// The decision log, when enabled.
    pub decision_log: Option<Arc<crate::decision_log::DecisionLogger>>,
    /// Whether `PUT`, `PATCH` and `DELETE /v1/data` are served.
    pub allow_writes: bool,
    /// Readiness waits until something has been pushed.
    pub ready_after_first_push: bool,
}

impl AppParts {
    /// Log a decision, when decision logging is on. `event` is only built
    /// when it is.
    pub(crate) async fn log_decision(&self, event: impl FnOnce() -> DecisionEvent) {
        if let Some(log) = &self.decision_log {
            log.record(event()).await;
        }
    }
}

/// A TLS listener's connection details, recorded once per connection
/// (`into_make_service_with_connect_info::<ClientAddr>()`; plain TCP
/// listeners record axum's `ConnectInfo<SocketAddr>`).
#[derive(Debug, Clone)]
pub struct ClientAddr {
    /// The peer's address.
    pub addr: std::net::SocketAddr,
    /// The common name of the client certificate the handshake verified.
    pub subject: Option<Arc<str>>,
}

type TlsConnections = crate::header_deadline::HeaderDeadline<crate::tls::TlsListener>;

impl Connected<IncomingStream<'_, TlsConnections>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsConnections>) -> Self {
        ClientAddr {
            addr: *stream.remote_addr(),
            subject: crate::tls::client_subject(stream.io().get_ref()),
        }
    }
}

/// The caller's address, when the listener records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requester(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Requester {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        let extensions = &parts.extensions;
        let tcp = extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let tls = || {
            extensions
                .get::<ConnectInfo<ClientAddr>>()
                .map(|c| c.0.addr)
        };
        Ok(Requester(tcp.or_else(tls)))
    }
}

/// The decision API router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(data::default_decision))
        .route(
            "/v1/data",
            get(data::v1_get_root)
                .post(data::v1_post_root)
                .put(write::root)
                .patch(write::root)
                .delete(write::root),
        )
        .route("/v1/data/", get(data::v1_get_root).post(data::v1_post_root))
        .route(
            "/v1/data/{*path}",
            get(data::v1_get)
                .post(data::v1_post)
                .put(write::put)
                .patch(write::patch)
                .delete(write::delete),
        )
        .route("/v0/data", post(data::v0_post_root))
        .route("/v0/data/{*path}", post(data::v0_post))
        .route("/v1/batch/data/{*path}", post(batch::batch_post))
        .route("/v1/query", get(query::get).post(query::post))
        .route("/v1/policies", get(policies::list))
        .route("/v1/policies/", get(policies::list))
        .route(
            "/v1/policies/{*id}",
            get(policies::get_one)
                .put(write::put_policy)
                .delete(write::delete_policy),
        )
        .route("/v1/status", get(health::status))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            observe,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Time every routed request into `portcullis_http_request_duration_seconds`
/// by its route pattern and status, inside one `request` span (DEBUG level:
/// when it is off, nothing is formatted). Handlers add the decision id, the
/// data path and the revision to it ([`record_decision`]); the span closes
/// with the status and the latency in microseconds.
pub async fn observe(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let span = tracing::debug_span!(
        "request",
        method = %request.method(),
        route = route.as_str(),
        path = tracing::field::Empty,
        decision_id = tracing::field::Empty,
        revision = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_us = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    metrics.request_observed(route.as_str(), response.status().as_u16(), elapsed);
    if !span.is_disabled() {
        span.record("status", response.status().as_u16());
        span.record("latency_us", elapsed.as_micros() as u64);
        span.in_scope(|| tracing::debug!("answered"));
    }
    response
}

/// Add a decision's id, path and bundle revisions to the current request
/// span (nothing is formatted when the span is off).
pub(crate) fn record_decision(decision_id: &str, path: &DataPath, snapshot: &crate::pdp::Snapshot) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("decision_id", decision_id);
    span.record("path", path.as_ref_str());
    let revision = snapshot
        .bundles
        .iter()
        .map(|b| format!("{}={}", b.name, b.revision))
        .collect::<Vec<_>>()
        .join(",");
    span.record("revision", revision.as_str());
}

/// `GET /metrics`: the text exposition format.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    state.decisions.record_size().await;
    state.verdicts.record_size().await;
    if let Some(log) = &state.decision_log {
        log.observe_queue();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        StatusCode::NOT_FOUND,
        error::code::RESOURCE_NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error::code::INVALID_PARAMETER,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// The query flags OPA's Data API understands: `?pretty`, `?provenance`,
/// `?metrics`. A bare flag or any value but `false` turns it on.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryFlags {
    /// Indent the response.
    pub pretty: bool,
    /// Add bundle revisions.
    pub provenance: bool,
    /// Add timings.
    pub metrics: bool,
    /// A builtin that fails fails the decision (OPA's parameter); the
    /// decision cache is not used for such a request.
    pub strict_builtin_errors: bool,
}

impl QueryFlags {
    /// Parse a raw query string.
    pub fn parse(query: Option<&str>) -> QueryFlags {
        let mut flags = QueryFlags::default();
        for (key, value) in query_pairs(query) {
            let on = flag_on(value);
            match key {
                "pretty" => flags.pretty = on,
                "provenance" => flags.provenance = on,
                "metrics" => flags.metrics = on,
                "strict-builtin-errors" => flags.strict_builtin_errors = on,
                _ => {}
            }
        }
        flags
    }
}

/// The `key=value` pairs of a raw query string (`value` empty for a bare key).
pub(crate) fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Whether a flag's value turns it on: anything but `false`, bare included.
pub(crate) fn flag_on(value: &str) -> bool {
    !value.eq_ignore_ascii_case("false")
}

/// Serialize `body` as a JSON response.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T, pretty: bool) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(body)
    } else {
        serde_json::to_vec(body)
    };
    match bytes {
        Ok(mut bytes) => {
            if pretty {
                bytes.push(b'\n');
            }
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                "{{\"code\":\"internal_error\",\"message\":{}}}",
                serde_json::Value::String(format!("could not encode the response: {err}"))
            ),
        )
            .into_response(),
    }
}

/// A new decision id (a random UUID).
pub(crate) fn new_decision_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The most segments a data path in a URL may have. Documents are nested
/// far less deeply (a request body at most `limits.max_json_depth`); a
/// longer path is a malformed or hostile request.
pub const MAX_PATH_SEGMENTS: usize = 128;

/// The data path of a request URL, refused with 400 when it has more than
/// [`MAX_PATH_SEGMENTS`] segments.
pub(crate) fn data_path(path: &str) -> Result<DataPath, error::ApiError> {
    let path = DataPath::parse(path);
    if path.segments().len() > MAX_PATH_SEGMENTS {
        return Err(error::ApiError::invalid(format!(
            "the data path has {} segments; at most {MAX_PATH_SEGMENTS} are accepted",
            path.segments().len()
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accept_bare_and_boolean_forms() {
        let flags = QueryFlags::parse(Some("pretty&metrics=true&provenance=false"));
        assert!(flags.pretty && flags.metrics && !flags.provenance);
        assert!(!QueryFlags::parse(None).pretty);
    }
}
