//! The read side of OPA's policy API: `GET /v1/policies` and
//! `GET /v1/policies/{id}`, each module with the revision it came from.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::data::active_snapshot;
use super::error::{code, ApiError};
use super::{json_response, AppState, QueryFlags};
use crate::engine::ModuleInfo;
use crate::pdp::Snapshot;

#[derive(Debug, Serialize)]
struct PolicyEntry<'a> {
    id: &'a str,
    raw: &'a str,
    package: &'a str,
    bundle: &'a str,
    revision: &'a str,
}

#[derive(Debug, Serialize)]
struct Envelope<T> {
    result: T,
}

fn entry<'a>(snapshot: &'a Snapshot, module: &'a ModuleInfo) -> PolicyEntry<'a> {
    let revision = snapshot
        .bundles
        .iter()
        .find(|b| b.name == module.bundle)
        .map(|b| b.revision.as_str())
        .unwrap_or("");
    PolicyEntry {
        id: &module.id,
        raw: &module.raw,
        package: &module.package,
        bundle: &module.bundle,
        revision,
    }
}

/// `GET /v1/policies`.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let flags = QueryFlags::parse(query.as_deref());
    let snapshot = active_snapshot(&state)?;
    let result: Vec<_> = snapshot
        .policies
        .modules()
        .iter()
        .map(|m| entry(&snapshot, m))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &Envelope { result },
        flags.pretty,
    ))
}

/// `GET /v1/policies/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let flags = QueryFlags::parse(query.as_deref());
    let snapshot = active_snapshot(&state)?;
    let module = snapshot
        .policies
        .modules()
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                code::RESOURCE_NOT_FOUND,
                format!("storage_not_found_error: policy id {id:?}"),
            )
        })?;
    Ok(json_response(
        StatusCode::OK,
        &Envelope {
            result: entry(&snapshot, module),
        },
        flags.pretty,
    ))
}
