//! The decision point: the active [`Snapshot`] behind an `ArcSwap`, building
//! new snapshots from bundle directories, and `decide()`.
//!
//! A request loads the snapshot once and evaluates against it, so it sees
//! exactly one revision even while a reload swaps in another. A failed load
//! leaves the active snapshot in place and is remembered for the status API.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::bundle::{self, Bundle, BundleError, SizeLimits, Verifier};
use crate::engine::{
    CompileError, DataPath, EngineOptions, EvalError, PolicyError, PolicySet, Value,
};
use crate::gatekeeper::{self, GatekeeperError};
use crate::location::Location;
use crate::metrics::Metrics;
use crate::pushed::{Pushed, WriteError};

/// What one bundle contributed to a snapshot.
#[derive(Debug, Clone)]
pub struct BundleInfo {
    /// The bundle's name.
    pub name: String,
    /// Its manifest revision.
    pub revision: String,
    /// Its roots, `/`-separated (`""` for the whole tree).
    pub roots: Vec<String>,
    /// Where it was loaded from.
    pub location: String,
}

/// One immutable, activated state: compiled policies plus what they came from.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every activation.
    pub generation: u64,
    /// The prepared policies and data.
    pub policies: PolicySet,
    /// The Gatekeeper templates and constraints the bundles carry.
    pub gatekeeper: gatekeeper::Library,
    /// The bundles, in load order.
    pub bundles: Vec<BundleInfo>,
    /// When it was activated.
    pub activated_at: SystemTime,
    /// How long loading and compiling took.
    pub load_duration: std::time::Duration,
}

/// A load that did not activate.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// When it failed.
    pub at: SystemTime,
    /// Why.
    pub message: String,
}

/// Why a set of bundles could not be activated.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No bundle directory was given.
    #[error("no bundle directories were given")]
    NoBundles,
    /// A bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The policies did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A Gatekeeper template or constraint is invalid.
    #[error(transparent)]
    Gatekeeper(#[from] GatekeeperError),
    /// The snapshot built, but what had to happen before activating it
    /// (persisting a write) failed.
    #[error("not activated: the change could not be committed: {0}")]
    NotCommitted(#[source] std::io::Error),
    /// Shutdown has begun: nothing more is activated.
    #[error("shutting down: no new snapshot is activated")]
    ShuttingDown,
    /// The bundles' own tests failed.
    #[error("self-test failed: {} test(s) failed ({}), {passed} passed", .failed.len(), .failed.join(", "))]
    SelfTest {
        /// How many passed.
        passed: usize,
        /// The failing tests' paths.
        failed: Vec<String>,
    },
}

impl LoadError {
    /// Every problem as a positioned error.
    pub fn errors(&self) -> Vec<PolicyError> {
        match self {
            LoadError::NoBundles
            | LoadError::ShuttingDown
            | LoadError::NotCommitted(_)
            | LoadError::SelfTest { .. } => {
                vec![PolicyError {
                    message: self.to_string(),
                    location: None,
                }]
            }
            LoadError::Bundle(err) => vec![PolicyError {
                message: err.to_string(),
                location: err.location().filter(|l: &Location| l.row > 0),
            }],
            LoadError::Compile(err) => err.errors(),
            LoadError::Gatekeeper(err) => err.errors(),
        }
    }
}

/// Why one decision could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// Nothing has been activated yet.
    #[error("no policy bundle is active yet")]
    NotReady,
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// A decision and the snapshot that made it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The result; [`Value::Undefined`] when the document is undefined.
    pub result: Value,
    /// The snapshot it was evaluated against.
    pub snapshot: Arc<Snapshot>,
    /// Evaluation time in nanoseconds.
    pub eval_ns: u64,
}

/// Holds the active snapshot and knows how to build the next one.
#[derive(Debug)]
pub struct DecisionPoint {
    active: ArcSwapOption<Snapshot>,
    last_failure: ArcSwapOption<LoadFailure>,
    sources: Vec<PathBuf>,
    options: EngineOptions,
    load: LoadOptions,
    generation: AtomicU64,
    /// Set when shutdown begins: no reload activates after it.
    closed: AtomicBool,
    /// The content fingerprints of `sources` as the last build found them
    /// (taken before reading: a change during the build differs from it).
    read_fingerprints: ArcSwap<Vec<Option<u64>>>,
    metrics: Option<Arc<Metrics>>,
    /// Data pushed through the Data API, served as one more bundle.
    pushed: ArcSwap<Pushed>,
    /// Where pushed data is persisted, when configured.
    persist: Option<PathBuf>,
    /// Serializes building snapshots (reloads and writes), so that no
    /// activation can drop a write made while it was being built. Never
    /// taken on the request path.
    building: Mutex<()>,
}

