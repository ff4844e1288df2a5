//! regorus's bytecode VM (`rvm`) for the entry points it can compile.
//!
//! At activation every servable rule is compiled to a VM program; rules the
//! compiler refuses (the VM has no `with`, no extension builtins and some
//! `walk` and partial-object forms are missing) stay on the interpreter.
//! Each program keeps one idle VM per thread that has run it (a VM resets
//! all of its execution state at the start of every run), so a request pays
//! neither for building a VM nor for checking the data against the
//! program's rule tree; nothing is shared mutably between threads and no
//! lock is taken. The idle VMs belong to the policy set, not to the
//! threads: when a revision is retired its VMs, and the data set into them,
//! go with it, whether or not a thread ever runs a request again.
//! `tests/vm_differential.rs` checks that both paths answer alike on the
//! policy library.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use thread_local::ThreadLocal;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Value;

/// No instruction-count ceiling in practice: the time limit governs.
const MAX_INSTRUCTIONS: usize = 500_000_000;

/// One compiled program and its idle VMs, one per thread that has run it,
/// each with the program loaded and the data set.
struct Pooled {
    program: Arc<Program>,
    idle: ThreadLocal<RefCell<Option<RegoVM>>>,
}

/// Compiled VM programs, one per entry point, with the data they read.
#[derive(Clone)]
pub(super) struct VmPrograms {
    programs: HashMap<String, Arc<Pooled>>,
    data: Value,
    timer: Option<ExecutionTimerConfig>,
    strict_builtin_errors: bool,
}

impl Default for VmPrograms {
    fn default() -> Self {
        VmPrograms {
            programs: HashMap::new(),
            data: Value::new_object(),
            timer: None,
            strict_builtin_errors: false,
        }
    }
}

