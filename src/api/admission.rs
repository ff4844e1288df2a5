//! `POST /v1/admit`: Kubernetes AdmissionReview (`admission.k8s.io/v1`, and
//! `v1beta1` answered in kind) evaluated against `data.admission`.
//!
//! Requests for kinds no policy checks, and requests in exempt namespaces,
//! are allowed at once: no Rego is evaluated and the object is never
//! converted (leases, events and node status updates are most of an API
//! server's writes). Everything else is evaluated against
//! `data.admission.decision` (for the configured kinds) and against every
//! Gatekeeper constraint whose `spec.match` selects it. Denials answer 403
//! with every message prefixed by the policy or constraint name, warnings
//! (and `warn` constraints) ride along allowed responses, `dryrun`
//! constraints are only counted and logged, and the decision id and
//! revisions go into `auditAnnotations`.

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value as Json;

use super::body::{check_depth, malformed, read_limited, RequestBody};
use super::error::ApiError;
use super::{json_response, new_decision_id, AppState, Requester};
use crate::cache::stream::{self, Captures};
use crate::cache::Weigh;
use crate::decision_log::{DecisionEvent, EventMetrics, LoggedInput};
use crate::engine::input::read_parts;
use crate::engine::reads::ReadTree;
use crate::engine::reads::{InputReads, ReadSet};
use crate::engine::{string_items, DataPath, Value};
use crate::gatekeeper::EnforcementAction;
use crate::metrics::{Metrics, ReviewOutcome};
use crate::pdp::{self, Snapshot};

/// Kubernetes caps each warning at 120 characters.
const MAX_WARNING_CHARS: usize = 120;

/// The label of a metric whose request value is outside its bounded set.
const OTHER_LABEL: &str = "other";

/// What decides which requests are evaluated.
#[derive(Debug)]
pub struct AdmissionSettings {
    /// Kinds some policy checks; others are allowed without evaluation.
    pub kinds: HashSet<String>,
    /// Namespaces never checked.
    pub exempt_namespaces: HashSet<String>,
    /// The document evaluated: `{"allowed", "deny", "warn"}`.
    pub decision: DataPath,
    /// What a review's evaluation reads, for the active generation.
    reads: ArcSwapOption<GenerationReads>,
}

/// What evaluating a review reads, as a set (for cacheability) and as a
/// tree (for hashing the bytes).
#[derive(Debug)]
pub struct ReviewReads {
    set: ReadSet,
    tree: ReadTree,
}

/// [`ReviewReads`] of one snapshot generation.
#[derive(Debug)]
struct GenerationReads {
    generation: u64,
    reads: Arc<ReviewReads>,
}

impl AdmissionSettings {
    /// What evaluating a review can read (the policies' reads, every
    /// constraint's, and the kind), for the snapshot's generation: worked
    /// out once per generation, lock-free afterwards. One set for every
    /// review, whichever evaluations it needs: hashing more than a review
    /// reads only makes its key more precise.
    fn reads_for(&self, snapshot: &Snapshot) -> Arc<ReviewReads> {
        if let Some(current) = self.reads.load().as_ref() {
            if current.generation == snapshot.generation {
                return current.reads.clone();
            }
        }
        let mut set = ReadSet::default();
        set.merge(&snapshot.policies.reads_of(&self.decision));
        set.merge(snapshot.gatekeeper.reads());
        set.merge(&KIND_READ);
        let reads = Arc::new(ReviewReads {
            tree: ReadTree::new(&set.input),
            set,
        });
        self.reads.store(Some(Arc::new(GenerationReads {
            generation: snapshot.generation,
            reads: reads.clone(),
        })));
        reads
    }
}

