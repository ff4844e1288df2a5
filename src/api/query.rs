//! OPA's ad-hoc query API: `POST /v1/query` with `{"query", "input"}` and
//! `GET /v1/query?q=...`, answered with one object of variable bindings per
//! result row (`{}` for a row without variables; no `result` key when
//! nothing matches), on the active snapshot. Parse errors are 400
//! `invalid_parameter` with the position in the query.

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::body::{parse_json, read_limited, RequestBody};
use super::data::{active_snapshot, elapsed_ns};
use super::error::{code, ApiError};
use super::{json_response, AppState, QueryFlags};
use crate::engine::query_vars::query_variables;
use crate::engine::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    query: String,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Debug, Serialize)]
struct QueryTimings {
    timer_rego_query_parse_ns: u64,
    timer_rego_query_eval_ns: u64,
    timer_server_handler_ns: u64,
}

#[derive(Debug, Serialize)]
struct QueryResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    result: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<QueryTimings>,
}

/// The `q` parameter of `GET /v1/query`.
#[derive(Debug, Deserialize)]
pub struct GetParams {
    q: Option<String>,
}

async fn answer(
    state: &AppState,
    query: &str,
    input: Option<Value>,
    flags: QueryFlags,
    started: Instant,
) -> Result<Response, ApiError> {
    if query.trim().is_empty() {
        return Err(ApiError::invalid("the query is empty"));
    }
    let parse_started = Instant::now();
    let variables = query_variables(query).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code::INVALID_PARAMETER,
            format!("cannot parse the query: {}", err.message),
        )
        .with_detail(
            "rego_parse_error",
            err.message.clone(),
            err.location.clone(),
        )
    })?;
    let parse_ns = elapsed_ns(parse_started);
    let snapshot = active_snapshot(state)?;
    // OPA reports every variable the query binds; regorus only those of
    // the query's own scope, so each is also assigned to a fresh name.
    let fresh = |i: usize| format!("__portcullis_binding_{i}");
    let mut augmented = query.to_string();
    for (i, variable) in variables.iter().enumerate() {
        augmented.push_str(&format!("\n{} := {variable}", fresh(i)));
    }
    let eval_started = Instant::now();
    // The caller chooses what a query costs: it runs on the lane, off the
    // workers that answer decisions.
    let rows = super::lane::run(move || snapshot.policies.query(&augmented, input))
        .await?
        .map_err(ApiError::from)?;
    let eval_ns = elapsed_ns(eval_started);
    // As in OPA, a row in which an expression is false is not a result.
    let result = rows
        .result
        .into_iter()
        .filter(|row| {
            !row.expressions
                .iter()
                .any(|e| matches!(e.value, Value::Bool(false)))
        })
        .map(|row| {
            let mut bindings = Value::new_object();
            if let (Ok(out), Value::Object(found)) = (bindings.as_object_mut(), &row.bindings) {
                for (i, variable) in variables.iter().enumerate() {
                    let value = found
                        .get(&Value::from(variable.as_str()))
                        .or_else(|| found.get(&Value::from(fresh(i).as_str())));
                    if let Some(value) = value {
                        out.insert(Value::from(variable.as_str()), value.clone());
                    }
                }
            }
            bindings
        })
        .collect();
    let body = QueryResponse {
        result,
        metrics: flags.metrics.then(|| QueryTimings {
            timer_rego_query_parse_ns: parse_ns,
            timer_rego_query_eval_ns: eval_ns,
            timer_server_handler_ns: elapsed_ns(started),
        }),
    };
    Ok(json_response(StatusCode::OK, &body, flags.pretty))
}

/// `POST /v1/query`.
pub async fn post(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let flags = QueryFlags::parse(raw.as_deref());
    let bytes = read_limited(body, &state.limits).await?;
    let request: QueryRequest = parse_json(&bytes, &state.limits, "query request")?;
    answer(&state, &request.query, request.input, flags, started).await
}

/// `GET /v1/query?q=...`.
pub async fn get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let flags = QueryFlags::parse(raw.as_deref());
    let Query(params) = params.map_err(|err| ApiError::invalid(err.body_text()))?;
    let query = params
        .q
        .ok_or_else(|| ApiError::invalid("missing parameter q (the query)"))?;
    answer(&state, &query, None, flags, started).await
}