/// Why a data write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The write itself is invalid (root, bundle-owned path, bad patch).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Nothing is active yet.
    #[error("no policy snapshot is active yet")]
    NotReady,
    /// The snapshot with the write could not be built (e.g. the data
    /// conflicts with a rule); nothing changed.
    #[error("the write was not applied: {0}")]
    Load(#[from] LoadError),
    /// The write could not be persisted; it was not activated either.
    #[error("the write could not be persisted and was not applied: {0}")]
    Persist(#[source] std::io::Error),
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// A new snapshot with the write is active.
    Applied,
    /// Nothing changed (`If-None-Match: *` on an existing path).
    NotModified,
}

/// Whether `*_test.rego` files are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tests {
    /// Keep them (the `test`, `check` and `eval` commands).
    Include,
    /// Leave them out (serving).
    Exclude,
}

/// How bundles are read: with or without their tests, verified or not.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Whether `*_test.rego` files are compiled.
    pub tests: Tests,
    /// When set, every bundle must carry a signature these keys verify.
    pub verifier: Option<Arc<Verifier>>,
    /// Run the bundles' own `test_*` rules before activating them.
    pub self_test: bool,
    /// How large a bundle and each of its files may be.
    pub limits: SizeLimits,
    /// Read Rego v0 where a bundle's manifest does not say which version
    /// its files are (OPA's `--v0-compatible`).
    pub v0_compatible: bool,
}

impl LoadOptions {
    /// What the CLI tools use: tests included, no verification.
    pub fn tools() -> LoadOptions {
        LoadOptions {
            tests: Tests::Include,
            verifier: None,
            self_test: false,
            limits: SizeLimits::default(),
            v0_compatible: false,
        }
    }

    /// What serving uses: tests left out, verified when `verifier` is set.
    pub fn serving(verifier: Option<Arc<Verifier>>) -> LoadOptions {
        LoadOptions {
            tests: Tests::Exclude,
            verifier,
            self_test: false,
            limits: SizeLimits::default(),
            v0_compatible: false,
        }
    }
}

/// Everything a snapshot is built from, compiled and not yet activated.
#[derive(Debug)]
pub struct Prepared {
    /// The Rego policies and data.
    pub policies: PolicySet,
    /// The Gatekeeper templates and constraints.
    pub gatekeeper: gatekeeper::Library,
    /// The bundles, in load order. Their data was moved into `policies`
    /// (each bundle's `data` is left `null`): read it there.
    pub bundles: Vec<Bundle>,
}

/// Read and compile bundles without activating anything.
pub fn build_policy_set(
    dirs: &[PathBuf],
    options: &EngineOptions,
    load: &LoadOptions,
) -> Result<Prepared, LoadError> {
    build_with_pushed(dirs, options, load, None, None)
}

