//! The batch API: `POST /v1/batch/data/{path}` with `{"inputs": {id: input}}`.
//! Every input is evaluated against the same snapshot; one failing input is
//! reported under its id while the others still answer.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::body::{parse_json, read_limited, RequestBody};
use super::data::{active_snapshot, elapsed_ns, Provenance};
use super::decide::decide_before;
use super::error::ApiError;
use super::{json_response, new_decision_id, AppState, QueryFlags, Requester};
use crate::decision_log::{DecisionEvent, LoggedInput};
use crate::engine::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    inputs: BTreeMap<String, Value>,
}

fn is_undefined(value: &Value) -> bool {
    matches!(value, Value::Undefined)
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BatchItem {
    Ok {
        decision_id: String,
        #[serde(skip_serializing_if = "is_undefined")]
        result: Value,
    },
    Err {
        #[serde(flatten)]
        error: serde_json::Value,
        http_status_code: String,
    },
}

#[derive(Debug, Serialize)]
struct BatchResponse<'a> {
    batch_decision_id: String,
    responses: BTreeMap<String, BatchItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<BatchTimings>,
}

#[derive(Debug, Serialize)]
struct BatchTimings {
    timer_rego_input_parse_ns: u64,
    timer_server_handler_ns: u64,
}

/// One batch's inputs and what evaluating them needs, moved onto the lane.
struct Batch {
    state: AppState,
    snapshot: std::sync::Arc<crate::pdp::Snapshot>,
    path: crate::engine::DataPath,
    inputs: BTreeMap<String, Value>,
    deadline: Instant,
    requester: Requester,
    batch_decision_id: String,
}

impl Batch {
    /// Evaluate every input (after the deadline, each fails unevaluated);
    /// whether any failed, and the answers by id.
    async fn evaluate(self) -> (bool, BTreeMap<String, BatchItem>) {
        let Batch {
            state,
            snapshot,
            path,
            inputs,
            deadline,
            requester,
            batch_decision_id,
        } = self;
        let mut any_error = false;
        let mut responses = BTreeMap::new();
        for (id, input) in inputs {
            let logged = state.decision_log.is_some().then(|| input.clone());
            let decision_id = new_decision_id();
            let decided =
                decide_before(&state, &snapshot, &path, Some(input), Some(deadline)).await;
            state
                .log_decision(|| {
                    let (result, error) = match &decided {
                        Ok(answer) => (answer.result.clone(), None),
                        Err(err) => (Value::Undefined, Some(err.body())),
                    };
                    DecisionEvent {
                        batch_decision_id: Some(batch_decision_id.clone()),
                        input: logged.map_or(LoggedInput::None, LoggedInput::Value),
                        result: result.into(),
                        error,
                        requested_by: requester.0,
                        ..DecisionEvent::new(decision_id.clone(), path.clone(), snapshot.clone())
                    }
                })
                .await;
            let item = match decided {
                Ok(answer) => BatchItem::Ok {
                    decision_id,
                    result: answer.result,
                },
                Err(error) => {
                    any_error = true;
                    BatchItem::Err {
                        http_status_code: error.status.as_u16().to_string(),
                        error: error.body(),
                    }
                }
            };
            responses.insert(id, item);
        }
        (any_error, responses)
    }
}

/// `POST /v1/batch/data/{path}`.
pub async fn batch_post(
    State(state): State<AppState>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let flags = QueryFlags::parse(query.as_deref());
    let bytes = read_limited(body, &state.limits).await?;
    let parse_started = Instant::now();
    let request: BatchRequest = parse_json(&bytes, &state.limits, "batch request")?;
    let parse_ns = elapsed_ns(parse_started);
    let max = state.limits.max_batch_inputs;
    if request.inputs.len() > max {
        return Err(ApiError::invalid(format!(
            "batch request has {} inputs; the limit is {max}",
            request.inputs.len()
        )));
    }
    let snapshot = active_snapshot(&state)?;
    let path = super::data_path(&path)?;
    // The whole batch shares one evaluation time budget: inputs evaluated
    // after it is spent fail with the time limit error, unevaluated.
    let deadline = started + snapshot.policies.options().eval_timeout;
    let batch_decision_id = new_decision_id();
    // The caller chooses what a batch costs (up to its time budget): it
    // runs on the lane, off the workers that answer decisions.
    let runtime = tokio::runtime::Handle::current();
    let work = Batch {
        state: state.clone(),
        snapshot: snapshot.clone(),
        path,
        inputs: request.inputs,
        deadline,
        requester,
        batch_decision_id: batch_decision_id.clone(),
    };
    let (any_error, responses) =
        super::lane::run(move || runtime.block_on(work.evaluate())).await?;
    let body = BatchResponse {
        batch_decision_id,
        responses,
        provenance: flags.provenance.then(|| Provenance::of(&snapshot)),
        metrics: flags.metrics.then(|| BatchTimings {
            timer_rego_input_parse_ns: parse_ns,
            timer_server_handler_ns: elapsed_ns(started),
        }),
    };
    let status = if any_error {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &body, flags.pretty))
}
