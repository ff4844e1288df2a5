//! The policy engine: bundles compiled into one prepared regorus engine, and
//! evaluation of a document path against it. Pure and synchronous.
//!
//! A [`PolicySet`] is built once per activation. Building parses every file,
//! checks packages against bundle roots, loads the merged data and prepares
//! the interpreter (so rule analysis is never paid by a request). Evaluation
//! clones the prepared engine (cheap: its parts are reference-counted), sets
//! the input and evaluates; the template itself is never mutated, so any
//! number of threads can evaluate at once without a lock.

pub mod builtin_guards;
pub mod cidr;
mod error;
pub mod every_index;
mod expr_walk;
pub mod fidelity_warnings;
pub mod input;
mod layout;
pub mod literal_types;
pub mod negation;
pub mod nesting;
pub mod opa_builtins;
mod path;
pub mod query_vars;
pub mod reads;
mod recursion;
pub mod shared_data;
mod strict_scope;
pub mod testing;
pub mod undefined_functions;
pub mod undefined_heads;
mod unused_vars;
mod vm;
pub mod vm_gaps;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use regorus::unstable::{Parser, Rule, RuleHead};
use regorus::utils::limits::ExecutionTimerConfig;

use crate::bundle::{Bundle, RegoVersion, Root};
pub use error::{CompileError, EvalError, PolicyError};
pub(crate) use path::is_identifier;
pub use path::DataPath;

/// The value type evaluation takes and returns.
pub use regorus::Value;

/// Settings for building and evaluating a [`PolicySet`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long one evaluation may run before it fails with
    /// [`EvalError::TimeLimit`].
    pub eval_timeout: Duration,
    /// Run entry points on regorus's bytecode VM where it compiles them
    /// (several times faster); the rest always use the interpreter.
    pub use_vm: bool,
    /// The largest result one call of a builtin that can multiply its
    /// arguments may build ([`builtin_guards`]).
    pub max_builtin_result_bytes: u64,
    /// A builtin that fails (`to_number("x")`, a division by zero) fails
    /// the evaluation; otherwise, OPA's default, the call is undefined and
    /// evaluation goes on.
    pub strict_builtin_errors: bool,
}

/// The default of [`EngineOptions::max_builtin_result_bytes`]: 16 MiB.
pub const DEFAULT_MAX_BUILTIN_RESULT_BYTES: u64 = 16 << 20;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            eval_timeout: Duration::from_millis(100),
            use_vm: true,
            max_builtin_result_bytes: DEFAULT_MAX_BUILTIN_RESULT_BYTES,
            strict_builtin_errors: false,
        }
    }
}

/// The strings of a set or array document (a rule's `deny` messages, say);
/// other elements and other documents give none.
pub fn string_items(document: &Value) -> Vec<String> {
    let items: Vec<&Value> = match document {
        Value::Set(items) => items.iter().collect(),
        Value::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|item| item.as_string().ok().map(|s| s.to_string()))
        .collect()
}

/// A compiled policy module, as the policy API lists it.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// The module id (`<bundle>/<path>`).
    pub id: String,
    /// The Rego source.
    pub raw: String,
    /// The package, as `data.a.b`.
    pub package: String,
    /// The bundle the module came from.
    pub bundle: String,
}

/// Prepared policies and data, ready to evaluate concurrently.
#[derive(Clone)]
pub struct PolicySet {
    template: regorus::Engine,
    /// Paths (`data.a.b`) that name a complete rule: evaluated with the fast
    /// rule entry point rather than a general query.
    rule_paths: HashSet<String>,
    /// VM programs for the rule paths the VM compiles.
    vm: vm::VmPrograms,
    /// Entry points kept on the interpreter because the VM would answer
    /// them differently from OPA, with the binding that decided it.
    vm_gaps: Vec<(String, vm_gaps::VmGap)>,
    undefined_heads: Vec<undefined_heads::UndefinedHead>,
    /// What is likely to surprise an author used to OPA
    /// ([`fidelity_warnings`], [`negation`]).
    warnings: Vec<PolicyError>,
    /// What each rule reads (for paths not precomputed below).
    summaries: Arc<Vec<reads::RuleSummary>>,
    /// What each rule path and package path reads, computed at activation.
    reads: Arc<HashMap<String, Arc<reads::ReadSet>>>,
    /// The same reads as trees, for converting only the read input parts.
    read_trees: Arc<HashMap<String, Arc<reads::ReadTree>>>,
    modules: Vec<ModuleInfo>,
    options: EngineOptions,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("modules", &self.modules.len())
            .field("rule_paths", &self.rule_paths.len())
            .finish()
    }
}

