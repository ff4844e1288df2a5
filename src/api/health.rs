//! Health and status: `/health` (policies active), `/health/live` (process
//! up), `/health/ready` (active and not shutting down) and `/v1/status`
//! (which revisions serve, since when, and the last failed load).

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use super::{flag_on, json_response, query_pairs, AppState};
use crate::engine::DataPath;
use crate::pdp::Snapshot;
use crate::source::RemoteStatus;
use std::sync::Arc;

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[derive(Debug, Serialize)]
struct HealthBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

fn health_answer(ok: bool, error: &'static str) -> Response {
    if ok {
        json_response(StatusCode::OK, &HealthBody { error: None }, false)
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &HealthBody { error: Some(error) },
            false,
        )
    }
}

/// `GET /health`: 200 once a snapshot is active.
///
/// `?bundles` also requires that the latest load attempt succeeded (no
/// failed reload since the active snapshot, no failing remote bundle), and
/// `?bundles&max_age_seconds=N` that the active snapshot is at most N
/// seconds old.
pub async fn health(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let mut strict = false;
    let mut max_age = None;
    for (key, value) in query_pairs(query.as_deref()) {
        match key {
            "bundles" => strict = flag_on(value),
            "max_age_seconds" => match value.parse::<u64>() {
                Ok(seconds) => max_age = Some(seconds),
                Err(_) => {
                    return ApiError::invalid(format!(
                        "max_age_seconds must be a whole number of seconds, not {value:?}"
                    ))
                    .into_response()
                }
            },
            _ => {}
        }
    }
    let Some(snapshot) = state.pdp.snapshot() else {
        return health_answer(false, "no policy bundle is active yet");
    };
    if !strict {
        return health_answer(true, "");
    }
    let failed_since = state
        .pdp
        .last_failure()
        .is_some_and(|f| f.at > snapshot.activated_at);
    if failed_since {
        return health_answer(false, "the latest bundle load failed");
    }
    if state
        .remotes
        .iter()
        .any(|r| r.status().last_error.is_some())
    {
        return health_answer(false, "a remote bundle is failing");
    }
    let too_old = max_age.is_some_and(|max| {
        snapshot
            .activated_at
            .elapsed()
            .is_ok_and(|age| age.as_secs() > max)
    });
    health_answer(
        !too_old,
        "the active bundles are older than max_age_seconds",
    )
}

/// `GET /health/live`: 200 while the process serves HTTP.
pub async fn live() -> Response {
    health_answer(true, "")
}

/// `GET /health/ready`: 200 when a snapshot is active and shutdown has not begun.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.shutting_down.load(Ordering::Relaxed) {
        return health_answer(false, "shutting down");
    }
    if state.pdp.snapshot().is_none() {
        return health_answer(false, "no policy bundle is active yet");
    }
    let pushed = state.pdp.pushed();
    let waiting =
        state.ready_after_first_push && pushed.roots.is_empty() && pushed.policies.is_empty();
    health_answer(
        !waiting,
        "waiting for the first data push (data_writes.ready_after_first_push)",
    )
}

#[derive(Debug, Serialize)]
struct StatusBody {
    ready: bool,
    generation: Option<u64>,
    activated_at: Option<String>,
    load_duration_ms: Option<u64>,
    bundles: Vec<BundleStatus>,
    remote_bundles: Vec<Arc<RemoteStatus>>,
    last_failure: Option<FailureStatus>,
    cache: CacheStatusBody,
}

/// The decision cache: on or off, and for every entry point whether its
/// decisions are cached, on which input paths, or why not.
#[derive(Debug, Serialize)]
struct CacheStatusBody {
    enabled: bool,
    entry_points: Vec<EntryPointCache>,
}

#[derive(Debug, Serialize)]
struct EntryPointCache {
    path: String,
    cacheable: bool,
    /// The input paths the key is computed from; `null`: the whole input.
    #[serde(skip_serializing_if = "Option::is_none")]
    input_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn cache_status(state: &AppState, snapshot: Option<&Arc<Snapshot>>) -> CacheStatusBody {
    let entry_points = snapshot
        .map(|s| s.policies.entry_point_reads())
        .unwrap_or_default()
        .into_iter()
        .map(|(path, reads)| {
            let reason = state
                .decisions
                .refusal(&DataPath::from_dotted(&path), &reads);
            EntryPointCache {
                cacheable: reason.is_none(),
                input_paths: reads
                    .input
                    .minimal()
                    .map(|paths| paths.iter().map(|p| p.join(".")).collect()),
                path,
                reason,
            }
        })
        .collect();
    CacheStatusBody {
        enabled: state.decisions.enabled(),
        entry_points,
    }
}

#[derive(Debug, Serialize)]
struct BundleStatus {
    name: String,
    revision: String,
    roots: Vec<String>,
    location: String,
}

#[derive(Debug, Serialize)]
struct FailureStatus {
    at: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct Envelope<T> {
    result: T,
}

/// `GET /v1/status`.
pub async fn status(State(state): State<AppState>) -> Response {
    let snapshot = state.pdp.snapshot();
    let body = StatusBody {
        ready: snapshot.is_some() && !state.shutting_down.load(Ordering::Relaxed),
        generation: snapshot.as_ref().map(|s| s.generation),
        activated_at: snapshot.as_ref().map(|s| rfc3339(s.activated_at)),
        load_duration_ms: snapshot
            .as_ref()
            .map(|s| s.load_duration.as_millis() as u64),
        bundles: snapshot
            .iter()
            .flat_map(|s| s.bundles.iter())
            .map(|b| BundleStatus {
                name: b.name.clone(),
                revision: b.revision.clone(),
                roots: b.roots.clone(),
                location: b.location.clone(),
            })
            .collect(),
        remote_bundles: state.remotes.iter().map(|r| r.status()).collect(),
        last_failure: state.pdp.last_failure().map(|f| FailureStatus {
            at: rfc3339(f.at),
            message: f.message.clone(),
        }),
        cache: cache_status(&state, snapshot.as_ref()),
    };
    json_response(StatusCode::OK, &Envelope { result: body }, false)
}
