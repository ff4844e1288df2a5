//! The Rego unit-test runner behind `portcullis test`: every rule whose name
//! starts with `test_` is evaluated like `opa test` does, with optional line
//! coverage of the policy files.

use std::time::{Duration, Instant};

use regorus::unstable::{Parser, Rule, RuleHead};

use super::{DataPath, PolicyError, PolicySet, Value};

/// The outcome of one test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule evaluated to `true`.
    Pass,
    /// The rule was false or undefined.
    Fail,
    /// Evaluation raised an error.
    Error(String),
}

/// One test's result.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The rule path, `data.pkg.test_name`.
    pub name: String,
    /// The file that declares it.
    pub file: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone)]
pub struct FileCoverage {
    /// The module id.
    pub file: String,
    /// Lines that were evaluated.
    pub covered: Vec<u32>,
    /// Lines that could have been evaluated but were not.
    pub not_covered: Vec<u32>,
}

impl FileCoverage {
    /// Covered lines as a percentage of coverable lines (100 when none).
    pub fn percent(&self) -> f64 {
        percent(self.covered.len(), self.not_covered.len())
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    /// Per-test results, in declaration order.
    pub results: Vec<TestResult>,
    /// Coverage per non-test policy file, when asked for.
    pub coverage: Option<Vec<FileCoverage>>,
}

impl TestReport {
    /// Number of passing tests.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pass))
    }

    /// Number of failing tests.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail))
    }

    /// Number of tests that raised errors.
    pub fn errored(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error(_)))
    }

    /// Total coverage over all policy files, as a percentage.
    pub fn coverage_percent(&self) -> Option<f64> {
        let files = self.coverage.as_ref()?;
        let covered = files.iter().map(|f| f.covered.len()).sum();
        let missed = files.iter().map(|f| f.not_covered.len()).sum();
        Some(percent(covered, missed))
    }

    fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| pred(&r.outcome)).count()
    }
}

fn percent(covered: usize, missed: usize) -> f64 {
    let total = covered + missed;
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

/// Whether a module id names a test file (`*_test.rego`).
pub fn is_test_file(id: &str) -> bool {
    id.ends_with("_test.rego")
}

/// Run every `test_*` rule of `set`, optionally only those whose path
/// contains `filter`.
pub fn run_tests(
    set: &PolicySet,
    filter: Option<&str>,
    coverage: bool,
) -> Result<TestReport, PolicyError> {
    let mut engine = set.engine_copy();
    let tests = discover(&mut engine);
    if coverage {
        engine.set_enable_coverage(true);
    }
    let mut results = Vec::new();
    for (name, file) in tests {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let started = Instant::now();
        let outcome = match engine.eval_rule(name.clone()) {
            Ok(Value::Bool(true)) => Outcome::Pass,
            Ok(_) => Outcome::Fail,
            Err(err) => Outcome::Error(PolicyError::from_regorus(&err).to_string()),
        };
        results.push(TestResult {
            name,
            file,
            outcome,
            duration: started.elapsed(),
        });
    }
    let coverage = if coverage {
        let report = engine
            .get_coverage_report()
            .map_err(|err| PolicyError::from_regorus(&err))?;
        Some(
            report
                .files
                .into_iter()
                .filter(|f| !is_test_file(&f.path))
                .map(|f| FileCoverage {
                    file: f.path,
                    covered: f.covered.into_iter().collect(),
                    not_covered: f.not_covered.into_iter().collect(),
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(TestReport { results, coverage })
}

/// `(rule path, file)` of every distinct `test_*` rule, in module order.
fn discover(engine: &mut regorus::Engine) -> Vec<(String, String)> {
    let packages = engine.get_policy_package_components().unwrap_or_default();
    let mut tests: Vec<(String, String)> = Vec::new();
    for (module, package) in engine.get_modules().iter().zip(packages) {
        let package_path = DataPath::from_segments(package.components.clone());
        for rule in &module.policy {
            let refr = match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Compr { refr, .. },
                    ..
                } => refr,
                _ => continue,
            };
            let Ok(components) = Parser::get_path_ref_components(refr) else {
                continue;
            };
            let [name] = components.as_slice() else {
                continue;
            };
            if !name.text().starts_with("test_") {
                continue;
            }
            let path = format!("{}.{}", package_path.as_ref_str(), name.text());
            if !tests.iter().any(|(p, _)| *p == path) {
                tests.push((path, package.source_file.clone()));
            }
        }
    }
    tests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::bundle_with;
    use crate::engine::EngineOptions;

    #[test]
    fn runs_tests_and_reports_each_outcome_and_coverage() {
        let set = PolicySet::compile(
            &[bundle_with(
                &[
                    (
                        "p.rego",
                        "package p\n\nallow if {\n  input.user == \"ana\"\n}\n\nsize := count(input.items)\n",
                    ),
                    (
                        "p_test.rego",
                        "package p_test\nimport data.p\n\ntest_ana if p.allow with input as {\"user\": \"ana\"}\ntest_bob_fails if p.allow with input as {\"user\": \"bob\"}\ntest_error if p.size == 1 with input as {\"items\": 5}\n",
                    ),
                ],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap();
        let report = run_tests(&set, None, true).unwrap();
        let outcomes: Vec<_> = report
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.outcome.clone()))
            .collect();
        assert_eq!(outcomes[0], ("data.p_test.test_ana", Outcome::Pass));
        assert_eq!(outcomes[1], ("data.p_test.test_bob_fails", Outcome::Fail));
        assert_eq!(report.passed(), 1);
        assert_eq!(report.failed() + report.errored(), 2);
        let coverage = report.coverage.as_ref().unwrap();
        assert_eq!(coverage.len(), 1, "test files are left out of coverage");
        assert!(coverage[0].covered.contains(&4), "{:?}", coverage[0]);

        let filtered = run_tests(&set, Some("ana"), false).unwrap();
        assert_eq!(filtered.results.len(), 1);
        assert!(filtered.coverage.is_none());
    }
}
