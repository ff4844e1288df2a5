//! What the in-process admission benches share: the server state on the
//! shipped policies plus the Gatekeeper fixtures, with the cache on or off.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use portcullis::api::{self, AppParts, AppState};
use portcullis::cache::DecisionCache;
use portcullis::config::{AdmissionConfig, CacheConfig, Limits};
use portcullis::engine::{DataPath, EngineOptions};
use portcullis::metrics::Metrics;
use portcullis::pdp::DecisionPoint;

/// A path inside the repository.
pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The state the admission router serves: `policies`, `bundles` and the
/// Gatekeeper fixture bundle and inventory; caches counted in `metrics`.
pub fn admission_state(cache: bool, metrics: Arc<Metrics>) -> AppState {
    let bundles = [
        "policies",
        "bundles",
        "tests/fixtures/gatekeeper/bundle",
        "tests/fixtures/gatekeeper/inventory",
    ]
    .map(repo);
    let pdp = DecisionPoint::load(&bundles, EngineOptions::default()).expect("bundles load");
    let admission = AdmissionConfig::default();
    let settings = CacheConfig {
        enabled: cache,
        ..CacheConfig::default()
    }
    .settings();
    AppState::new(AppParts {
        pdp: Arc::new(pdp),
        limits: Arc::new(Limits::default()),
        default_decision: Arc::new(DataPath::parse("system/main")),
        shutting_down: Arc::new(AtomicBool::new(false)),
        remotes: Arc::new(Vec::new()),
        admission: Some(api::admission::settings(
            &admission.kinds,
            &admission.exempt_namespaces,
        )),
        decisions: Arc::new(DecisionCache::new("data", &settings, Some(metrics.clone()))),
        verdicts: Arc::new(DecisionCache::new(
            "admission",
            &settings,
            Some(metrics.clone()),
        )),
        metrics,
        decision_log: None,
        allow_writes: false,
        ready_after_first_push: false,
    })
}
