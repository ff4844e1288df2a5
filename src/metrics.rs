//! Every Prometheus collector in one struct, registered in one registry and
//! served as text at `GET /metrics`.
//!
//! Collectors touched per request are resolved to their label children once
//! (at start for fixed labels, on first use for routes, statuses and
//! decision paths, kept in copy-on-write maps behind `ArcSwap`), so that
//! counting is an atomic load and an atomic add, never a lookup under a lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::pdp::Snapshot;

/// Request durations from 50 µs to 10 s.
const REQUEST_BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// How a decision ended, for `portcullis_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result came back.
    Defined,
    /// The document is undefined.
    Undefined,
    /// Evaluation failed.
    Error,
}

/// Children of a labelled collector, resolved on first use and then read
/// with one atomic load (copy-on-write: a new label set clones the map).
#[derive(Debug)]
struct Resolved<K, M> {
    map: ArcSwap<HashMap<K, M>>,
}

impl<K: std::hash::Hash + Eq + Clone, M: Clone> Resolved<K, M> {
    fn new() -> Self {
        Resolved {
            map: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q, make: impl FnOnce() -> (K, M)) -> M
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(found) = self.map.load().get(key) {
            return found.clone();
        }
        let (key, made) = make();
        self.map.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(key.clone(), made.clone());
            next
        });
        made
    }
}

/// A route's request histograms by status.
type ByStatus = Resolved<u16, Histogram>;

/// An operation's review counters (fast path, allowed, denied) by kind.
type ByKind = Resolved<String, [IntCounter; 3]>;

/// The collectors.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    bundle_info: IntGaugeVec,
    last_activation: IntGauge,
    vm_entry_points: IntGauge,
    vm_gap_entry_points: IntGauge,
    undefined_head_rules: IntGauge,
    activations_ok: IntCounter,
    activations_failed: IntCounter,
    load_duration: Histogram,
    constraint_violations: IntCounterVec,
    cache_lookups: IntCounterVec,
    cache_evictions: IntCounterVec,
    cache_entries: IntGaugeVec,
    cache_bytes: IntGaugeVec,
    request_duration: HistogramVec,
    request_children: Arc<Resolved<String, Arc<ByStatus>>>,
    decisions: IntCounterVec,
    decision_children: Arc<Resolved<String, [IntCounter; 3]>>,
    evaluation_duration: HistogramVec,
    evaluation_children: Arc<Resolved<String, Histogram>>,
    constraint_duration: HistogramVec,
    constraint_children: Arc<Resolved<String, Histogram>>,
    reviews: IntCounterVec,
    review_children: Arc<Resolved<String, Arc<ByKind>>>,
    decision_log: DecisionLogMetrics,
    auth_outcomes: [IntCounter; 3],
    overloaded: IntCounter,
    panics: IntCounter,
}

/// How the API's authentication and authorization ended for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Identified and authorized.
    Allowed,
    /// No or invalid credentials (401).
    Unauthenticated,
    /// Refused by the authorization policy (403).
    Forbidden,
}

/// The decision log's collectors, resolved to their children once.
#[derive(Debug, Clone)]
pub struct DecisionLogMetrics {
    /// Events accepted into the queue.
    pub enqueued: IntCounter,
    /// Events written by the sink.
    pub written: IntCounter,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: IntCounter,
    /// Events dropped after the sink failed every retry.
    pub dropped_sink_failed: IntCounter,
    /// Events still unwritten when the shutdown deadline passed.
    pub dropped_shutdown: IntCounter,
    /// Failed sink writes (each retry counts).
    pub sink_errors: IntCounter,
    /// Fields erased or replaced by masking.
    pub masked_fields: IntCounter,
    /// Events waiting in the queue (set when `/metrics` is scraped).
    pub queue_depth: IntGauge,
    /// The queue's capacity.
    pub queue_capacity: IntGauge,
}