impl VmPrograms {
    /// Compile each of `entry_points` that the VM supports; builtin errors
    /// are errors when `strict_builtin_errors`, else the call is undefined
    /// (OPA's default).
    pub(super) fn compile<'a>(
        engine: &regorus::Engine,
        entry_points: impl Iterator<Item = &'a String>,
        timer: ExecutionTimerConfig,
        strict_builtin_errors: bool,
    ) -> VmPrograms {
        let mut programs = HashMap::new();
        for path in entry_points {
            let mut copy = engine.clone();
            let compiled = copy
                .compile_with_entrypoint(&regorus::Rc::from(path.as_str()))
                .and_then(|policy| {
                    Compiler::compile_from_policy(&policy, &[path.as_str()])
                        .map_err(|err| anyhow::anyhow!("{err}"))
                });
            match compiled {
                Ok(mut program) => {
                    // Builtins that regorus answers differently from OPA
                    // call OPA's implementation (as the interpreter does).
                    match std::sync::Arc::get_mut(&mut program) {
                        Some(program) => super::opa_builtins::patch_program(program),
                        None => {
                            tracing::debug!(entry_point = %path, "evaluated by the interpreter: its program is shared");
                            continue;
                        }
                    }
                    let pooled = Pooled {
                        program,
                        idle: ThreadLocal::new(),
                    };
                    programs.insert(path.clone(), Arc::new(pooled));
                }
                Err(err) => {
                    tracing::debug!(entry_point = %path, error = %err, "evaluated by the interpreter");
                }
            }
        }
        VmPrograms {
            programs,
            data: engine.get_data(),
            timer: Some(timer),
            strict_builtin_errors,
        }
    }

    /// Whether `path` runs on the VM.
    pub(super) fn has(&self, path: &str) -> bool {
        self.programs.contains_key(path)
    }

    /// The entry points that run on the VM.
    pub(super) fn entry_points(&self) -> impl Iterator<Item = &String> {
        self.programs.keys()
    }

    /// Evaluate `path` on the VM, or `None` when it has no program for it.
    pub(super) fn evaluate(
        &self,
        path: &str,
        input: Option<Value>,
        limit: std::time::Duration,
    ) -> Option<anyhow::Result<Value>> {
        let pooled = self.programs.get(path)?;
        let idle = pooled.idle.get_or_default();
        // Taken out for the run: an evaluation that re-entered this program
        // on this thread would build a VM of its own, not share this one.
        let mut vm = match idle.borrow_mut().take() {
            Some(vm) => vm,
            None => match self.new_vm(&pooled.program) {
                Ok(vm) => vm,
                Err(err) => return Some(Err(err)),
            },
        };
        vm.set_input(input.unwrap_or(Value::Undefined));
        let strict = super::strict_scope::active();
        if strict {
            vm.set_strict_builtin_errors(true);
        }
        if let Some(timer) = self.timer {
            vm.set_execution_timer_config(Some(ExecutionTimerConfig { limit, ..timer }));
        }
        let result = vm.execute().map_err(anyhow::Error::from);
        // The pooled VM keeps the configured limit and mode for its next run.
        vm.set_execution_timer_config(self.timer);
        if strict {
            vm.set_strict_builtin_errors(self.strict_builtin_errors);
        }
        // A VM whose run failed (a time limit, say) is not kept: only VMs
        // that completed a run go back to the pool.
        if result.is_ok() {
            vm.set_input(Value::Undefined);
            *idle.borrow_mut() = Some(vm);
        }
        Some(result)
    }

    /// A VM with `program` loaded, limits applied and the data set (which
    /// checks the data against the program's rule tree, once per VM).
    fn new_vm(&self, program: &Arc<Program>) -> anyhow::Result<RegoVM> {
        let mut vm = RegoVM::new();
        vm.load_program(program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        // As the interpreter: OPA's default (an erring call is undefined)
        // unless strict builtin errors were asked for.
        vm.set_strict_builtin_errors(self.strict_builtin_errors);
        vm.set_execution_timer_config(self.timer);
        vm.set_data(self.data.clone())?;
        Ok(vm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::bundle_with;
    use crate::engine::{DataPath, EngineOptions, PolicySet};

    const POLICY: &str = "package p\nechoed := input.x\ntotal := sum([n | some n in input.xs])\n";

    fn policy_set(data: serde_json::Value) -> PolicySet {
        let set = PolicySet::compile(
            &[bundle_with(&[("p.rego", POLICY)], data)],
            EngineOptions::default(),
        )
        .unwrap();
        assert!(set.runs_on_vm(&DataPath::parse("p/echoed")));
        set
    }

    /// How many programs of `set` have an idle VM on this thread.
    fn idle_count(set: &PolicySet) -> usize {
        set.vm
            .programs
            .values()
            .filter(|pooled| pooled.idle.get().is_some_and(|vm| vm.borrow().is_some()))
            .count()
    }

    fn eval(set: &PolicySet, path: &str, input: &str) -> Value {
        set.evaluate(
            &DataPath::parse(path),
            Some(Value::from_json_str(input).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn a_reused_vm_answers_each_input_afresh() {
        let set = policy_set(serde_json::json!({}));
        // Rule results are cached within one run; a reused VM must not
        // carry them into the next.
        for x in 0..20 {
            let input = format!(r#"{{"x": {x}, "xs": [{x}, 1]}}"#);
            assert_eq!(eval(&set, "p/echoed", &input), Value::from(x));
            assert_eq!(eval(&set, "p/total", &input), Value::from(x + 1));
        }
        // One idle VM per program on this thread, not one per evaluation.
        assert_eq!(idle_count(&set), 2);
    }

    #[test]
    fn a_failed_run_is_not_kept_and_the_next_one_succeeds() {
        let set = PolicySet::compile(
            &[bundle_with(&[("p.rego", POLICY)], serde_json::json!({}))],
            EngineOptions {
                strict_builtin_errors: true,
                ..EngineOptions::default()
            },
        )
        .unwrap();
        assert!(set.runs_on_vm(&DataPath::parse("p/total")));
        assert_eq!(eval(&set, "p/total", r#"{"xs": [1, 2]}"#), Value::from(3));
        // sum over a string is a builtin error (strict builtin errors).
        assert!(set
            .evaluate(
                &DataPath::parse("p/total"),
                Some(Value::from_json_str(r#"{"xs": ["a"]}"#).unwrap())
            )
            .is_err());
        assert_eq!(eval(&set, "p/total", r#"{"xs": [4]}"#), Value::from(4));
    }

    #[test]
    fn a_retired_policy_set_takes_its_idle_vms_and_data_from_every_thread() {
        let old = policy_set(serde_json::json!({"big": "old revision"}));
        let data = old.data()["big"].clone();
        let Value::String(text) = &data else {
            panic!("not a string: {data}")
        };
        assert_eq!(eval(&old, "p/echoed", r#"{"x": 1}"#), Value::from(1));
        assert_eq!(idle_count(&old), 1);
        // A second thread runs the program too, then stays alive and idle
        // past the retirement, as a server's worker thread can.
        let old = Arc::new(old);
        let (ran, wait_for_ran) = std::sync::mpsc::channel();
        let (retired, wait_for_retired) = std::sync::mpsc::channel::<()>();
        let worker = {
            let old = old.clone();
            std::thread::spawn(move || {
                assert_eq!(eval(&old, "p/echoed", r#"{"x": 2}"#), Value::from(2));
                drop(old);
                ran.send(()).unwrap();
                wait_for_retired.recv().unwrap();
            })
        };
        wait_for_ran.recv().unwrap();
        assert!(regorus::Rc::strong_count(text) > 1);
        drop(old);
        // Nothing of the retired set holds its data any more, though
        // neither thread has run anything since.
        assert_eq!(regorus::Rc::strong_count(text), 1);
        retired.send(()).unwrap();
        worker.join().unwrap();
    }
}
