//! OPA's Data API: `GET`/`POST /v1/data/{path}`, `POST /v0/data/{path}` and
//! `POST /` (the default decision).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;

use super::body::{check_depth, malformed, parse_json, read_limited, RequestBody};
use super::decide::decide;
use super::error::ApiError;
use super::{json_response, new_decision_id, AppState, QueryFlags, Requester};
use crate::cache::CacheStatus;
use crate::decision_log::{DecisionEvent, EventMetrics, LoggedInput, LoggedResult};
use crate::engine::input::{read_input_member, InputMember};
use crate::engine::{DataPath, Value};
use crate::pdp::{DecideError, Snapshot};

/// OPA's warning for a v1 body without `input`.
#[derive(Debug, Serialize)]
struct Warning {
    code: &'static str,
    message: &'static str,
}

const MISSING_INPUT: Warning = Warning {
    code: "api_usage_warning",
    message: "'input' key missing from the request",
};

/// OPA's timing names for `?metrics`.
#[derive(Debug, Serialize, Clone, Copy, Default)]
pub(super) struct Timings {
    pub timer_rego_input_parse_ns: u64,
    pub timer_rego_query_eval_ns: u64,
    pub timer_server_handler_ns: u64,
    /// 1 when the decision cache answered (no evaluation ran), else 0.
    pub counter_decision_cache_hit: u64,
}

impl Timings {
    /// The timings as decision-log metrics.
    pub(super) fn pairs(&self) -> EventMetrics {
        EventMetrics::from_pairs(&[
            ("timer_rego_input_parse_ns", self.timer_rego_input_parse_ns),
            ("timer_rego_query_eval_ns", self.timer_rego_query_eval_ns),
            ("timer_server_handler_ns", self.timer_server_handler_ns),
            (
                "counter_decision_cache_hit",
                self.counter_decision_cache_hit,
            ),
        ])
    }
}

/// `?provenance`: the server version and each bundle's revision.
#[derive(Debug, Serialize)]
pub(super) struct Provenance<'a> {
    version: &'static str,
    bundles: std::collections::BTreeMap<&'a str, BundleRevision<'a>>,
}

#[derive(Debug, Serialize)]
struct BundleRevision<'a> {
    revision: &'a str,
}

impl<'a> Provenance<'a> {
    pub(super) fn of(snapshot: &'a Snapshot) -> Provenance<'a> {
        Provenance {
            version: env!("CARGO_PKG_VERSION"),
            bundles: snapshot
                .bundles
                .iter()
                .map(|b| {
                    (
                        b.name.as_str(),
                        BundleRevision {
                            revision: b.revision.as_str(),
                        },
                    )
                })
                .collect(),
        }
    }
}

fn is_undefined(value: &&Value) -> bool {
    matches!(value, Value::Undefined)
}

/// The v1 response body.
#[derive(Debug, Serialize)]
pub(super) struct V1Response<'a> {
    decision_id: &'a str,
    #[serde(skip_serializing_if = "is_undefined")]
    result: &'a Value,
    /// The result already serialized (shared with the decision log); when
    /// set, `result` is undefined and this is written in its place.
    #[serde(rename = "result", skip_serializing_if = "Option::is_none")]
    result_json: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Timings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<Warning>,
}

impl<'a> V1Response<'a> {
    pub(super) fn new(
        decision_id: &'a str,
        result: &'a Value,
        flags: QueryFlags,
        timings: Timings,
        snapshot: &'a Snapshot,
    ) -> Self {
        V1Response {
            decision_id,
            result,
            result_json: None,
            metrics: flags.metrics.then_some(timings),
            provenance: flags.provenance.then(|| Provenance::of(snapshot)),
            warning: None,
        }
    }
}

pub(super) fn active_snapshot(state: &AppState) -> Result<Arc<Snapshot>, ApiError> {
    state
        .pdp
        .snapshot()
        .ok_or_else(|| ApiError::from(DecideError::NotReady))
}

pub(super) fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One v1 question: the input, and how to answer it.
struct V1Ask {
    input: Option<Value>,
    /// The body had no `input` key: answer with OPA's usage warning.
    warn_missing_input: bool,
    flags: QueryFlags,
    started: Instant,
    parse_ns: u64,
    /// The input as the decision log records it.
    logged: LoggedInput,
    requester: Requester,
}

impl V1Ask {
    /// A question without input (GET).
    fn without_input(flags: QueryFlags, requester: Requester) -> V1Ask {
        V1Ask {
            input: None,
            warn_missing_input: false,
            flags,
            started: Instant::now(),
            parse_ns: 0,
            logged: LoggedInput::None,
            requester,
        }
    }
}