/// Read and compile bundles, plus the in-memory bundle of pushed data.
fn build_with_pushed(
    dirs: &[PathBuf],
    options: &EngineOptions,
    load: &LoadOptions,
    pushed: Option<&Pushed>,
    previous: Option<&Value>,
) -> Result<Prepared, LoadError> {
    if dirs.is_empty() {
        return Err(LoadError::NoBundles);
    }
    // Data equal to `previous` (the serving snapshot's) is shared with it
    // as it is read, so the old and the new snapshot do not each hold a
    // copy, and no JSON tree of a data file is ever built.
    let mut bundles = dirs
        .iter()
        .map(|dir| bundle::load_sharing(dir, load.verifier.as_deref(), previous, load.limits))
        .collect::<Result<Vec<_>, _>>()?;
    if load.v0_compatible {
        for bundle in &mut bundles {
            let manifest = &bundle.manifest;
            if manifest.rego_version.is_none() && manifest.file_rego_versions.is_none() {
                for file in &mut bundle.policies {
                    file.rego_version = bundle::RegoVersion::V0;
                }
            }
        }
    }
    if let Some(pushed) = pushed {
        let pushed = pushed
            .as_bundle(previous)
            .map_err(|err| CompileError::Data(format!("pushed data: {err}")))?;
        bundles.extend(pushed);
    }
    bundle::check_disjoint_roots(&bundles)?;
    if load.self_test {
        self_test(&bundles, options)?;
    }
    let mut bundles = match load.tests {
        Tests::Include => bundles,
        Tests::Exclude => bundles.into_iter().map(Bundle::without_tests).collect(),
    };
    let policies = PolicySet::compile_taking_data(&mut bundles, options.clone())?;
    // The bundles' data was consumed by the compile: the templates see the
    // inventory as the compiled data holds it (shared, not a second copy).
    let inventory = &policies.data()[gatekeeper::INVENTORY_ROOT];
    let gatekeeper = gatekeeper::from_bundles_with_inventory(&bundles, inventory, options)?;
    for head in policies.undefined_heads() {
        tracing::warn!(%head, "a partial rule's element can be undefined");
    }
    for warning in gatekeeper.warnings() {
        tracing::warn!(%warning, "a partial rule's element can be undefined");
    }
    Ok(Prepared {
        policies,
        gatekeeper,
        bundles,
    })
}

/// Run the bundles' own `test_*` rules; any failure refuses the activation.
fn self_test(bundles: &[Bundle], options: &EngineOptions) -> Result<(), LoadError> {
    let with_tests = PolicySet::compile(bundles, options.clone())?;
    let report = crate::engine::testing::run_tests(&with_tests, None, false)
        .map_err(|err| LoadError::Compile(CompileError::Policies(vec![err])))?;
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome != crate::engine::testing::Outcome::Pass)
        .map(|r| r.name.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(LoadError::SelfTest {
            passed: report.passed(),
            failed,
        })
    }
}

impl DecisionPoint {
    /// A decision point for `sources` with nothing active yet.
    pub fn new(sources: Vec<PathBuf>, options: EngineOptions) -> DecisionPoint {
        DecisionPoint {
            active: ArcSwapOption::empty(),
            last_failure: ArcSwapOption::empty(),
            sources,
            options,
            load: LoadOptions::serving(None),
            generation: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            read_fingerprints: ArcSwap::from_pointee(Vec::new()),
            metrics: None,
            pushed: ArcSwap::from_pointee(Pushed::default()),
            persist: None,
            building: Mutex::new(()),
        }
    }

    /// Persist pushed data to `file` (read back now, written after every
    /// write).
    pub fn with_persisted_pushes(
        mut self,
        file: Option<PathBuf>,
    ) -> std::io::Result<DecisionPoint> {
        if let Some(file) = &file {
            self.pushed.store(Arc::new(Pushed::load(file)?));
        }
        self.persist = file;
        Ok(self)
    }

    /// The data pushed through the API.
    pub fn pushed(&self) -> Arc<Pushed> {
        self.pushed.load_full()
    }

    /// Apply a write to the pushed data: `change` gets the current pushed
    /// document and the active bundles and answers the next document (or
    /// `None`: nothing to do). The new snapshot is built with it and
    /// activated atomically; on any failure nothing changes.
    pub fn push(
        &self,
        change: impl FnOnce(&Pushed, &[BundleInfo]) -> Result<Option<Pushed>, WriteError>,
    ) -> Result<PushOutcome, PushError> {
        let _building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        let active = self.snapshot().ok_or(PushError::NotReady)?;
        let current = self.pushed.load_full();
        let Some(next) = change(&current, &active.bundles)? else {
            return Ok(PushOutcome::NotModified);
        };
        // All or nothing: the write is persisted after its snapshot built
        // and before it is activated; when persisting fails, the serving
        // snapshot and pushed data stay as they were.
        let built = self.build_and_activate_if(&next, || match &self.persist {
            Some(file) => next.save(file),
            None => Ok(()),
        });
        match built {
            Err(LoadError::NotCommitted(err)) => return Err(PushError::Persist(err)),
            built => built?,
        };
        self.pushed.store(Arc::new(next));
        Ok(PushOutcome::Applied)
    }