impl PolicySet {
    /// Compile bundles into a prepared engine.
    ///
    /// Every file is parsed even after one fails, so all parse errors are
    /// reported at once. Roots must already be disjoint
    /// ([`crate::bundle::check_disjoint_roots`]).
    pub fn compile(bundles: &[Bundle], options: EngineOptions) -> Result<PolicySet, CompileError> {
        PolicySet::compile_with_data(bundles, None, options)
    }

    /// [`PolicySet::compile`], with `extra` merged into the data after the
    /// bundles' (an engine value, so a large document can be shared between
    /// several sets without being copied).
    pub fn compile_with_data(
        bundles: &[Bundle],
        extra: Option<Value>,
        options: EngineOptions,
    ) -> Result<PolicySet, CompileError> {
        // Engine values are reference-counted: these clones are shallow.
        let data = bundles.iter().map(|b| b.data.clone()).collect();
        PolicySet::build(bundles, data, extra, options)
    }

    /// [`PolicySet::compile`], taking each bundle's data out of it (left
    /// `null`), so the compiled set is the only holder of the data. A
    /// reload reads its bundles sharing with the serving revision's data
    /// ([`crate::bundle::load_sharing`]), so what is unchanged is held once
    /// while both sets are alive.
    pub fn compile_taking_data(
        bundles: &mut [Bundle],
        options: EngineOptions,
    ) -> Result<PolicySet, CompileError> {
        let data = bundles
            .iter_mut()
            .map(|b| std::mem::replace(&mut b.data, Value::Null))
            .collect();
        PolicySet::build(bundles, data, None, options)
    }