/// Evaluate and answer in v1 form.
async fn answer_v1(
    state: &AppState,
    snapshot: Arc<Snapshot>,
    path: &DataPath,
    ask: V1Ask,
) -> Result<Response, ApiError> {
    let V1Ask {
        input,
        warn_missing_input,
        flags,
        started,
        parse_ns,
        logged,
        requester,
    } = ask;
    let decided = if flags.strict_builtin_errors {
        super::decide::decide_strict(state, &snapshot, path, input).await
    } else {
        decide(state, &snapshot, path, input).await
    };
    let decision_id = new_decision_id();
    super::record_decision(&decision_id, path, &snapshot);
    let answer = match decided {
        Ok(answer) => answer,
        Err(err) => {
            state
                .log_decision(|| DecisionEvent {
                    input: logged,
                    error: Some(err.body()),
                    requested_by: requester.0,
                    ..DecisionEvent::new(decision_id, path.clone(), snapshot.clone())
                })
                .await;
            return Err(err);
        }
    };
    let timings = Timings {
        timer_rego_input_parse_ns: parse_ns,
        timer_rego_query_eval_ns: answer.eval_ns,
        timer_server_handler_ns: elapsed_ns(started),
        counter_decision_cache_hit: u64::from(answer.cache == CacheStatus::Hit),
    };
    // With decision logging on, the result is serialized once, for the
    // response and then the log: the response is written first, so that
    // its text and the decision id move into the event uncopied.
    let shared_result = state
        .decision_log
        .as_ref()
        .filter(|_| !flags.pretty && !matches!(answer.result, Value::Undefined))
        .and_then(|_| serde_json::value::to_raw_value(&answer.result).ok());
    let mut body = match &shared_result {
        Some(raw) => V1Response {
            result_json: Some(raw),
            ..V1Response::new(&decision_id, &Value::Undefined, flags, timings, &snapshot)
        },
        None => V1Response::new(&decision_id, &answer.result, flags, timings, &snapshot),
    };
    if warn_missing_input {
        body.warning = Some(MISSING_INPUT);
    }
    let response = json_response(StatusCode::OK, &body, flags.pretty);
    state
        .log_decision(|| DecisionEvent {
            input: logged,
            result: match shared_result {
                Some(raw) => LoggedResult::Json(raw),
                None => answer.result.clone().into(),
            },
            metrics: timings.pairs(),
            requested_by: requester.0,
            ..DecisionEvent::new(decision_id, path.clone(), snapshot.clone())
        })
        .await;
    Ok(response)
}

async fn v1_post_inner(
    state: AppState,
    path: &str,
    query: Option<String>,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let flags = QueryFlags::parse(query.as_deref());
    let bytes = read_limited(body, &state.limits).await?;
    // One snapshot for the whole request: it says which parts of the input
    // its policies read, and only those are converted.
    let snapshot = active_snapshot(&state)?;
    let path = super::data_path(path)?;
    let parse_started = Instant::now();
    let member = if bytes.iter().all(u8::is_ascii_whitespace) {
        InputMember {
            value: None,
            text: None,
        }
    } else {
        check_depth(&bytes, state.limits.max_json_depth)?;
        let tree = snapshot.policies.read_tree_of(&path);
        read_input_member(&bytes, &tree).map_err(|err| malformed(&err, "input document"))?
    };
    let parse_ns = elapsed_ns(parse_started);
    let logged = if state.decision_log.is_some() {
        LoggedInput::input_member(&bytes, &member)
    } else {
        LoggedInput::None
    };
    let ask = V1Ask {
        warn_missing_input: member.value.is_none(),
        input: member.value,
        flags,
        started,
        parse_ns,
        logged,
        requester,
    };
    answer_v1(&state, snapshot, &path, ask).await
}

/// `POST /v1/data/{path}`.
pub async fn v1_post(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    v1_post_inner(state, &path, query, requester, body).await
}

/// `POST /v1/data`: the whole data document.
pub async fn v1_post_root(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    v1_post_inner(state, "", query, requester, body).await
}

/// `GET /v1/data/{path}`: evaluated with no input.
pub async fn v1_get(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    requester: Requester,
) -> Result<Response, ApiError> {
    let flags = QueryFlags::parse(query.as_deref());
    let snapshot = active_snapshot(&state)?;
    let path = super::data_path(&path)?;
    let ask = V1Ask::without_input(flags, requester);
    answer_v1(&state, snapshot, &path, ask).await
}

/// `GET /v1/data`.
pub async fn v1_get_root(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    requester: Requester,
) -> Result<Response, ApiError> {
    let flags = QueryFlags::parse(query.as_deref());
    let snapshot = active_snapshot(&state)?;
    let path = DataPath::parse("");
    let ask = V1Ask::without_input(flags, requester);
    answer_v1(&state, snapshot, &path, ask).await
}

/// Evaluate with the raw body as input and answer the raw value (v0 form).
async fn answer_raw(
    state: &AppState,
    path: &DataPath,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let bytes = read_limited(body, &state.limits).await?;
    let input = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_json::<Value>(
            &bytes,
            &state.limits,
            "input document",
        )?)
    };
    let snapshot = active_snapshot(state)?;
    let decided = decide(state, &snapshot, path, input).await;
    state
        .log_decision(|| {
            let event = DecisionEvent::new(new_decision_id(), path.clone(), snapshot.clone());
            let (result, error, metrics) = match &decided {
                Ok(answer) => {
                    let timings = Timings {
                        timer_rego_query_eval_ns: answer.eval_ns,
                        timer_server_handler_ns: elapsed_ns(started),
                        counter_decision_cache_hit: u64::from(answer.cache == CacheStatus::Hit),
                        ..Timings::default()
                    };
                    (answer.result.clone(), None, timings.pairs())
                }
                Err(err) => (Value::Undefined, Some(err.body()), EventMetrics::default()),
            };
            DecisionEvent {
                input: LoggedInput::body(&bytes),
                result: result.into(),
                error,
                metrics,
                requested_by: requester.0,
                ..event
            }
        })
        .await;
    let answer = decided?;
    if matches!(answer.result, Value::Undefined) {
        return Err(ApiError::undefined_document(path.as_ref_str()));
    }
    Ok(json_response(StatusCode::OK, &answer.result, false))
}

/// `POST /v0/data/{path}`.
pub async fn v0_post(
    State(state): State<AppState>,
    Path(path): Path<String>,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    answer_raw(&state, &super::data_path(&path)?, requester, body).await
}

/// `POST /v0/data`.
pub async fn v0_post_root(
    State(state): State<AppState>,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    answer_raw(&state, &DataPath::parse(""), requester, body).await
}

/// `POST /`: the configured default decision.
pub async fn default_decision(
    State(state): State<AppState>,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let path = state.default_decision.clone();
    answer_raw(&state, &path, requester, body).await
}