    /// Record activations and failures in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> DecisionPoint {
        self.metrics = Some(metrics);
        self
    }

    /// Require every bundle to verify with `verifier`.
    pub fn with_verifier(mut self, verifier: Option<Arc<Verifier>>) -> DecisionPoint {
        self.load.verifier = verifier;
        self
    }

    /// Read bundles within `limits`.
    pub fn with_size_limits(mut self, limits: SizeLimits) -> DecisionPoint {
        self.load.limits = limits;
        self
    }

    /// Run each new revision's own `test_*` rules before activating it.
    pub fn with_self_test(mut self, self_test: bool) -> DecisionPoint {
        self.load.self_test = self_test;
        self
    }

    /// Build a decision point and activate its bundles, failing when they do
    /// not load.
    pub fn load(sources: &[PathBuf], options: EngineOptions) -> Result<DecisionPoint, LoadError> {
        let pdp = DecisionPoint::new(sources.to_vec(), options);
        pdp.reload()?;
        Ok(pdp)
    }

    /// Re-read every source and activate the result. On failure the active
    /// snapshot stays and the failure is recorded.
    pub fn reload(&self) -> Result<Arc<Snapshot>, LoadError> {
        let _building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return Err(LoadError::ShuttingDown);
        }
        let pushed = self.pushed.load_full();
        self.build_and_activate(&pushed)
    }

    /// Whether the sources' content differs from what the last build read
    /// ([`bundle::fingerprint`]): a watcher reloads only then.
    pub fn sources_changed(&self) -> bool {
        self.source_fingerprints() != **self.read_fingerprints.load()
    }

    /// The content fingerprint of each source, in order.
    fn source_fingerprints(&self) -> Vec<Option<u64>> {
        self.sources
            .iter()
            .map(|s| bundle::fingerprint(s))
            .collect()
    }

    /// Activate nothing more: shutdown has begun. A reload that is building
    /// now finishes without activating its result.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Build a snapshot from the sources plus `pushed` and activate it.
    fn build_and_activate(&self, pushed: &Pushed) -> Result<Arc<Snapshot>, LoadError> {
        self.build_and_activate_if(pushed, || Ok(()))
    }

    /// [`DecisionPoint::build_and_activate`], activating only when `commit`
    /// (run after a successful build) succeeds; otherwise
    /// [`LoadError::NotCommitted`] with its error.
    fn build_and_activate_if(
        &self,
        pushed: &Pushed,
        commit: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<Arc<Snapshot>, LoadError> {
        let outcome = self.build_and_swap(pushed, commit);
        // The load's scratch (file text, parse tables, a refused build) and,
        // unless a request still holds it, the replaced snapshot are free
        // now: hand the memory back rather than keep the load's high-water
        // mark resident.
        crate::memory::release_free_memory();
        outcome
    }

    fn build_and_swap(
        &self,
        pushed: &Pushed,
        commit: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<Arc<Snapshot>, LoadError> {
        let started = Instant::now();
        self.read_fingerprints
            .store(Arc::new(self.source_fingerprints()));
        // The serving data is held only for the build (a temporary), so
        // the old snapshot can go as soon as the new one is swapped in.
        let built = build_with_pushed(
            &self.sources,
            &self.options,
            &self.load,
            Some(pushed),
            self.snapshot().map(|s| s.policies.data()).as_ref(),
        );
        match built {
            Ok(Prepared {
                policies,
                gatekeeper,
                bundles,
            }) => {
                if self.closed.load(Ordering::SeqCst) {
                    return Err(LoadError::ShuttingDown);
                }
                commit().map_err(LoadError::NotCommitted)?;
                let snapshot = Arc::new(Snapshot {
                    generation: self.generation.fetch_add(1, Ordering::SeqCst) + 1,
                    policies,
                    gatekeeper,
                    bundles: bundles.iter().map(bundle_info).collect(),
                    activated_at: SystemTime::now(),
                    load_duration: started.elapsed(),
                });
                self.active.store(Some(snapshot.clone()));
                if let Some(metrics) = &self.metrics {
                    metrics.activated(&snapshot);
                }
                tracing::info!(
                    generation = snapshot.generation,
                    revisions = ?snapshot.bundles.iter().map(|b| (&b.name, &b.revision)).collect::<Vec<_>>(),
                    load_ms = snapshot.load_duration.as_millis() as u64,
                    "activated policy snapshot"
                );
                Ok(snapshot)
            }
            Err(err) => {
                tracing::warn!(error = %err, "bundle load failed; keeping the active snapshot");
                if let Some(metrics) = &self.metrics {
                    metrics.activation_failed();
                }
                self.last_failure.store(Some(Arc::new(LoadFailure {
                    at: SystemTime::now(),
                    message: err.to_string(),
                })));
                Err(err)
            }
        }
    }

    /// The active snapshot, if any. One atomic load; no lock.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.active.load_full()
    }

    /// The most recent failed load, if any.
    pub fn last_failure(&self) -> Option<Arc<LoadFailure>> {
        self.last_failure.load_full()
    }

    /// The engine options every snapshot is built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluate `path` with `input` against the active snapshot.
    pub fn decide(&self, path: &DataPath, input: Option<Value>) -> Result<Decision, DecideError> {
        let snapshot = self.snapshot().ok_or(DecideError::NotReady)?;
        decide_on(snapshot, path, input)
    }
}