    /// Compile `bundles` with `data[i]` as bundle `i`'s data.
    fn build(
        bundles: &[Bundle],
        data: Vec<Value>,
        extra: Option<Value>,
        options: EngineOptions,
    ) -> Result<PolicySet, CompileError> {
        let timer = timer_config(options.eval_timeout);
        let mut engine = regorus::Engine::new();
        engine.set_policy_length_config(policy_length());
        engine.set_execution_timer_config(timer);
        cidr::register(&mut engine, options.strict_builtin_errors)
            .map_err(|err| CompileError::Builtins(err.to_string()))?;
        engine.set_strict_builtin_errors(options.strict_builtin_errors);
        opa_builtins::register(
            &mut engine,
            options.max_builtin_result_bytes,
            options.strict_builtin_errors,
        )
        .map_err(|err| CompileError::Builtins(err.to_string()))?;
        let mut errors = Vec::new();
        let mut modules = Vec::new();
        // Modules whose negations were rewritten, by file, so that errors
        // point at what was written.
        let mut maps: HashMap<String, negation::SourceMap> = HashMap::new();
        let mut warnings = Vec::new();
        for bundle in bundles {
            let roots = bundle.roots();
            for file in &bundle.policies {
                if let Err(err) = nesting::check(&file.source, &file.id) {
                    errors.push(err);
                    continue;
                }
                let v0 = file.rego_version == RegoVersion::V0;
                let laid_out = layout::explicit(&file.source);
                let source = laid_out.as_deref().unwrap_or(&file.source);
                let rewritten = match negation::prepare(&file.id, source, v0) {
                    Ok(rewritten) => rewritten,
                    Err(found) => {
                        errors.extend(found);
                        continue;
                    }
                };
                if let Some(map) = rewritten.map {
                    maps.insert(file.id.clone(), map);
                }
                warnings.extend(rewritten.warnings);
                engine.set_rego_v0(v0);
                match engine.add_policy(file.id.clone(), rewritten.source) {
                    Ok(package) => {
                        check_package_root(bundle, &roots, &file.id, &package)?;
                        modules.push(ModuleInfo {
                            id: file.id.clone(),
                            raw: file.source.clone(),
                            package,
                            bundle: bundle.name.clone(),
                        });
                    }
                    Err(err) => errors.push(PolicyError::from_regorus_in(&err, &file.id)),
                }
            }
        }
        let refused = |errors: Vec<PolicyError>| CompileError::Policies(relocate(&maps, errors));
        if !errors.is_empty() {
            return Err(refused(errors));
        }
        // OPA refuses a call of an undefined function when it compiles;
        // regorus would fail only when the call is evaluated.
        let undefined = undefined_functions::find(&mut engine);
        if !undefined.is_empty() {
            return Err(refused(undefined));
        }
        // OPA's type errors on literal arguments and references.
        let parsed_modules = engine.get_modules();
        let parsed: Vec<&regorus::unstable::Module> =
            parsed_modules.iter().map(|m| m.as_ref()).collect();
        let mut mistyped = literal_types::find(&parsed);
        mistyped.extend(unused_vars::find(&parsed));
        if !mistyped.is_empty() {
            return Err(refused(mistyped));
        }
        warnings.extend(relocate(&maps, fidelity_warnings::find(&parsed)));
        drop(parsed);
        for warning in &warnings {
            tracing::warn!(%warning, "see docs/opa-compatibility.md");
        }
        // OPA refuses recursion when it compiles; regorus would recurse on
        // a function until the stack overflows and the process aborts.
        let (summaries, static_refs) = reads::summarise_with_refs(&mut engine);
        let recursive = recursion::find(&summaries, &static_refs);
        if !recursive.is_empty() {
            return Err(refused(recursive));
        }
        drop(static_refs);
        for (bundle, data) in bundles.iter().zip(data) {
            engine
                .add_data(data)
                .map_err(|err| CompileError::Data(format!("bundle {}: {err}", bundle.name)))?;
        }
        if let Some(extra) = extra {
            engine
                .add_data(extra)
                .map_err(|err| CompileError::Data(err.to_string()))?;
        }
        // Preparing analyses every module (unsafe variables, recursion,
        // conflicts) and stores the result in the engine, so that clones of
        // it start ready.
        engine
            .eval_query("true".to_string(), false)
            .map_err(|err| refused(vec![PolicyError::from_regorus(&err)]))?;
        // What no regorus engine would answer like OPA is refused here.
        let parsed = engine.get_modules();
        let rules = || parsed.iter().flat_map(|module| module.policy.iter());
        let misread: Vec<PolicyError> = rules()
            .flat_map(|rule| every_index::find(rule))
            .filter(|found| found.negated)
            .map(|found| found.to_policy_error())
            .collect();
        if !misread.is_empty() {
            return Err(refused(misread));
        }
        let heads: Vec<undefined_heads::UndefinedHead> = rules()
            .filter_map(|rule| undefined_heads::find(rule))
            .collect();
        let rule_paths = collect_rule_paths(&mut engine);
        let entry_points = rule_paths
            .keys()
            .map(|path| DataPath::from_dotted(path))
            .chain(
                summaries
                    .iter()
                    .flat_map(|s| (1..=s.package_len).map(|n| s.path[..n].to_vec()))
                    .map(DataPath::from_segments),
            );
        let reads: HashMap<String, Arc<reads::ReadSet>> = entry_points
            .map(|path| {
                let set = reads::cone(&summaries, path.segments());
                (path.as_ref_str().to_string(), Arc::new(set))
            })
            .collect();
        // Entry points the VM would answer differently from OPA stay on the
        // interpreter (sorted, so the list reads the same every time).
        let mut gaps = Vec::new();
        let vm = if options.use_vm {
            let mut servable: Vec<&String> = rule_paths
                .iter()
                .filter(|(_, file)| !testing::is_test_file(file))
                .map(|(path, _)| path)
                .collect();
            servable.sort();
            servable.retain(|path| {
                let entry = DataPath::from_dotted(path);
                let Some((rule, gap)) = reads::cone_vm_gap(&summaries, entry.segments()) else {
                    return true;
                };
                tracing::info!(
                    entry_point = %path,
                    rule = %rule.path.join("."),
                    %gap,
                    "evaluated by the interpreter: the VM would answer it differently from OPA"
                );
                gaps.push(((*path).clone(), gap.clone()));
                false
            });
            vm::VmPrograms::compile(
                &engine,
                servable.into_iter(),
                timer,
                options.strict_builtin_errors,
            )
        } else {
            vm::VmPrograms::default()
        };
        Ok(PolicySet {
            template: engine,
            rule_paths: rule_paths.into_keys().collect(),
            vm,
            vm_gaps: gaps,
            undefined_heads: heads,
            warnings,
            summaries: Arc::new(summaries),
            read_trees: Arc::new(
                reads
                    .iter()
                    .map(|(path, set): (&String, &Arc<reads::ReadSet>)| {
                        (path.clone(), Arc::new(reads::ReadTree::new(&set.input)))
                    })
                    .collect(),
            ),
            reads: Arc::new(reads),
            modules,
            options,
        })
    }