/// The fields of a review that route it, in capture-slot order.
static HEAD: std::sync::LazyLock<Captures> = std::sync::LazyLock::new(|| {
    Captures::new(&[
        &["apiVersion"],
        &["kind"],
        &["request", "uid"],
        &["request", "kind", "group"],
        &["request", "kind", "kind"],
        &["request", "namespace"],
        &["request", "operation"],
    ])
});

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewResponse {
    api_version: String,
    kind: &'static str,
    response: AdmissionResponse,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionResponse {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DenyStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_annotations: Option<serde_json::Map<String, Json>>,
}

#[derive(Debug, Serialize)]
struct DenyStatus {
    code: u16,
    reason: &'static str,
    message: String,
}

/// The router for the admission listener.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/v1/admit", axum::routing::post(admit))
        .route("/health", axum::routing::get(super::health::live))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            super::observe,
        ))
        .with_state(state)
}

fn invalid_review(message: &str) -> ApiError {
    ApiError::invalid(format!("not an AdmissionReview: {message}"))
}

/// `POST /v1/admit`.
pub async fn admit(
    State(state): State<AppState>,
    requester: Requester,
    body: RequestBody,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let settings = state
        .admission
        .clone()
        .ok_or_else(|| ApiError::invalid("the admission endpoint is not configured"))?;
    let bytes = read_limited(body, &state.limits).await?;
    // One scan of the bytes takes out the fields that route the request and
    // hashes the parts the evaluations read (the decision cache key). The
    // object is never converted unless it has to be evaluated: a request no
    // policy and no constraint looks at, or a cache hit, costs this scan.
    check_depth(&bytes, state.limits.max_json_depth)?;
    let snapshot = state.pdp.snapshot();
    let reads = snapshot.as_ref().map(|s| settings.reads_for(s));
    let tree = reads
        .as_ref()
        .filter(|_| state.verdicts.enabled())
        .map(|r| &r.tree);
    let scan =
        stream::scan(&bytes, tree, &HEAD).map_err(|err| malformed(&err, "AdmissionReview"))?;
    let mut captured = scan.captured.into_iter();
    let mut next = || captured.next().flatten();
    let (api_version, review_kind, uid, group, kind, namespace, operation) =
        (next(), next(), next(), next(), next(), next(), next());
    let operation = operation.unwrap_or_default();
    let api_version = api_version.unwrap_or_default();
    if !matches!(
        api_version.as_str(),
        "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
    ) || review_kind.as_deref() != Some("AdmissionReview")
    {
        return Err(invalid_review(
            "apiVersion must be admission.k8s.io/v1 or v1beta1 and kind AdmissionReview",
        ));
    }
    let uid = uid.ok_or_else(|| invalid_review("request.uid is missing or not a string"))?;
    let kind =
        kind.ok_or_else(|| invalid_review("request.kind.kind is missing or not a string"))?;
    let group = group.unwrap_or_default();
    let namespace = namespace.unwrap_or_default();

    let answer = |response: AdmissionResponse| {
        json_response(
            StatusCode::OK,
            &ReviewResponse {
                api_version: api_version.clone(),
                kind: "AdmissionReview",
                response,
            },
            false,
        )
    };
    // Metric labels come from bounded sets: the operations Kubernetes
    // sends and the kinds the configuration or a constraint names; any
    // other value a caller sends is counted as "other".
    let operation_label = match operation.as_str() {
        known @ ("CREATE" | "UPDATE" | "DELETE" | "CONNECT") => known,
        _ => OTHER_LABEL,
    };
    let kind_label = if settings.kinds.contains(&kind)
        || snapshot
            .as_ref()
            .is_some_and(|s| s.gatekeeper.names_kind(&kind))
    {
        kind.as_str()
    } else {
        OTHER_LABEL
    };
    let policies_apply = settings.kinds.contains(&kind);
    let constraints_apply = snapshot
        .as_ref()
        .is_some_and(|s| s.gatekeeper.may_match_kind(&group, &kind));
    if settings.exempt_namespaces.contains(&namespace) || !(policies_apply || constraints_apply) {
        state
            .metrics
            .review(operation_label, kind_label, ReviewOutcome::FastPath);
        return Ok(answer(AdmissionResponse {
            uid,
            allowed: true,
            status: None,
            warnings: Vec::new(),
            audit_annotations: None,
        }));
    }

    let (Some(snapshot), Some(reads)) = (snapshot, reads) else {
        return Err(ApiError::from(pdp::DecideError::NotReady));
    };
    let key = scan.hash.and_then(|hash| {
        state
            .verdicts
            .key_from_hash(snapshot.generation, &settings.decision, &reads.set, hash)
    });
    let evaluate = || {
        // Only the parts the evaluations read are converted.
        let review =
            read_parts(&bytes, &reads.tree).map_err(|err| malformed(&err, "AdmissionReview"))?;
        evaluate_review(
            &snapshot,
            &settings,
            &state.metrics,
            &review,
            policies_apply,
            constraints_apply,
        )
        .map(Arc::new)
    };
    let (verdict, _) = state
        .verdicts
        .get_or_compute(key, evaluate)
        .await
        .map_err(|err| (*err).clone())?;
    for (constraint, action, message) in &verdict.violations {
        state
            .metrics
            .constraint_violation(constraint, action.as_str());
        if *action == EnforcementAction::Dryrun {
            tracing::info!(
                constraint = %constraint,
                kind = %kind,
                namespace = %namespace,
                message = %message,
                "dryrun constraint violation"
            );
        }
    }
    let denials = &verdict.denials;
    let warnings = verdict.warnings.clone();
    let allowed = denials.is_empty();
    let outcome = if allowed {
        ReviewOutcome::Allowed
    } else {
        ReviewOutcome::Denied
    };
    state.metrics.review(operation_label, kind_label, outcome);
    let decision_id = new_decision_id();
    super::record_decision(&decision_id, &settings.decision, &snapshot);
    state
        .log_decision(|| DecisionEvent {
            input: LoggedInput::body(&bytes),
            result: verdict.logged(allowed).into(),
            metrics: EventMetrics::from_pairs(&[(
                "timer_server_handler_ns",
                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            )]),
            requested_by: requester.0,
            ..DecisionEvent::new(
                decision_id.clone(),
                settings.decision.clone(),
                snapshot.clone(),
            )
        })
        .await;
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "portcullis.dev/decision-id".into(),
        Json::String(decision_id),
    );
    annotations.insert(
        "portcullis.dev/revision".into(),
        Json::String(
            snapshot
                .bundles
                .iter()
                .map(|b| format!("{}={}", b.name, b.revision))
                .collect::<Vec<_>>()
                .join(","),
        ),
    );
    let status = (!allowed).then(|| DenyStatus {
        code: 403,
        reason: "Forbidden",
        message: denials.join("; "),
    });
    Ok(answer(AdmissionResponse {
        uid,
        allowed,
        status,
        warnings,
        audit_annotations: Some(annotations),
    }))
}