/// Evaluate against a given snapshot (so a batch uses exactly one).
pub fn decide_on(
    snapshot: Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
) -> Result<Decision, DecideError> {
    decide_before(snapshot, path, input, None)
}

/// [`decide_on`], failing with the time limit error once `deadline` (the
/// end of a request's time budget, when it has one) has passed, and
/// evaluating for no longer than is left of it.
pub fn decide_before(
    snapshot: Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
    deadline: Option<Instant>,
) -> Result<Decision, DecideError> {
    decide_with(snapshot, path, input, deadline, false)
}

/// [`decide_before`], with strict builtin errors when `strict` whatever
/// the engine's setting (OPA's `strict-builtin-errors` parameter).
pub fn decide_with(
    snapshot: Arc<Snapshot>,
    path: &DataPath,
    input: Option<Value>,
    deadline: Option<Instant>,
    strict: bool,
) -> Result<Decision, DecideError> {
    let started = Instant::now();
    let limit = match deadline {
        Some(deadline) => deadline.saturating_duration_since(started),
        None => snapshot.policies.options().eval_timeout,
    };
    let result = if strict {
        snapshot
            .policies
            .evaluate_strict_within(path, input, limit)?
    } else {
        snapshot.policies.evaluate_within(path, input, limit)?
    };
    Ok(Decision {
        result,
        eval_ns: started.elapsed().as_nanos() as u64,
        snapshot,
    })
}