    /// The modules this set was compiled from.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }

    /// Warnings about constructs that surprise authors used to OPA or that
    /// Portcullis answers differently (docs/opa-compatibility.md), each at
    /// its place in the module as written.
    pub fn warnings(&self) -> &[PolicyError] {
        &self.warnings
    }

    /// Entry points evaluated on the bytecode VM.
    pub fn vm_entry_points(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.vm.entry_points().cloned().collect();
        paths.sort();
        paths
    }

    /// Entry points kept on the interpreter because regorus's VM would
    /// answer them differently from OPA ([`vm_gaps`]), sorted, each with
    /// the binding that decided it.
    pub fn vm_gaps(&self) -> &[(String, vm_gaps::VmGap)] {
        &self.vm_gaps
    }

    /// Partial rules whose head element can be undefined, which regorus's
    /// interpreter evaluates differently from OPA ([`undefined_heads`]).
    pub fn undefined_heads(&self) -> &[undefined_heads::UndefinedHead] {
        &self.undefined_heads
    }

    /// Whether `path` is evaluated on the bytecode VM.
    pub fn runs_on_vm(&self, path: &DataPath) -> bool {
        self.vm.has(path.as_ref_str())
    }

    /// What evaluating `path` can read: the input paths its dependency cone
    /// refers to and the non-deterministic builtins it calls.
    pub fn reads_of(&self, path: &DataPath) -> Arc<reads::ReadSet> {
        match self.reads.get(path.as_ref_str()) {
            Some(set) => set.clone(),
            None => Arc::new(reads::cone(&self.summaries, path.segments())),
        }
    }

    /// [`PolicySet::reads_of`] as a tree of input paths.
    pub fn read_tree_of(&self, path: &DataPath) -> Arc<reads::ReadTree> {
        match self.read_trees.get(path.as_ref_str()) {
            Some(tree) => tree.clone(),
            None => Arc::new(reads::ReadTree::new(&self.reads_of(path).input)),
        }
    }

    /// Whether `path` (`data.a.b`) names a rule.
    pub fn has_rule(&self, path: &str) -> bool {
        self.rule_paths.contains(path)
    }

