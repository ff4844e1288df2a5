//! Decision logs: one event per decision in OPA's event schema, masked
//! before anything is written, and written by a dedicated thread so that
//! handlers never wait for a sink.
//!
//! Handlers hand a [`DecisionEvent`] (reference-counted bytes and values,
//! no JSON work) to [`DecisionLogger::record`], which puts it in a bounded
//! queue. When the queue is full the event is dropped and counted, or, in
//! never-drop mode, the handler waits for room: latency then follows the
//! sink, which is the price of a complete record. The writer thread
//! encodes, masks and writes; a failed write is retried with backoff.

pub mod event;
pub mod mask;
pub mod sink;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, oneshot};

pub use event::{DecisionEvent, LoggedInput};
use mask::{MaskAction, MaskError, MaskRule, Touched};
use sink::{FileSink, HttpSink, Sink, SinkError};

use crate::config::{DecisionLogConfig, DecisionLogSink};
use crate::engine::{DataPath, Value};
use crate::metrics::DecisionLogMetrics;

/// Why the decision log could not start.
#[derive(Debug, thiserror::Error)]
pub enum DecisionLogError {
    /// A configured mask is invalid.
    #[error(transparent)]
    Mask(#[from] MaskError),
    /// The sink could not be set up.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The writer thread could not be started.
    #[error("cannot start the decision-log writer: {0}")]
    Thread(#[source] std::io::Error),
}

enum Message {
    Event(Box<DecisionEvent>),
    /// Write everything queued, then stop and answer.
    Shutdown(oneshot::Sender<()>),
}

/// What masks an event: configured pointers, the mask policy, and the
/// built-in rule for Kubernetes Secrets.
#[derive(Debug)]
pub struct Masker {
    rules: Vec<MaskRule>,
    policy: DataPath,
    kubernetes_secrets: bool,
}

impl Masker {
    /// A masker from the configuration.
    pub fn new(config: &crate::config::MaskConfig) -> Result<Masker, MaskError> {
        let rules = config
            .pointers
            .iter()
            .map(|p| {
                let action = match &p.value {
                    Some(value) => MaskAction::Replace(value.clone()),
                    None => MaskAction::Erase,
                };
                MaskRule::new(&p.pointer, action)
            })
            .collect::<Result<_, _>>()?;
        Ok(Masker {
            rules,
            policy: DataPath::parse(&config.policy),
            kubernetes_secrets: config.kubernetes_secrets,
        })
    }

    /// The rules the mask policy answers for this event. A policy that
    /// fails or answers nonsense erases `input` and `result` entirely:
    /// a masking failure never lets a field through.
    fn policy_rules(&self, event: &DecisionEvent, json: &Map<String, Json>) -> Vec<MaskRule> {
        let snapshot = &event.snapshot;
        if self.policy.segments().is_empty()
            || !snapshot.policies.has_rule(self.policy.as_ref_str())
        {
            return Vec::new();
        }
        let input = Value::from(Json::Object(json.clone()));
        let answer = crate::pdp::decide_on(snapshot.clone(), &self.policy, Some(input))
            .map_err(|err| err.to_string())
            .and_then(|decision| {
                if matches!(decision.result, Value::Undefined) {
                    return Ok(Json::Array(Vec::new()));
                }
                serde_json::to_value(&decision.result).map_err(|err| err.to_string())
            })
            .and_then(|answer| mask::rules_from_policy(&answer).map_err(|err| err.to_string()));
        match answer {
            Ok(rules) => rules,
            Err(err) => {
                tracing::error!(
                    policy = %self.policy,
                    error = %err,
                    "decision-log mask policy failed; input and result are erased"
                );
                ["/input", "/result"]
                    .iter()
                    .map(|p| MaskRule::new(p, MaskAction::Erase).expect("valid pointer"))
                    .collect()
            }
        }
    }

    /// Mask `json` (the encoded `event`) and list what was touched in its
    /// `erased` and `masked` fields.
    pub fn mask(&self, event: &DecisionEvent, json: &mut Map<String, Json>) -> usize {
        let mut touched = Touched::default();
        let from_policy = self.policy_rules(event, json);
        let secrets = if self.kubernetes_secrets {
            mask::kubernetes_secret_rules(json)
        } else {
            Vec::new()
        };
        for rule in self.rules.iter().chain(&from_policy).chain(&secrets) {
            rule.apply(json, &mut touched);
        }
        let count = touched.erased.len() + touched.masked.len();
        let list =
            |pointers: Vec<String>| Json::Array(pointers.into_iter().map(Json::String).collect());
        if !touched.erased.is_empty() {
            json.insert("erased".into(), list(touched.erased));
        }
        if !touched.masked.is_empty() {
            json.insert("masked".into(), list(touched.masked));
        }
        count
    }
}

/// The handle handlers log through. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct DecisionLogger {
    queue: mpsc::Sender<Message>,
    capacity: usize,
    never_drop: bool,
    shutdown_timeout: Duration,
    metrics: DecisionLogMetrics,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Event(event) => write!(f, "Event({})", event.decision_id),
            Message::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

/// The writer's settings.
struct Writer {
    sink: Sink,
    masker: Masker,
    labels: Map<String, Json>,
    metrics: DecisionLogMetrics,
    never_drop: bool,
    batch_max_events: usize,
    flush_interval: Duration,
    max_retries: u32,
    retry_base: Duration,
    runtime: tokio::runtime::Handle,
}

impl DecisionLogger {
    /// Start the writer thread for `config`. Must be called inside a tokio
    /// runtime (uploads run on it).
    pub fn start(
        config: &DecisionLogConfig,
        metrics: DecisionLogMetrics,
    ) -> Result<Arc<DecisionLogger>, DecisionLogError> {
        let sink = match config.sink {
            DecisionLogSink::Stdout => Sink::Stdout,
            DecisionLogSink::File => Sink::File(FileSink::new(
                &config.file.path,
                config.file.max_bytes,
                config.file.max_files,
            )),
            DecisionLogSink::Http => Sink::Http(HttpSink::new(
                config.http.url.as_deref().unwrap_or_default(),
                Duration::from_millis(config.http.timeout_ms),
                config.http.bearer_token_file.clone(),
            )?),
        };
        let mut labels = Map::new();
        labels.insert("id".into(), Json::String(uuid::Uuid::new_v4().to_string()));
        labels.insert(
            "version".into(),
            Json::String(env!("CARGO_PKG_VERSION").into()),
        );
        for (key, value) in &config.labels {
            labels.insert(key.clone(), Json::String(value.clone()));
        }
        let (queue, receiver) = mpsc::channel(config.queue_size);
        metrics.queue_capacity.set(config.queue_size as i64);
        let writer = Writer {
            sink,
            masker: Masker::new(&config.mask)?,
            labels,
            metrics: metrics.clone(),
            never_drop: config.never_drop,
            batch_max_events: config.http.batch_max_events,
            flush_interval: Duration::from_millis(config.http.flush_interval_ms),
            max_retries: config.http.max_retries,
            retry_base: Duration::from_millis(config.http.retry_base_ms.max(1)),
            runtime: tokio::runtime::Handle::current(),
        };
        let thread = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || writer.run(receiver))
            .map_err(DecisionLogError::Thread)?;
        Ok(Arc::new(DecisionLogger {
            queue,
            capacity: config.queue_size,
            never_drop: config.never_drop,
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
            metrics,
            writer: Mutex::new(Some(thread)),
        }))
    }

    /// Queue one event. Returns at once unless never-drop mode is on and
    /// the queue is full.
    pub async fn record(&self, event: DecisionEvent) {
        let message = Message::Event(Box::new(event));
        let queued = if self.never_drop {
            self.queue.send(message).await.is_ok()
        } else {
            match self.queue.try_send(message) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.dropped_queue_full.inc();
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        if queued {
            self.metrics.enqueued.inc();
        } else {
            self.metrics.dropped_shutdown.inc();
        }
    }

    /// Set the queue-depth gauge (called when metrics are scraped).
    pub fn observe_queue(&self) {
        let depth = self.capacity.saturating_sub(self.queue.capacity());
        self.metrics.queue_depth.set(depth as i64);
    }

    /// Write everything queued and stop the writer, waiting at most the
    /// configured shutdown timeout.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        let deadline = self.shutdown_timeout;
        let flushed = tokio::time::timeout(deadline, async {
            if self.queue.send(Message::Shutdown(done)).await.is_ok() {
                let _ = finished.await;
            }
        })
        .await;
        if flushed.is_err() {
            tracing::error!(
                timeout_ms = deadline.as_millis() as u64,
                "decision log not flushed before the shutdown deadline; unwritten events are lost"
            );
            return;
        }
        let thread = self.writer.lock().ok().and_then(|mut slot| slot.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Writer {
    fn encode(&self, event: &DecisionEvent) -> Vec<u8> {
        let mut json = event.to_json(&self.labels);
        let touched = self.masker.mask(event, &mut json);
        self.metrics.masked_fields.inc_by(touched as u64);
        serde_json::to_vec(&Json::Object(json)).unwrap_or_else(|err| {
            format!(
                "{{\"decision_id\":{},\"portcullis_log_error\":{}}}",
                Json::String(event.decision_id.clone()),
                Json::String(err.to_string())
            )
            .into_bytes()
        })
    }

    /// Receive, encode and write until shutdown.
    fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut oldest: Option<Instant> = None;
        loop {
            let next = match oldest.filter(|_| self.sink.batches()) {
                None => self.runtime.block_on(receiver.recv()),
                Some(since) => {
                    let left = self.flush_interval.saturating_sub(since.elapsed());
                    // The timer is made inside the runtime (it needs its driver).
                    let waited = self
                        .runtime
                        .block_on(async { tokio::time::timeout(left, receiver.recv()).await });
                    match waited {
                        Ok(message) => message,
                        Err(_elapsed) => {
                            self.deliver(&mut pending, false);
                            oldest = None;
                            continue;
                        }
                    }
                }
            };
            let mut stopping = None;
            match next {
                None => {
                    self.deliver(&mut pending, true);
                    return;
                }
                Some(Message::Shutdown(done)) => stopping = Some(done),
                Some(Message::Event(event)) => {
                    pending.push(self.encode(&event));
                    oldest.get_or_insert_with(Instant::now);
                }
            }
            // Take what else is queued, up to a batch (or everything when
            // stopping: nothing may be left behind).
            while stopping.is_some() || pending.len() < self.batch_max_events {
                match receiver.try_recv() {
                    Ok(Message::Event(event)) => pending.push(self.encode(&event)),
                    Ok(Message::Shutdown(done)) => stopping = Some(done),
                    Err(_) => break,
                }
                if stopping.is_some() && pending.len() >= self.batch_max_events {
                    self.deliver(&mut pending, true);
                }
            }
            let due = !self.sink.batches()
                || pending.len() >= self.batch_max_events
                || oldest.is_some_and(|t| t.elapsed() >= self.flush_interval);
            if due || stopping.is_some() {
                self.deliver(&mut pending, stopping.is_some());
                oldest = None;
            }
            if let Some(done) = stopping {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Write `pending` (emptying it), retrying with backoff. In never-drop
    /// mode it retries until the write succeeds (the queue fills and
    /// handlers wait meanwhile); otherwise it drops the batch, counted,
    /// after `max_retries`. While stopping it gives up after `max_retries`
    /// too; shutdown's own deadline bounds the wait.
    fn deliver(&mut self, pending: &mut Vec<Vec<u8>>, stopping: bool) {
        if pending.is_empty() {
            return;
        }
        let count = pending.len() as u64;
        let mut failures: u32 = 0;
        loop {
            match self.sink.write(pending, &self.runtime) {
                Ok(()) => {
                    self.metrics.written.inc_by(count);
                    break;
                }
                Err(err) => {
                    self.metrics.sink_errors.inc();
                    failures += 1;
                    let give_up = (stopping || !self.never_drop) && failures > self.max_retries;
                    if give_up {
                        if stopping {
                            self.metrics.dropped_shutdown.inc_by(count);
                        } else {
                            self.metrics.dropped_sink_failed.inc_by(count);
                        }
                        tracing::error!(sink = self.sink.name(), error = %err, events = count, "decision-log events dropped after retries");
                        break;
                    }
                    tracing::warn!(sink = self.sink.name(), error = %err, attempt = failures, "decision-log write failed; retrying");
                    std::thread::sleep(crate::backoff::after_failures(
                        failures,
                        self.retry_base,
                        Duration::from_secs(30),
                    ));
                }
            }
        }
        pending.clear();
    }
}
