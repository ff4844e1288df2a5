//! OPA's write APIs. Data: `PUT /v1/data/{path}` (create or replace;
//! `If-None-Match: *` only creates), `PATCH` (JSON Patch: add, remove,
//! replace) and `DELETE`. Each write builds and activates a new snapshot
//! (off the async workers), so a request sees the data before or after a
//! write, never half of it, and the decision cache, keyed on the snapshot
//! generation, never answers from before it. 204 on success, 304 when
//! `If-None-Match: *` finds the path, 404 when a patched or deleted path
//! does not exist; paths owned by a bundle are refused (400). Policies:
//! `PUT /v1/policies/{id}` (Rego text; parse and compile errors are 400 with
//! positions and nothing is activated) and `DELETE`; modules that came from
//! a bundle cannot be changed this way (403).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::{parse_json, read_limited, RequestBody};
use super::error::{code, ApiError};
use super::AppState;
use crate::engine::DataPath;
use crate::pdp::{PushError, PushOutcome};
use crate::pushed::{PatchOp, Pushed, WriteError};

impl From<PushError> for ApiError {
    fn from(err: PushError) -> ApiError {
        match err {
            PushError::Write(WriteError::NoPolicy(id)) => ApiError::new(
                StatusCode::NOT_FOUND,
                code::RESOURCE_NOT_FOUND,
                format!("storage_not_found_error: policy id {id:?}"),
            ),
            PushError::Write(WriteError::NotFound(path)) => ApiError::new(
                StatusCode::NOT_FOUND,
                code::RESOURCE_NOT_FOUND,
                format!("storage_not_found_error: /{path}: document does not exist"),
            ),
            PushError::Write(err) => ApiError::invalid(err.to_string()),
            PushError::NotReady => ApiError::from(crate::pdp::DecideError::NotReady),
            PushError::Load(load) => {
                let mut api = ApiError::invalid(format!("the write was not applied: {load}"));
                for detail in load.errors() {
                    api = api.with_detail("rego_compile_error", detail.message, detail.location);
                }
                api
            }
            PushError::Persist(err) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                format!("the write could not be persisted and was not applied: {err}"),
            ),
        }
    }
}

fn writes_allowed(state: &AppState) -> Result<(), ApiError> {
    if state.allow_writes {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::UNAUTHORIZED,
            "data writes are turned off (data_writes.enabled: false)",
        ))
    }
}

/// Run a write on a blocking thread (it compiles a snapshot).
async fn push(
    state: &AppState,
    change: impl FnOnce(&Pushed, &[crate::pdp::BundleInfo]) -> Result<Option<Pushed>, WriteError>
        + Send
        + 'static,
) -> Result<Response, ApiError> {
    let pdp = state.pdp.clone();
    let outcome = tokio::task::spawn_blocking(move || pdp.push(change))
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_ERROR,
                format!("the write did not finish: {err}"),
            )
        })??;
    Ok(match outcome {
        PushOutcome::Applied => StatusCode::NO_CONTENT.into_response(),
        PushOutcome::NotModified => StatusCode::NOT_MODIFIED.into_response(),
    })
}

/// `PUT /v1/data/{path}`.
pub async fn put(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: RequestBody,
) -> Result<Response, ApiError> {
    writes_allowed(&state)?;
    let segments = super::data_path(&path)?.segments().to_vec();
    let bytes = read_limited(body, &state.limits).await?;
    let value: serde_json::Value = parse_json(&bytes, &state.limits, "document")?;
    let create_only = headers
        .get(axum::http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    push(&state, move |pushed, bundles| {
        Pushed::check_writable(&segments, bundles)?;
        if create_only && pushed.get(&segments).is_some() {
            return Ok(None);
        }
        pushed.put(&segments, value).map(Some)
    })
    .await
}

/// `PATCH /v1/data/{path}`.
pub async fn patch(
    State(state): State<AppState>,
    Path(path): Path<String>,
    body: RequestBody,
) -> Result<Response, ApiError> {
    writes_allowed(&state)?;
    let segments = super::data_path(&path)?.segments().to_vec();
    let bytes = read_limited(body, &state.limits).await?;
    let ops: Vec<PatchOp> = parse_json(&bytes, &state.limits, "JSON Patch")?;
    push(&state, move |pushed, bundles| {
        Pushed::check_writable(&segments, bundles)?;
        pushed.patch(&segments, &ops).map(Some)
    })
    .await
}

/// `DELETE /v1/data/{path}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    writes_allowed(&state)?;
    let segments = super::data_path(&path)?.segments().to_vec();
    push(&state, move |pushed, bundles| {
        Pushed::check_writable(&segments, bundles)?;
        pushed.delete(&segments).map(Some)
    })
    .await
}

/// `PUT`, `PATCH` or `DELETE /v1/data` (the root): refused.
pub async fn root() -> ApiError {
    ApiError::invalid(WriteError::Root.to_string())
}

/// The package path a module declares, or its parse error (400 with the
/// position).
fn package_of(id: &str, source: &str) -> Result<Vec<String>, ApiError> {
    let unparsable = |detail: crate::engine::PolicyError| {
        ApiError::invalid(format!("the policy does not parse: {}", detail.message)).with_detail(
            "rego_parse_error",
            detail.message.clone(),
            detail.location,
        )
    };
    crate::engine::nesting::check(source, id).map_err(unparsable)?;
    let mut engine = regorus::Engine::new();
    engine.set_policy_length_config(crate::engine::policy_length());
    let package = engine
        .add_policy(id.to_string(), source.to_string())
        .map_err(|err| unparsable(crate::engine::PolicyError::from_regorus_in(&err, id)))?;
    Ok(DataPath::from_dotted(&package).segments().to_vec())
}

/// Refuse to touch a module that came from a bundle.
fn not_a_bundle_module(state: &AppState, id: &str) -> Result<(), ApiError> {
    let snapshot = super::data::active_snapshot(state)?;
    match snapshot
        .policies
        .modules()
        .iter()
        .find(|m| m.id == id && m.bundle != crate::pushed::PUSHED_BUNDLE)
    {
        Some(module) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::UNAUTHORIZED,
            WriteError::BundlePolicy(id.to_string(), module.bundle.clone()).to_string(),
        )),
        None => Ok(()),
    }
}

fn empty_ok(response: Response) -> Response {
    if response.status() == StatusCode::NO_CONTENT {
        super::json_response(StatusCode::OK, &serde_json::json!({}), false)
    } else {
        response
    }
}

/// `PUT /v1/policies/{id}`: the body is the module's Rego text. Compile
/// errors answer 400 with their positions and nothing is activated.
pub async fn put_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: RequestBody,
) -> Result<Response, ApiError> {
    writes_allowed(&state)?;
    not_a_bundle_module(&state, &id)?;
    let bytes = read_limited(body, &state.limits).await?;
    let source = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid("the policy is not UTF-8 text"))?;
    let package = package_of(&id, &source)?;
    push(&state, move |pushed, bundles| {
        Pushed::check_writable(&package, bundles)?;
        Ok(Some(pushed.put_policy(&id, source, package)))
    })
    .await
    .map(empty_ok)
}

/// `DELETE /v1/policies/{id}`.
pub async fn delete_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    writes_allowed(&state)?;
    not_a_bundle_module(&state, &id)?;
    push(&state, move |pushed, _| pushed.delete_policy(&id).map(Some))
        .await
        .map(empty_ok)
}