    /// Every rule path with what it reads, sorted (for the status API).
    pub fn entry_point_reads(&self) -> Vec<(String, Arc<reads::ReadSet>)> {
        let mut all: Vec<_> = self
            .rule_paths
            .iter()
            .map(|path| (path.clone(), self.reads_of(&DataPath::from_dotted(path))))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The data document (bundle data and any extra data), shared.
    pub fn data(&self) -> Value {
        self.template.get_data()
    }

    /// The options it was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Evaluate the document at `path` with `input`.
    ///
    /// Returns [`Value::Undefined`] when the document is undefined (no rule
    /// produced a value and no data is there).
    pub fn evaluate(&self, path: &DataPath, input: Option<Value>) -> Result<Value, EvalError> {
        self.evaluate_within(path, input, self.options.eval_timeout)
    }

    /// [`PolicySet::evaluate_within`] with strict builtin errors whatever
    /// the set's setting: a builtin that fails fails the evaluation (OPA's
    /// `strict-builtin-errors` request parameter).
    pub fn evaluate_strict_within(
        &self,
        path: &DataPath,
        input: Option<Value>,
        limit: Duration,
    ) -> Result<Value, EvalError> {
        let _strict = strict_scope::Strict::enter();
        self.evaluate_within(path, input, limit)
    }

    /// [`PolicySet::evaluate`] within `limit` (at most the configured
    /// evaluation timeout): what is left of a request's time budget.
    pub fn evaluate_within(
        &self,
        path: &DataPath,
        input: Option<Value>,
        limit: Duration,
    ) -> Result<Value, EvalError> {
        let limit = limit.min(self.options.eval_timeout);
        if limit.is_zero() {
            return Err(EvalError::TimeLimit {
                limit: self.options.eval_timeout,
            });
        }
        if !self.vm.has(path.as_ref_str()) {
            return self.interpret(path, input, limit);
        }
        // The input is kept (a reference-count increment) for the fallback.
        match self.vm.evaluate(path.as_ref_str(), input.clone(), limit) {
            // The VM answers undefined where the interpreter raises some
            // errors (conflicting values for one complete rule), so an
            // undefined answer is confirmed by the interpreter. Decisions are
            // rarely undefined, so this costs nothing in practice.
            None | Some(Ok(Value::Undefined)) => self.interpret(path, input, limit),
            Some(result) => result.map_err(|err| EvalError::from_regorus(&err, limit)),
        }
    }

    /// Evaluate on the interpreter, whatever the VM could do.
    pub fn evaluate_interpreted(
        &self,
        path: &DataPath,
        input: Option<Value>,
    ) -> Result<Value, EvalError> {
        self.interpret(path, input, self.options.eval_timeout)
    }

    /// Evaluate on the interpreter within `limit`.
    fn interpret(
        &self,
        path: &DataPath,
        input: Option<Value>,
        limit: Duration,
    ) -> Result<Value, EvalError> {
        let mut engine = self.template.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        if limit < self.options.eval_timeout {
            engine.set_execution_timer_config(timer_config(limit));
        }
        if strict_scope::active() && !self.options.strict_builtin_errors {
            engine.set_strict_builtin_errors(true);
        }
        if self.rule_paths.contains(path.as_ref_str()) {
            return engine
                .eval_rule(path.as_ref_str().to_string())
                .map_err(|err| EvalError::from_regorus(&err, limit));
        }
        let results = engine
            .eval_query(path.as_ref_str().to_string(), false)
            .map_err(|err| EvalError::from_regorus(&err, limit))?;
        Ok(results
            .result
            .into_iter()
            .next()
            .and_then(|row| row.expressions.into_iter().next())
            .map(|expr| expr.value)
            .unwrap_or(Value::Undefined))
    }

    /// Evaluate an arbitrary Rego query, returning OPA's result rows.
    pub fn query(
        &self,
        query: &str,
        input: Option<Value>,
    ) -> Result<regorus::QueryResults, EvalError> {
        nesting::check(query, "<query>").map_err(EvalError::Failed)?;
        let rewritten = negation::prepare_query(query).map_err(|errors| {
            EvalError::Failed(errors.into_iter().next().unwrap_or_else(|| PolicyError {
                message: "the query could not be prepared".to_string(),
                location: None,
            }))
        })?;
        let mut engine = self.template.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        let mut results = engine
            .eval_query(rewritten.clone(), false)
            .map_err(|err| EvalError::from_regorus(&err, self.options.eval_timeout))?;
        if rewritten != query {
            // The literals and variables the rewrite added are not the
            // caller's.
            for row in &mut results.result {
                row.expressions
                    .retain(|expr| !negation::is_hoisted(expr.text.trim_start()));
                if let Ok(bindings) = row.bindings.as_object_mut() {
                    bindings.retain(|name, _| {
                        name.as_string()
                            .map_or(true, |name| !negation::is_hoisted(name))
                    });
                }
            }
        }
        Ok(results)
    }

    /// A mutable copy of the prepared engine, for tools (the test runner).
    pub(crate) fn engine_copy(&self) -> regorus::Engine {
        self.template.clone()
    }
}

/// `errors` with their locations in modules whose negations were rewritten
/// ([`negation`]) moved back to where the author wrote them.
fn relocate(
    maps: &HashMap<String, negation::SourceMap>,
    mut errors: Vec<PolicyError>,
) -> Vec<PolicyError> {
    for error in &mut errors {
        if let Some(location) = &mut error.location {
            if let Some(map) = maps.get(&location.file) {
                let (row, col) = map.original_position(location.row, location.col);
                location.row = row;
                location.col = col;
            }
        }
    }
    errors
}

/// regorus's limits on a module's text, with lines up to 64 KiB (OPA has
/// no limit: a certificate or a JWK set written on one line is ordinary;
/// regorus's default is 1 KiB).
pub fn policy_length() -> regorus::PolicyLengthConfig {
    regorus::PolicyLengthConfig {
        max_col: std::num::NonZeroU32::new(1 << 16).unwrap_or(std::num::NonZeroU32::MIN),
        ..regorus::PolicyLengthConfig::default()
    }
}

/// regorus's cooperative time limit: `limit`, checked every 64 steps.
fn timer_config(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::MIN.saturating_add(63),
    }
}

