//! One decision as the handlers hand it over (cheap to build: reference
//! counted bytes and values, no JSON work), and its encoding into OPA's
//! decision-log event schema, which happens on the writer thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use serde_json::{Map, Value as Json};

use crate::engine::{DataPath, Value};
use crate::pdp::Snapshot;

/// Where the decision's input is, in the form the handler had it.
#[derive(Debug, Clone)]
pub enum LoggedInput {
    /// No input (GET).
    None,
    /// The whole request body is the input (v0 API, `POST /`, admission).
    Body(Bytes),
    /// The input is the `input` member of the request body (v1 API).
    InputMember(Bytes),
    /// An input already parsed (one batch item).
    Value(Value),
}

/// A decision to be logged.
#[derive(Debug, Clone)]
pub struct DecisionEvent {
    /// The decision id the caller got.
    pub decision_id: String,
    /// The batch this decision was part of.
    pub batch_decision_id: Option<String>,
    /// The document evaluated.
    pub path: DataPath,
    /// The input.
    pub input: LoggedInput,
    /// The result ([`Value::Undefined`]: no result).
    pub result: Value,
    /// An error, when the decision failed (OPA error body).
    pub error: Option<Json>,
    /// The snapshot that decided (its bundles and revisions, and the mask
    /// policy the event is masked with).
    pub snapshot: Arc<Snapshot>,
    /// When the decision was made.
    pub timestamp: SystemTime,
    /// Timings in OPA's names (`timer_rego_query_eval_ns`, ...).
    pub metrics: Vec<(&'static str, u64)>,
    /// The caller's address.
    pub requested_by: Option<SocketAddr>,
}

impl DecisionEvent {
    /// An event for `decision_id` at `path` decided by `snapshot`, made
    /// now, with no input, result or metrics yet.
    pub fn new(decision_id: String, path: DataPath, snapshot: Arc<Snapshot>) -> DecisionEvent {
        DecisionEvent {
            decision_id,
            batch_decision_id: None,
            path,
            input: LoggedInput::None,
            result: Value::Undefined,
            error: None,
            snapshot,
            timestamp: SystemTime::now(),
            metrics: Vec::new(),
            requested_by: None,
        }
    }
}

/// Why an event's input could not be decoded for the log. The decision was
/// already answered; the event is written with the input replaced by this
/// error rather than lost.
fn undecodable(err: serde_json::Error) -> Json {
    let mut map = Map::new();
    map.insert(
        "portcullis_log_error".into(),
        Json::String(format!("input not decodable: {err}")),
    );
    Json::Object(map)
}

fn input_json(input: &LoggedInput) -> Option<Json> {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        input: Option<Json>,
    }
    match input {
        LoggedInput::None => None,
        LoggedInput::Body(bytes) => Some(serde_json::from_slice(bytes).unwrap_or_else(undecodable)),
        LoggedInput::InputMember(bytes) => match serde_json::from_slice::<Wrapper>(bytes) {
            Ok(wrapper) => wrapper.input,
            Err(err) => Some(undecodable(err)),
        },
        LoggedInput::Value(value) => {
            Some(serde_json::to_value(value).unwrap_or_else(undecodable))
        }
    }
}

impl DecisionEvent {
    /// The event in OPA's schema, before masking: `labels`, `decision_id`,
    /// `bundles`, `path` (slash-separated), `input`, `result`, `error`,
    /// `requested_by`, `timestamp`, `metrics`.
    pub fn to_json(&self, labels: &Map<String, Json>) -> Map<String, Json> {
        let mut event = Map::new();
        event.insert("labels".into(), Json::Object(labels.clone()));
        event.insert("decision_id".into(), Json::String(self.decision_id.clone()));
        if let Some(batch) = &self.batch_decision_id {
            event.insert("batch_decision_id".into(), Json::String(batch.clone()));
        }
        let bundles = self
            .snapshot
            .bundles
            .iter()
            .map(|b| {
                let mut revision = Map::new();
                revision.insert("revision".into(), Json::String(b.revision.clone()));
                (b.name.clone(), Json::Object(revision))
            })
            .collect();
        event.insert("bundles".into(), Json::Object(bundles));
        event.insert("path".into(), Json::String(self.path.segments().join("/")));
        if let Some(input) = input_json(&self.input) {
            event.insert("input".into(), input);
        }
        if !matches!(self.result, Value::Undefined) {
            let result = serde_json::to_value(&self.result).unwrap_or_else(undecodable);
            event.insert("result".into(), result);
        }
        if let Some(error) = &self.error {
            event.insert("error".into(), error.clone());
        }
        if let Some(addr) = self.requested_by {
            event.insert("requested_by".into(), Json::String(addr.to_string()));
        }
        event.insert(
            "timestamp".into(),
            Json::String(humantime::format_rfc3339_nanos(self.timestamp).to_string()),
        );
        let metrics = self
            .metrics
            .iter()
            .map(|(name, value)| ((*name).to_string(), Json::from(*value)))
            .collect();
        event.insert("metrics".into(), Json::Object(metrics));
        event
    }
}