/// How an admission review ended, for `portcullis_admission_reviews_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Allowed without evaluation (no policy or constraint selects it, or
    /// an exempt namespace).
    FastPath,
    /// Allowed after evaluation.
    Allowed,
    /// Denied.
    Denied,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every collector, plus the process collector (resident
    /// memory, open file descriptors, CPU) where the platform has one.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("portcullis".into()), None)
            .expect("a static namespace is valid");
        let bundle_info = IntGaugeVec::new(
            Opts::new(
                "bundle_info",
                "The active bundles: 1 per bundle and revision.",
            ),
            &["bundle", "revision"],
        )
        .expect("valid metric");
        let last_activation = IntGauge::new(
            "bundle_last_activation_timestamp_seconds",
            "When the active snapshot was activated (Unix time).",
        )
        .expect("valid metric");
        let vm_entry_points = IntGauge::new(
            "vm_entry_points",
            "Rule entry points of the active snapshot that run on the bytecode VM.",
        )
        .expect("valid metric");
        let vm_gap_entry_points = IntGauge::new(
            "vm_gap_entry_points",
            "Rule entry points kept on the interpreter because the VM would answer them differently from OPA.",
        )
        .expect("valid metric");
        let undefined_head_rules = IntGauge::new(
            "undefined_head_rules",
            "Partial rules of the active snapshot (Gatekeeper templates included) whose element can be undefined, which the interpreter answers differently from OPA.",
        )
        .expect("valid metric");
        let activations = IntCounterVec::new(
            Opts::new("bundle_activations_total", "Bundle loads by result."),
            &["result"],
        )
        .expect("valid metric");
        let load_duration = Histogram::with_opts(
            HistogramOpts::new(
                "bundle_load_duration_seconds",
                "Time to read, verify and compile bundles.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let constraint_violations = IntCounterVec::new(
            Opts::new(
                "gatekeeper_violations_total",
                "Gatekeeper constraint violations found in admission reviews, by constraint and enforcement action (dryrun violations are only counted).",
            ),
            &["constraint", "enforcement_action"],
        )
        .expect("valid metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "decision_cache_requests_total",
                "Decision cache lookups by cache and result (hit, miss, bypass: not cacheable or cache off).",
            ),
            &["cache", "result"],
        )
        .expect("valid metric");
        let cache_evictions = IntCounterVec::new(
            Opts::new(
                "decision_cache_evictions_total",
                "Decision cache entries evicted, by cache and cause (size, expired).",
            ),
            &["cache", "cause"],
        )
        .expect("valid metric");
        let cache_entries = IntGaugeVec::new(
            Opts::new("decision_cache_entries", "Entries in the decision cache."),
            &["cache"],
        )
        .expect("valid metric");
        let cache_bytes = IntGaugeVec::new(
            Opts::new(
                "decision_cache_bytes",
                "Approximate bytes held by the decision cache (its weighted size).",
            ),
            &["cache"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request durations by route and status.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["route", "status"],
        )
        .expect("valid metric");
        let decisions = IntCounterVec::new(
            Opts::new(
                "decisions_total",
                "Data API decisions by path (rule paths; other paths as \"other\") and outcome.",
            ),
            &["path", "outcome"],
        )
        .expect("valid metric");
        let evaluation_duration = HistogramVec::new(
            HistogramOpts::new(
                "evaluation_duration_seconds",
                "Policy evaluation time by decision path (evaluations only: cache hits do not evaluate).",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["path"],
        )
        .expect("valid metric");
        let constraint_duration = HistogramVec::new(
            HistogramOpts::new(
                "constraint_evaluation_duration_seconds",
                "Gatekeeper constraint evaluation time by constraint.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["constraint"],
        )
        .expect("valid metric");
        let reviews = IntCounterVec::new(
            Opts::new(
                "admission_reviews_total",
                "Admission reviews by operation, kind and outcome (fast_path, allowed, denied).",
            ),
            &["operation", "kind", "outcome"],
        )
        .expect("valid metric");
        let log_events = IntCounterVec::new(
            Opts::new(
                "decision_log_events_total",
                "Decision-log events by stage: enqueued, written, masked_fields (fields erased or replaced).",
            ),
            &["stage"],
        )
        .expect("valid metric");
        let log_dropped = IntCounterVec::new(
            Opts::new(
                "decision_log_dropped_total",
                "Decision-log events dropped, by reason (queue_full, sink_failed, shutdown).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let log_sink_errors = IntCounter::new(
            "decision_log_sink_errors_total",
            "Failed decision-log sink writes (every retry counts).",
        )
        .expect("valid metric");
        let log_queue = IntGaugeVec::new(
            Opts::new(
                "decision_log_queue",
                "The decision-log queue: events waiting (depth) and its capacity.",
            ),
            &["measure"],
        )
        .expect("valid metric");
        let decision_log = DecisionLogMetrics {
            enqueued: log_events.with_label_values(&["enqueued"]),
            written: log_events.with_label_values(&["written"]),
            masked_fields: log_events.with_label_values(&["masked_fields"]),
            dropped_queue_full: log_dropped.with_label_values(&["queue_full"]),
            dropped_sink_failed: log_dropped.with_label_values(&["sink_failed"]),
            dropped_shutdown: log_dropped.with_label_values(&["shutdown"]),
            sink_errors: log_sink_errors.clone(),
            queue_depth: log_queue.with_label_values(&["depth"]),
            queue_capacity: log_queue.with_label_values(&["capacity"]),
        };
        let auth = IntCounterVec::new(
            Opts::new(
                "auth_requests_total",
                "Decision API requests checked by authentication and authorization, by result (allowed, unauthenticated, forbidden).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let auth_outcomes = ["allowed", "unauthenticated", "forbidden"]
            .map(|result| auth.with_label_values(&[result]));
        let overloaded = IntCounter::new(
            "requests_refused_overload_total",
            "Requests answered 503 at once because limits.max_in_flight requests were already in flight.",
        )
        .expect("valid metric");
        let panics = IntCounter::new(
            "handler_panics_total",
            "Request handlers that panicked (answered 500; the process stays up).",
        )
        .expect("valid metric");
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(overloaded.clone()),
            Box::new(panics.clone()),
            Box::new(auth),
            Box::new(log_events),
            Box::new(log_dropped),
            Box::new(log_sink_errors),
            Box::new(log_queue),
            Box::new(evaluation_duration.clone()),
            Box::new(constraint_duration.clone()),
            Box::new(reviews.clone()),
            Box::new(request_duration.clone()),
            Box::new(decisions.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(cache_evictions.clone()),
            Box::new(cache_entries.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(constraint_violations.clone()),
            Box::new(bundle_info.clone()),
            Box::new(last_activation.clone()),
            Box::new(vm_entry_points.clone()),
            Box::new(vm_gap_entry_points.clone()),
            Box::new(undefined_head_rules.clone()),
            Box::new(activations.clone()),
            Box::new(load_duration.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("collector names are unique");
        }
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = registry.register(Box::new(process));
        }
        Metrics {
            activations_ok: activations.with_label_values(&["success"]),
            activations_failed: activations.with_label_values(&["failure"]),
            registry,
            constraint_violations,
            cache_lookups,
            cache_evictions,
            cache_entries,
            cache_bytes,
            request_duration,
            request_children: Arc::new(Resolved::new()),
            decisions,
            decision_children: Arc::new(Resolved::new()),
            evaluation_duration,
            evaluation_children: Arc::new(Resolved::new()),
            constraint_duration,
            constraint_children: Arc::new(Resolved::new()),
            reviews,
            review_children: Arc::new(Resolved::new()),
            decision_log,
            auth_outcomes,
            overloaded,
            panics,
            bundle_info,
            last_activation,
            vm_entry_points,
            vm_gap_entry_points,
            undefined_head_rules,
            load_duration,
        }
    }

    /// Count one authentication/authorization outcome.
    pub fn auth(&self, outcome: AuthOutcome) {
        let index = match outcome {
            AuthOutcome::Allowed => 0,
            AuthOutcome::Unauthenticated => 1,
            AuthOutcome::Forbidden => 2,
        };
        self.auth_outcomes[index].inc();
    }

    /// Count a request refused for overload.
    pub fn overloaded(&self) {
        self.overloaded.inc();
    }

    /// Count a handler panic.
    pub fn panicked(&self) {
        self.panics.inc();
    }

    /// The decision log's collectors.
    pub fn decision_log(&self) -> &DecisionLogMetrics {
        &self.decision_log
    }

    /// Record an activation.
    pub fn activated(&self, snapshot: &Snapshot) {
        self.activations_ok.inc();
        self.load_duration
            .observe(snapshot.load_duration.as_secs_f64());
        self.bundle_info.reset();
        for bundle in &snapshot.bundles {
            self.bundle_info
                .with_label_values(&[bundle.name.as_str(), bundle.revision.as_str()])
                .set(1);
        }
        let at = snapshot
            .activated_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        self.last_activation
            .set(i64::try_from(at.as_secs()).unwrap_or(i64::MAX));
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.vm_entry_points
            .set(count(snapshot.policies.vm_entry_points().len()));
        self.vm_gap_entry_points
            .set(count(snapshot.policies.vm_gaps().len()));
        self.undefined_head_rules.set(count(
            snapshot.policies.undefined_heads().len() + snapshot.gatekeeper.warnings().len(),
        ));
    }

    /// Record one answered HTTP request: its route pattern (e.g.
    /// `/v1/data/{*path}`), status and duration.
    pub fn request_observed(&self, route: &str, status: u16, elapsed: Duration) {
        let by_status = self
            .request_children
            .get(route, || (route.to_string(), Arc::new(Resolved::new())));
        let histogram = by_status.get(&status, || {
            let child = self
                .request_duration
                .with_label_values(&[route, &status.to_string()]);
            (status, child)
        });
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Count one decision at `path` (a rule path, or "other").
    pub fn decision(&self, path: &str, outcome: Outcome) {
        let counters = self.decision_children.get(path, || {
            let children = ["defined", "undefined", "error"]
                .map(|o| self.decisions.with_label_values(&[path, o]));
            (path.to_string(), children)
        });
        counters[outcome as usize].inc();
    }

    /// Record one policy evaluation at `path` (a rule path, or "other").
    pub fn evaluated(&self, path: &str, elapsed: Duration) {
        let histogram = self.evaluation_children.get(path, || {
            (
                path.to_string(),
                self.evaluation_duration.with_label_values(&[path]),
            )
        });
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Record one constraint evaluation.
    pub fn constraint_evaluated(&self, constraint: &str, elapsed: Duration) {
        let histogram = self.constraint_children.get(constraint, || {
            (
                constraint.to_string(),
                self.constraint_duration.with_label_values(&[constraint]),
            )
        });
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Count one admission review.
    pub fn review(&self, operation: &str, kind: &str, outcome: ReviewOutcome) {
        let by_kind = self.review_children.get(operation, || {
            (operation.to_string(), Arc::new(Resolved::new()))
        });
        let counters = by_kind.get(kind, || {
            let children = ["fast_path", "allowed", "denied"]
                .map(|o| self.reviews.with_label_values(&[operation, kind, o]));
            (kind.to_string(), children)
        });
        counters[outcome as usize].inc();
    }

    /// Count one constraint violation.
    pub fn constraint_violation(&self, constraint: &str, action: &str) {
        self.constraint_violations
            .with_label_values(&[constraint, action])
            .inc();
    }

    /// The hit, miss and bypass counters of one cache, resolved once so
    /// that counting a lookup is one atomic add.
    pub fn cache_counters(&self, cache: &str) -> [IntCounter; 3] {
        ["hit", "miss", "bypass"]
            .map(|result| self.cache_lookups.with_label_values(&[cache, result]))
    }

    /// Count one decision cache eviction.
    pub fn cache_evicted(&self, cache: &str, cause: &str) {
        self.cache_evictions
            .with_label_values(&[cache, cause])
            .inc();
    }

    /// Publish a decision cache's size.
    pub fn cache_size(&self, cache: &str, entries: u64, bytes: u64) {
        self.cache_entries
            .with_label_values(&[cache])
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.cache_bytes
            .with_label_values(&[cache])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Record a load that did not activate.
    pub fn activation_failed(&self) {
        self.activations_failed.inc();
    }

    /// Everything in the text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