fn check_package_root(
    bundle: &Bundle,
    roots: &[Root],
    file: &str,
    package: &str,
) -> Result<(), CompileError> {
    let segments = DataPath::from_dotted(package).segments().to_vec();
    if crate::bundle::within_roots(roots, &segments) {
        return Ok(());
    }
    Err(CompileError::PackageOutsideRoots {
        file: file.to_string(),
        package: package.to_string(),
        bundle: bundle.name.clone(),
        roots: roots
            .iter()
            .map(Root::as_text)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Every path that names one whole, non-function rule with a static head,
/// with the file that declares it.
fn collect_rule_paths(engine: &mut regorus::Engine) -> HashMap<String, String> {
    let packages = engine.get_policy_package_components().unwrap_or_default();
    let mut paths = HashMap::new();
    for (module, package) in engine.get_modules().iter().zip(packages) {
        if !package.components.iter().all(|c| is_identifier(c)) {
            continue;
        }
        for rule in &module.policy {
            let refr = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => refr,
                    RuleHead::Func { .. } => continue,
                },
                Rule::Default { refr, args, .. } if args.is_empty() => refr,
                Rule::Default { .. } => continue,
            };
            let Ok(components) = Parser::get_path_ref_components(refr) else {
                continue;
            };
            let names: Vec<&str> = components.iter().map(|span| span.text()).collect();
            if names.is_empty() || !names.iter().all(|n| is_identifier(n)) {
                continue;
            }
            let mut path = String::from("data");
            for part in package.components.iter().map(String::as_str).chain(names) {
                path.push('.');
                path.push_str(part);
            }
            paths.insert(path, package.source_file.clone());
        }
    }
    paths
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bundle::{Manifest, PolicyFile};

    /// What `analyse` finds in each rule of `module` (a file `test.rego`).
    pub(crate) fn each_rule<T, I: IntoIterator<Item = T>>(
        module: &str,
        analyse: impl Fn(&Rule) -> I,
    ) -> Vec<T> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("test.rego".into(), module.into())
            .unwrap();
        engine
            .get_modules()
            .iter()
            .flat_map(|m| m.policy.iter().flat_map(|rule| analyse(rule)))
            .collect()
    }

    pub(crate) fn bundle_with(files: &[(&str, &str)], data: serde_json::Value) -> Bundle {
        Bundle {
            name: "test".into(),
            location: "test".into(),
            manifest: Manifest::default(),
            policies: files
                .iter()
                .map(|(path, source)| PolicyFile {
                    id: format!("test/{path}"),
                    path: path.to_string(),
                    source: source.to_string(),
                    rego_version: RegoVersion::V1,
                })
                .collect(),
            data: Value::from(data),
            gatekeeper: Vec::new(),
        }
    }

    fn compile(files: &[(&str, &str)]) -> PolicySet {
        PolicySet::compile(
            &[bundle_with(files, serde_json::json!({}))],
            EngineOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn rule_package_and_data_paths_evaluate() {
        let set = PolicySet::compile(
            &[bundle_with(
                &[("p.rego", "package p\nallow if input.x == 1\nnames contains n if some n in [\"a\"]\nf(x) := x\n")],
                serde_json::json!({"teams": {"a": {"cpu": 4}}}),
            )],
            EngineOptions::default(),
        )
        .unwrap();
        let input = Value::from_json_str(r#"{"x": 1}"#).unwrap();
        assert!(set.rule_paths.contains("data.p.allow"));
        assert!(set.rule_paths.contains("data.p.names"));
        assert!(!set.rule_paths.contains("data.p.f"));
        assert_eq!(
            set.evaluate(&DataPath::parse("p/allow"), Some(input.clone()))
                .unwrap(),
            Value::from(true)
        );
        assert_eq!(
            set.evaluate(&DataPath::parse("p/allow"), None).unwrap(),
            Value::Undefined
        );
        let package = set.evaluate(&DataPath::parse("p"), Some(input)).unwrap();
        assert_eq!(package["allow"], Value::from(true));
        assert_eq!(
            set.evaluate(&DataPath::parse("teams/a/cpu"), None).unwrap(),
            Value::from(4)
        );
        assert_eq!(
            set.evaluate(&DataPath::parse("nothing/here"), None)
                .unwrap(),
            Value::Undefined
        );
    }

    #[test]
    fn parse_errors_of_every_file_are_reported_with_positions() {
        let err = PolicySet::compile(
            &[bundle_with(
                &[
                    ("a.rego", "package a\nallow if {\n"),
                    ("b.rego", "package b\n\nx := := 1\n"),
                    ("c.rego", "package c\nok := 1\n"),
                ],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap_err();
        let errors = err.errors();
        assert_eq!(errors.len(), 2, "{err}");
        assert_eq!(errors[0].location.as_ref().unwrap().file, "test/a.rego");
        let b = errors[1].location.as_ref().unwrap();
        assert_eq!((b.file.as_str(), b.row), ("test/b.rego", 3));
        assert!(b.col > 1);
    }

    /// Nesting regorus would take minutes to parse is refused before it
    /// parses, in place; an error regorus's parser gives without a
    /// position (`some f()`) still names its file.
    #[test]
    fn deep_nesting_and_unplaced_parse_errors_name_their_file() {
        let deep = format!("package d\n\nx := {}1{}\n", "[".repeat(30), "]".repeat(30));
        let err = PolicySet::compile(
            &[bundle_with(
                &[
                    ("d.rego", deep.as_str()),
                    ("s.rego", "package s\nsome e()\n"),
                ],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap_err();
        let errors = err.errors();
        assert_eq!(errors.len(), 2, "{err}");
        let d = errors[0].location.as_ref().unwrap();
        assert_eq!((d.file.as_str(), d.row, d.col), ("test/d.rego", 3, 22));
        assert!(errors[0].message.contains("nest 17 deep"), "{err}");
        let s = errors[1].location.as_ref().unwrap();
        assert_eq!(s.file, "test/s.rego", "{err}");
    }

    #[test]
    fn unsafe_variables_fail_at_compile_time_with_a_position() {
        let err = PolicySet::compile(
            &[bundle_with(
                &[("a.rego", "package a\n\nallow if {\n  x > 1\n}\n")],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap_err();
        let errors = err.errors();
        let loc = errors[0].location.as_ref().expect("location");
        assert_eq!(loc.file, "test/a.rego");
        assert_eq!(loc.row, 4, "{err}");
    }

    #[test]
    fn package_outside_roots_is_refused() {
        let mut bundle = bundle_with(
            &[("a.rego", "package other\nx := 1\n")],
            serde_json::json!({}),
        );
        bundle.manifest.roots = Some(vec!["mine".into()]);
        let err = PolicySet::compile(&[bundle], EngineOptions::default()).unwrap_err();
        assert!(
            matches!(err, CompileError::PackageOutsideRoots { .. }),
            "{err}"
        );
    }

    #[test]
    fn rego_v0_files_parse_when_marked() {
        let mut bundle = bundle_with(
            &[("a.rego", "package a\nallow { true }\n")],
            serde_json::json!({}),
        );
        assert!(
            PolicySet::compile(std::slice::from_ref(&bundle), EngineOptions::default()).is_err()
        );
        bundle.policies[0].rego_version = RegoVersion::V0;
        let set = PolicySet::compile(&[bundle], EngineOptions::default()).unwrap();
        assert_eq!(
            set.evaluate(&DataPath::parse("a/allow"), None).unwrap(),
            Value::from(true)
        );
    }

    #[test]
    fn conflicting_values_are_an_evaluation_error() {
        let set = compile(&[(
            "a.rego",
            "package a\nx := 1 if input.a\nx := 2 if input.b\n",
        )]);
        let input = Value::from_json_str(r#"{"a": true, "b": true}"#).unwrap();
        let err = set
            .evaluate(&DataPath::parse("a/x"), Some(input))
            .unwrap_err();
        assert!(matches!(err, EvalError::Failed(_)), "{err}");
    }

    #[test]
    fn a_long_evaluation_stops_at_the_time_limit() {
        let set = PolicySet::compile(
            &[bundle_with(
                &[("a.rego", "package a\nn := count([x | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000); x := i * j])\n")],
                serde_json::json!({}),
            )],
            EngineOptions {
                eval_timeout: Duration::from_millis(50),
                ..EngineOptions::default()
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = set.evaluate(&DataPath::parse("a/n"), None).unwrap_err();
        assert!(matches!(err, EvalError::TimeLimit { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