/// What evaluating one review found: the answer without the parts that
/// change per request (uid, decision id). This is what the cache keeps.
#[derive(Debug)]
pub struct Verdict {
    /// Denial messages, prefixed by policy or constraint name.
    denials: Vec<String>,
    /// Warnings, prefixed and capped.
    warnings: Vec<String>,
    /// Every constraint violation (constraint, action, message), for the
    /// metrics and the dryrun log, replayed on every answer.
    violations: Vec<(String, EnforcementAction, String)>,
}

impl Verdict {
    /// The verdict as the decision log records it: the answer, and every
    /// constraint violation with its enforcement action (dryrun included).
    fn logged(&self, allowed: bool) -> Value {
        let violations = self
            .violations
            .iter()
            .map(|(constraint, action, message)| {
                serde_json::json!({
                    "constraint": constraint,
                    "enforcement_action": action.as_str(),
                    "message": message,
                })
            })
            .collect::<Vec<_>>();
        Value::from(serde_json::json!({
            "allowed": allowed,
            "denials": self.denials,
            "warnings": self.warnings,
            "violations": violations,
        }))
    }
}

impl Weigh for Arc<Verdict> {
    fn weight(&self) -> usize {
        let text = |items: &[String]| items.iter().map(|s| s.len() + 24).sum::<usize>();
        64 + text(&self.denials)
            + text(&self.warnings)
            + self
                .violations
                .iter()
                .map(|(c, _, m)| c.len() + m.len() + 48)
                .sum::<usize>()
    }
}

