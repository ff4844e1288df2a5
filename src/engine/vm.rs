//! regorus's bytecode VM (`rvm`) for the entry points it can compile.
//!
//! At activation every servable rule is compiled to a VM program; rules the
//! compiler refuses (the VM has no `with`, no extension builtins and some
//! `walk` and partial-object forms are missing) stay on the interpreter.
//! Each thread keeps one idle VM per program it has run (a VM resets all
//! of its execution state at the start of every run), so a request pays
//! neither for building a VM nor for checking the data against the
//! program's rule tree; nothing is shared mutably between threads. An idle
//! VM holds the values of its last run until its next one (at most one run
//! per program per thread).
//! `tests/vm_differential.rs` checks that both paths answer alike on the
//! policy library.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Value;

/// No instruction-count ceiling in practice: the time limit governs.
const MAX_INSTRUCTIONS: usize = 500_000_000;

/// Idle VMs one thread keeps at most; past that the oldest is dropped.
const MAX_IDLE_PER_THREAD: usize = 64;

thread_local! {
    /// This thread's idle VMs, each with its program loaded and its data set.
    static IDLE_VMS: RefCell<Vec<RegoVM>> = const { RefCell::new(Vec::new()) };
}

/// Compiled VM programs, one per entry point, with the data they read.
#[derive(Clone)]
pub(super) struct VmPrograms {
    programs: HashMap<String, Arc<Program>>,
    data: Value,
    timer: Option<ExecutionTimerConfig>,
}

impl Default for VmPrograms {
    fn default() -> Self {
        VmPrograms {
            programs: HashMap::new(),
            data: Value::new_object(),
            timer: None,
        }
    }
}

impl VmPrograms {
    /// Compile each of `entry_points` that the VM supports.
    pub(super) fn compile<'a>(
        engine: &regorus::Engine,
        entry_points: impl Iterator<Item = &'a String>,
        timer: ExecutionTimerConfig,
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
                Ok(program) => {
                    programs.insert(path.clone(), program);
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
    ) -> Option<anyhow::Result<Value>> {
        let program = self.programs.get(path)?;
        let mut vm = match take_idle(program) {
            Some(vm) => vm,
            None => match self.new_vm(program) {
                Ok(vm) => vm,
                Err(err) => return Some(Err(err)),
            },
        };
        vm.set_input(input.unwrap_or(Value::Undefined));
        let result = vm.execute().map_err(anyhow::Error::from);
        // A VM whose run failed (a time limit, say) is not kept: only VMs
        // that completed a run go back to the pool.
        if result.is_ok() {
            vm.set_input(Value::Undefined);
            put_idle(vm);
        }
        Some(result)
    }

    /// A VM with `program` loaded, limits applied and the data set (which
    /// checks the data against the program's rule tree, once per VM).
    fn new_vm(&self, program: &Arc<Program>) -> anyhow::Result<RegoVM> {
        let mut vm = RegoVM::new();
        vm.load_program(program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        // Builtin errors are errors, as in the interpreter (never a silent undefined).
        vm.set_strict_builtin_errors(true);
        vm.set_execution_timer_config(self.timer);
        vm.set_data(self.data.clone())?;
        Ok(vm)
    }
}

/// Take this thread's idle VM for `program`, if it has one. A miss also
/// drops idle VMs whose programs were retired (their policy set is gone),
/// so an old revision's data is not kept alive by an idle thread.
fn take_idle(program: &Arc<Program>) -> Option<RegoVM> {
    // While the thread is being torn down its pool is gone: no VM is kept.
    IDLE_VMS
        .try_with(|idle| {
            let mut idle = idle.borrow_mut();
            if let Some(at) = idle
                .iter()
                .position(|vm| Arc::ptr_eq(vm.get_program(), program))
            {
                return Some(idle.swap_remove(at));
            }
            idle.retain(|vm| Arc::strong_count(vm.get_program()) > 1);
            None
        })
        .ok()
        .flatten()
}

/// Return a VM to this thread's pool.
fn put_idle(vm: RegoVM) {
    let _ = IDLE_VMS.try_with(|idle| {
        let mut idle = idle.borrow_mut();
        if idle.len() >= MAX_IDLE_PER_THREAD {
            idle.remove(0);
        }
        idle.push(vm);
    });
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

    fn idle_count() -> usize {
        IDLE_VMS.with(|idle| idle.borrow().len())
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
        assert_eq!(idle_count(), 2);
    }

    #[test]
    fn a_failed_run_is_not_kept_and_the_next_one_succeeds() {
        let set = policy_set(serde_json::json!({}));
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
    fn idle_vms_of_a_retired_policy_set_are_dropped() {
        let old = policy_set(serde_json::json!({"big": "old revision"}));
        assert_eq!(eval(&old, "p/echoed", r#"{"x": 1}"#), Value::from(1));
        assert_eq!(idle_count(), 1);
        drop(old);
        // The next miss on this thread sweeps the VM whose program is gone.
        let new = policy_set(serde_json::json!({"big": "new revision"}));
        assert_eq!(eval(&new, "p/echoed", r#"{"x": 2}"#), Value::from(2));
        IDLE_VMS.with(|idle| {
            let idle = idle.borrow();
            assert_eq!(idle.len(), 1);
            assert!(idle
                .iter()
                .all(|vm| Arc::strong_count(vm.get_program()) > 1));
        });
    }
}
