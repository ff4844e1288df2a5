//! Evaluation through the decision cache: the one place the Data API, the
//! v0 API and the batch API evaluate, so all of them use the cache alike.

use std::sync::Arc;

use super::error::ApiError;
use super::AppState;
use crate::cache::{CacheStatus, CachedDecision};
use crate::engine::{DataPath, Value};
use crate::metrics::Outcome;
use crate::pdp::{self, Snapshot};

/// A decision as the handlers report it.
#[derive(Debug)]
pub(super) struct Answer {
    /// The result ([`Value::Undefined`] when undefined).
    pub result: Value,
    /// Evaluation time; 0 when the answer came from the cache.
    pub eval_ns: u64,
    /// Whether the cache answered.
    pub cache: CacheStatus,
}

/// Evaluate `path` with `input` against `snapshot`, or take the answer the
/// cache holds for exactly this revision, path and read input.
pub(super) async fn decide(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
) -> Result<Answer, ApiError> {
    decide_before(state, snapshot, path, input, None).await
}

/// [`decide`] with strict builtin errors (the request's
/// `strict-builtin-errors`): evaluated, never from or into the cache, whose
/// answers are the engine's default mode's.
pub(super) async fn decide_strict(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
) -> Result<Answer, ApiError> {
    let decided = pdp::decide_with(snapshot.clone(), path, input, None, true);
    let label = metric_label(snapshot, path);
    state
        .metrics
        .decision(label, outcome_of(decided.as_ref().map(|d| &d.result)));
    let decision = decided.map_err(ApiError::from)?;
    state
        .metrics
        .evaluated(label, std::time::Duration::from_nanos(decision.eval_ns));
    Ok(Answer {
        result: decision.result,
        eval_ns: decision.eval_ns,
        cache: CacheStatus::Bypass,
    })
}

/// [`decide`] within a request's time budget ending at `deadline`.
pub(super) async fn decide_before(
    state: &AppState,
    snapshot: &Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
    deadline: Option<std::time::Instant>,
) -> Result<Answer, ApiError> {
    let reads = snapshot.policies.reads_of(path);
    let key = state
        .decisions
        .key(snapshot.generation, path, &reads, input.as_ref());
    let evaluate = || {
        pdp::decide_before(snapshot.clone(), path, input, deadline)
            .map(|d| CachedDecision {
                result: d.result,
                eval_ns: d.eval_ns,
            })
            .map_err(ApiError::from)
    };
    let label = metric_label(snapshot, path);
    let answered = state.decisions.get_or_compute(key, evaluate).await;
    state.metrics.decision(
        label,
        outcome_of(answered.as_ref().map(|(cached, _)| &cached.result)),
    );
    if let Ok((cached, status)) = &answered {
        if *status != CacheStatus::Hit {
            state
                .metrics
                .evaluated(label, std::time::Duration::from_nanos(cached.eval_ns));
        }
    }
    let (cached, cache) = answered.map_err(|err| (*err).clone())?;
    Ok(Answer {
        eval_ns: if cache == CacheStatus::Hit {
            0
        } else {
            cached.eval_ns
        },
        result: cached.result,
        cache,
    })
}

/// The metric label of a decision at `path`: the rule, or `other` (a bounded
/// set: only paths that name a rule).
fn metric_label<'a>(snapshot: &Snapshot, path: &'a DataPath) -> &'a str {
    if snapshot.policies.has_rule(path.as_ref_str()) {
        path.as_ref_str()
    } else {
        "other"
    }
}

/// Whether a decision was defined, undefined or failed.
fn outcome_of<E>(result: Result<&Value, E>) -> Outcome {
    match result {
        Ok(Value::Undefined) => Outcome::Undefined,
        Ok(_) => Outcome::Defined,
        Err(_) => Outcome::Error,
    }
}