/// The request fields that decide which evaluations run.
static KIND_READ: std::sync::LazyLock<ReadSet> = std::sync::LazyLock::new(|| ReadSet {
    input: InputReads::Paths(
        [vec!["request".to_string(), "kind".to_string()]]
            .into_iter()
            .collect(),
    ),
    nondeterministic: Vec::new(),
});

/// Evaluate `data.admission` (when its kinds include the request's) and
/// every matching constraint (when some may match).
fn evaluate_review(
    snapshot: &Arc<Snapshot>,
    settings: &AdmissionSettings,
    metrics: &Metrics,
    review: &Value,
    policies_apply: bool,
    constraints_apply: bool,
) -> Result<Verdict, ApiError> {
    let mut verdict = Verdict {
        denials: Vec::new(),
        warnings: Vec::new(),
        violations: Vec::new(),
    };
    // The policies and every constraint share one time budget.
    let deadline = std::time::Instant::now() + snapshot.policies.options().eval_timeout;
    if policies_apply {
        let decision = pdp::decide_before(
            snapshot.clone(),
            &settings.decision,
            Some(review.clone()),
            Some(deadline),
        )?;
        metrics.evaluated(
            settings.decision.as_ref_str(),
            std::time::Duration::from_nanos(decision.eval_ns),
        );
        let policy_denials = string_items(&decision.result["deny"]);
        let allowed = matches!(decision.result["allowed"], Value::Bool(true));
        if !allowed && policy_denials.is_empty() {
            // No decision document: refuse rather than pass silently.
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                super::error::code::INTERNAL_ERROR,
                format!("{} is undefined or malformed", settings.decision),
            ));
        }
        verdict
            .denials
            .extend(policy_denials.iter().map(|m| format!("[admission] {m}")));
        verdict.warnings.extend(
            string_items(&decision.result["warn"])
                .iter()
                .map(|w| truncate(&format!("[admission] {w}"))),
        );
    }
    if constraints_apply {
        let found = snapshot.gatekeeper.review_timed(
            &review["request"],
            Some(deadline),
            |constraint, elapsed| metrics.constraint_evaluated(constraint, elapsed),
        );
        for violation in found {
            let message = format!("[{}] {}", violation.constraint, violation.message);
            match violation.action {
                EnforcementAction::Deny => verdict.denials.push(message),
                EnforcementAction::Warn => verdict.warnings.push(truncate(&message)),
                EnforcementAction::Dryrun => {}
            }
            verdict
                .violations
                .push((violation.constraint, violation.action, violation.message));
        }
    }
    Ok(verdict)
}

fn truncate(message: &str) -> String {
    if message.chars().count() <= MAX_WARNING_CHARS {
        return message.to_string();
    }
    let mut short: String = message.chars().take(MAX_WARNING_CHARS - 1).collect();
    short.push('…');
    short
}

/// Settings from the configuration.
pub fn settings(kinds: &[String], exempt: &[String]) -> Arc<AdmissionSettings> {
    Arc::new(AdmissionSettings {
        kinds: kinds.iter().cloned().collect(),
        exempt_namespaces: exempt.iter().cloned().collect(),
        decision: DataPath::parse("admission/decision"),
        reads: ArcSwapOption::empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_capped_at_120_characters() {
        assert_eq!(truncate("short"), "short");
        let long = "x".repeat(300);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), 120);
        assert!(cut.ends_with('…'));
    }
}
