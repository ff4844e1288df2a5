//! One decision as the handlers hand it over (cheap to build: reference
//! counted bytes and values, no JSON work), and its encoding into OPA's
//! decision-log event schema, which happens on the writer thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use std::borrow::Cow;

use axum::body::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::mask::Touched;
use super::text;

use crate::engine::input::InputMember;
use crate::engine::{DataPath, Value};
use crate::pdp::Snapshot;

/// Where the decision's input is, in the form the handler had it.
#[derive(Debug, Clone)]
pub enum LoggedInput {
    /// No input (GET).
    None,
    /// The input's JSON text, which the handler has parsed: the whole
    /// request body (v0 API, `POST /`, admission), or the text of the v1
    /// body's `input` member when the parse located it.
    Body(Bytes),
    /// The input is the `input` member of this request body, which the
    /// handler has parsed (v1 API).
    InputMember(Bytes),
    /// An input already parsed (one batch item).
    Value(Value),
}

/// The decision's result, in the form the handler had it.
#[derive(Debug, Clone)]
pub enum LoggedResult {
    /// A value ([`Value::Undefined`]: no result).
    Value(Value),
    /// Already serialized (the text the v1 response was written with,
    /// handed over once the response no longer needs it).
    Json(Box<RawValue>),
}

/// An event's metrics: a few named values in OPA's names, kept inline so
/// that building an event allocates nothing for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventMetrics {
    entries: [(&'static str, u64); EventMetrics::CAPACITY],
    len: usize,
}

impl EventMetrics {
    /// The most values an event carries (the v1 API's timings).
    pub const CAPACITY: usize = 4;

    /// The metrics `pairs` names, in order; past [`Self::CAPACITY`] the
    /// rest are left out.
    pub fn from_pairs(pairs: &[(&'static str, u64)]) -> EventMetrics {
        let mut metrics = EventMetrics::default();
        for (slot, pair) in metrics.entries.iter_mut().zip(pairs) {
            *slot = *pair;
            metrics.len += 1;
        }
        metrics
    }

    /// The values, in order.
    pub fn as_slice(&self) -> &[(&'static str, u64)] {
        &self.entries[..self.len]
    }
}

impl From<Value> for LoggedResult {
    fn from(value: Value) -> LoggedResult {
        LoggedResult::Value(value)
    }
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
    /// The result.
    pub result: LoggedResult,
    /// An error, when the decision failed (OPA error body).
    pub error: Option<Json>,
    /// The snapshot that decided (its bundles and revisions, and the mask
    /// policy the event is masked with).
    pub snapshot: Arc<Snapshot>,
    /// When the decision was made.
    pub timestamp: SystemTime,
    /// Timings in OPA's names (`timer_rego_query_eval_ns`, ...).
    pub metrics: EventMetrics,
    /// The caller's address.
    pub requested_by: Option<SocketAddr>,
}

impl LoggedInput {
    /// The whole body is the input. The bytes are copied: holding on to
    /// the request's own buffer would keep the connection's read buffer
    /// alive and make it allocate a new one for every request.
    pub fn body(bytes: &[u8]) -> LoggedInput {
        LoggedInput::Body(Bytes::copy_from_slice(bytes))
    }

    /// The input of a v1 body as the handler's parse found it: none, its
    /// own text (copied, as for [`body`]) when the parse located it, or
    /// else the whole body, in which the writer finds it.
    ///
    /// [`body`]: LoggedInput::body
    pub fn input_member(bytes: &[u8], member: &InputMember) -> LoggedInput {
        match (&member.value, &member.text) {
            (None, _) => LoggedInput::None,
            (Some(_), Some(text)) => match bytes.get(text.clone()) {
                Some(text) => LoggedInput::body(text),
                None => LoggedInput::InputMember(Bytes::copy_from_slice(bytes)),
            },
            (Some(_), None) => LoggedInput::InputMember(Bytes::copy_from_slice(bytes)),
        }
    }
}

/// Append JSON text on one line: line breaks in valid JSON text can only
/// be insignificant whitespace (inside strings they are escaped), so they
/// are left out.
fn extend_one_line(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for at in memchr::memchr2_iter(b'\n', b'\r', text) {
        out.extend_from_slice(&text[start..at]);
        start = at + 1;
    }
    out.extend_from_slice(&text[start..]);
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
            result: LoggedResult::Value(Value::Undefined),
            error: None,
            snapshot,
            timestamp: SystemTime::now(),
            metrics: EventMetrics::default(),
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

/// The parts of a line that are the same for every event of a writer and
/// snapshot, already as JSON text.
#[derive(Debug, Clone, Copy)]
pub struct FixedText<'a> {
    /// The labels object.
    pub labels: &'a [u8],
    /// The bundles object ([`bundles_json`]).
    pub bundles: &'a [u8],
}

/// What an event's line says of its input and result, after masking.
#[derive(Debug, Clone, Copy)]
pub struct RawText<'a> {
    /// The input's JSON text.
    pub input: Option<&'a [u8]>,
    /// The result's JSON text, compact (serde_json's, with no line
    /// breaks; the input may have them and is put on one line).
    pub result: Option<&'a [u8]>,
    /// The pointers masking erased and replaced.
    pub touched: &'a Touched,
}

/// A snapshot's bundles and their revisions as the `bundles` object of
/// its events (`{"name": {"revision": "..."}, ...}`).
pub fn bundles_json(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, bundle) in snapshot.bundles.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        text::string(&mut out, &bundle.name);
        out.extend_from_slice(b":{\"revision\":");
        text::string(&mut out, &bundle.revision);
        out.push(b'}');
    }
    out.push(b'}');
    out
}

/// An event's input and result as JSON text, taken from the request bytes
/// without building a tree where possible.
#[derive(Debug)]
pub struct RawParts<'a> {
    /// The input's JSON text.
    pub input: Option<Cow<'a, [u8]>>,
    /// The result's JSON text.
    pub result: Option<Cow<'a, [u8]>>,
}