fn bundle_info(bundle: &Bundle) -> BundleInfo {
    BundleInfo {
        name: bundle.name.clone(),
        revision: bundle.revision().to_string(),
        roots: bundle.roots().iter().map(|r| r.as_text()).collect(),
        location: bundle.location.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn bundle_dir(dir: &std::path::Path, revision: &str, value: u32) {
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join(".manifest"),
            format!(r#"{{"revision": "{revision}", "roots": ["p"]}}"#),
        )
        .unwrap();
        fs::write(dir.join("p.rego"), format!("package p\nv := {value}\n")).unwrap();
    }

    #[test]
    fn a_failed_reload_keeps_the_active_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        bundle_dir(tmp.path(), "r1", 1);
        let pdp =
            DecisionPoint::load(&[tmp.path().to_path_buf()], EngineOptions::default()).unwrap();
        let path = DataPath::parse("p/v");
        assert_eq!(pdp.decide(&path, None).unwrap().result, Value::from(1));

        fs::write(tmp.path().join("p.rego"), "package p\nv := := 2\n").unwrap();
        assert!(pdp.reload().is_err());
        let decision = pdp.decide(&path, None).unwrap();
        assert_eq!(decision.result, Value::from(1));
        assert_eq!(decision.snapshot.bundles[0].revision, "r1");
        assert!(pdp.last_failure().is_some());

        bundle_dir(tmp.path(), "r2", 2);
        let snapshot = pdp.reload().unwrap();
        assert_eq!(snapshot.generation, 2);
        assert_eq!(pdp.decide(&path, None).unwrap().result, Value::from(2));
    }

    #[test]
    fn overlapping_roots_name_both_bundles() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("alpha");
        let b = tmp.path().join("beta");
        bundle_dir(&a, "1", 1);
        bundle_dir(&b, "1", 1);
        let err = DecisionPoint::load(&[a, b], EngineOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("alpha") && text.contains("beta"), "{text}");
    }

    #[test]
    fn serving_leaves_out_rego_unit_tests() {
        let tmp = tempfile::tempdir().unwrap();
        bundle_dir(tmp.path(), "r1", 1);
        fs::write(
            tmp.path().join("p_test.rego"),
            "package p
test_v if v == 1
",
        )
        .unwrap();
        let dirs = [tmp.path().to_path_buf()];
        let pdp = DecisionPoint::load(&dirs, EngineOptions::default()).unwrap();
        let served = pdp.snapshot().unwrap();
        assert_eq!(served.policies.modules().len(), 1);
        let with_tests =
            build_policy_set(&dirs, &EngineOptions::default(), &LoadOptions::tools()).unwrap();
        assert_eq!(with_tests.policies.modules().len(), 2);
    }

    #[test]
    fn self_test_refuses_a_revision_whose_own_tests_fail() {
        let tmp = tempfile::tempdir().unwrap();
        bundle_dir(tmp.path(), "r1", 1);
        fs::write(
            tmp.path().join("p_test.rego"),
            "package p\ntest_v if v == 1\n",
        )
        .unwrap();
        let dirs = vec![tmp.path().to_path_buf()];
        let pdp = DecisionPoint::new(dirs, EngineOptions::default()).with_self_test(true);
        pdp.reload().expect("its tests pass");
        bundle_dir(tmp.path(), "r2", 2);
        let err = pdp.reload().unwrap_err();
        assert!(matches!(err, LoadError::SelfTest { .. }), "{err}");
        assert!(err.to_string().contains("data.p.test_v"), "{err}");
        let served = pdp.snapshot().unwrap();
        assert_eq!(served.bundles[0].revision, "r1");
        assert_eq!(served.policies.modules().len(), 1, "tests are not served");
    }

    #[test]
    fn a_reload_shares_the_data_that_did_not_change() {
        let tmp = tempfile::tempdir().unwrap();
        bundle_dir(tmp.path(), "r1", 1);
        let write_data = |payments_cpu: u32| {
            fs::write(
                tmp.path().join("data.json"),
                format!(
                    r#"{{"p": {{"teams": {{"payments": {{"cpu": {payments_cpu}}}, "search": {{"cpu": 8}}}}}}}}"#
                ),
            )
            .unwrap()
        };
        write_data(4);
        let pdp =
            DecisionPoint::load(&[tmp.path().to_path_buf()], EngineOptions::default()).unwrap();
        let first = pdp.snapshot().unwrap().policies.data();

        // Same data, new policy: the new snapshot holds the old data itself.
        bundle_dir(tmp.path(), "r2", 2);
        let second = pdp.reload().unwrap().policies.data();
        assert!(crate::engine::shared_data::reused(
            &first["p"],
            &second["p"]
        ));

        // One team changed: only it (and the objects above it) are new.
        write_data(16);
        let third = pdp.reload().unwrap();
        let teams = &third.policies.data()["p"]["teams"];
        assert_eq!(teams["payments"]["cpu"], Value::from(16));
        assert!(!crate::engine::shared_data::reused(
            teams,
            &second["p"]["teams"]
        ));
        assert!(crate::engine::shared_data::reused(
            &teams["search"],
            &second["p"]["teams"]["search"]
        ));
        let decided = pdp
            .decide(&DataPath::parse("p/teams/payments/cpu"), None)
            .unwrap();
        assert_eq!(decided.result, Value::from(16));
    }

    #[test]
    fn nothing_active_is_not_ready() {
        let pdp = DecisionPoint::new(vec![], EngineOptions::default());
        assert!(matches!(
            pdp.decide(&DataPath::parse("x"), None),
            Err(DecideError::NotReady)
        ));
    }

    #[test]
    fn after_close_nothing_more_is_activated() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("p.rego"), "package p\nv := 1\n").unwrap();
        let pdp =
            DecisionPoint::load(&[tmp.path().to_path_buf()], EngineOptions::default()).unwrap();
        let serving = pdp.snapshot().unwrap().generation;
        std::fs::write(tmp.path().join("p.rego"), "package p\nv := 2\n").unwrap();
        pdp.close();
        assert!(matches!(pdp.reload(), Err(LoadError::ShuttingDown)));
        assert_eq!(pdp.snapshot().unwrap().generation, serving);
        let decided = pdp.decide(&DataPath::parse("p/v"), None).unwrap();
        assert_eq!(decided.result, Value::from(1));
    }
}