/// The text of a body its handler has parsed as one JSON value, without
/// the whitespace around it: `None` when there is none or it is not UTF-8
/// (a parse does not check UTF-8 in strings it skips). Nothing else needs
/// checking: the handler's parse did that.
fn trimmed_text(body: &[u8]) -> Option<&[u8]> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let text = &body[start..end];
    std::str::from_utf8(text).is_ok().then_some(text)
}

fn undecodable_bytes(err: serde_json::Error) -> Vec<u8> {
    serde_json::to_vec(&undecodable(err)).unwrap_or_default()
}

impl DecisionEvent {
    /// The input and result as JSON text, taken from the request bytes
    /// (which the handler has parsed): an input's own text is only
    /// trimmed; a whole v1 body, logged when its parse could not locate
    /// the input (escaped keys), gets a validating scan (no tree is built
    /// either way).
    pub fn raw_parts(&self) -> RawParts<'_> {
        #[derive(serde::Deserialize)]
        struct Wrapper<'a> {
            #[serde(borrow)]
            input: Option<&'a RawValue>,
        }
        let input = match &self.input {
            LoggedInput::None => None,
            LoggedInput::Body(bytes) => Some(match trimmed_text(bytes) {
                Some(text) => Cow::Borrowed(text),
                None => match serde_json::from_slice::<&RawValue>(bytes) {
                    Ok(raw) => Cow::Borrowed(raw.get().as_bytes()),
                    Err(err) => Cow::Owned(undecodable_bytes(err)),
                },
            }),
            LoggedInput::InputMember(bytes) => match serde_json::from_slice::<Wrapper>(bytes) {
                Ok(wrapper) => wrapper.input.map(|raw| Cow::Borrowed(raw.get().as_bytes())),
                Err(err) => Some(Cow::Owned(undecodable_bytes(err))),
            },
            LoggedInput::Value(value) => Some(Cow::Owned(
                serde_json::to_vec(value).unwrap_or_else(undecodable_bytes),
            )),
        };
        let result = match &self.result {
            LoggedResult::Json(text) => Some(Cow::Borrowed(text.get().as_bytes())),
            LoggedResult::Value(Value::Undefined) => None,
            LoggedResult::Value(value) => Some(Cow::Owned(
                serde_json::to_vec(value).unwrap_or_else(undecodable_bytes),
            )),
        };
        RawParts { input, result }
    }

    /// The event in OPA's schema as one JSON line: `labels` (already JSON),
    /// `decision_id`, `batch_decision_id`, `bundles` (already JSON, from
    /// [`bundles_json`]), `path`, `input`, `result`, `error`,
    /// `requested_by`, `timestamp`, `metrics`, and the pointers masking
    /// erased and replaced.
    pub fn write_json(&self, fixed: FixedText<'_>, parts: RawText<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"labels\":");
        out.extend_from_slice(fixed.labels);
        out.extend_from_slice(b",\"decision_id\":");
        text::string(out, &self.decision_id);
        if let Some(batch) = &self.batch_decision_id {
            out.extend_from_slice(b",\"batch_decision_id\":");
            text::string(out, batch);
        }
        out.extend_from_slice(b",\"bundles\":");
        out.extend_from_slice(fixed.bundles);
        out.extend_from_slice(b",\"path\":");
        text::joined_string(out, self.path.segments());
        if let Some(input) = parts.input {
            out.extend_from_slice(b",\"input\":");
            extend_one_line(out, input);
        }
        if let Some(result) = parts.result {
            // Results are serde_json's compact text: no line breaks.
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(result);
        }
        if let Some(error) = &self.error {
            out.extend_from_slice(b",\"error\":");
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, error);
        }
        if let Some(addr) = self.requested_by {
            out.extend_from_slice(b",\"requested_by\":");
            text::address(out, addr);
        }
        out.extend_from_slice(b",\"timestamp\":");
        text::timestamp(out, self.timestamp);
        out.extend_from_slice(b",\"metrics\":{");
        for (i, (name, value)) in self.metrics.as_slice().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Metric names are fixed identifiers: nothing to escape.
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            text::integer(out, *value);
        }
        out.push(b'}');
        for (field, pointers) in [
            ("erased", &parts.touched.erased),
            ("masked", &parts.touched.masked),
        ] {
            if !pointers.is_empty() {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(field.as_bytes());
                out.extend_from_slice(b"\":");
                let _ = serde_json::to_writer(&mut *out, pointers);
            }
        }
        out.push(b'}');
    }

    /// The event as the mask policy sees it (OPA passes the whole event):
    /// `decision_id`, `batch_decision_id`, `path`, `input`, `result`,
    /// `error`, `requested_by`, `bundles`.
    pub fn policy_input(&self, parts: &RawParts<'_>) -> Value {
        let parse =
            |bytes: &[u8]| serde_json::from_slice::<Json>(bytes).unwrap_or_else(undecodable);
        let mut event = Map::new();
        event.insert("decision_id".into(), Json::String(self.decision_id.clone()));
        if let Some(batch) = &self.batch_decision_id {
            event.insert("batch_decision_id".into(), Json::String(batch.clone()));
        }
        event.insert("path".into(), Json::String(self.path.segments().join("/")));
        if let Some(input) = &parts.input {
            event.insert("input".into(), parse(input));
        }
        if let Some(result) = &parts.result {
            event.insert("result".into(), parse(result));
        }
        if let Some(error) = &self.error {
            event.insert("error".into(), error.clone());
        }
        if let Some(addr) = self.requested_by {
            event.insert("requested_by".into(), Json::String(addr.to_string()));
        }
        let bundles = self
            .snapshot
            .bundles
            .iter()
            .map(|b| (b.name.clone(), serde_json::json!({"revision": b.revision})))
            .collect();
        event.insert("bundles".into(), Json::Object(bundles));
        Value::from(Json::Object(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_body_is_only_trimmed() {
        assert_eq!(
            trimmed_text(b" \n{\"a\": [1, \"]\"]}\r\n"),
            Some(&br#"{"a": [1, "]"]}"#[..])
        );
        assert_eq!(trimmed_text(b"  42 "), Some(&b"42"[..]));
        assert_eq!(trimmed_text(b"   "), None);
        assert_eq!(trimmed_text(b""), None);
        assert_eq!(trimmed_text(b"\"\xc3\""), None, "not UTF-8");
    }
}
