//! regorus's bytecode VM (`rvm`) for the entry points it can compile.
//!
//! At activation every servable rule is compiled to a VM program; rules the
//! compiler refuses (the VM has no `with`, no extension builtins and some
//! `walk` and partial-object forms are missing) stay on the interpreter.
//! Each evaluation builds a fresh VM around the shared program and data, so
//! nothing is shared mutably between requests. `tests/vm_differential.rs`
//! checks that both paths answer alike on the policy library.

use std::collections::HashMap;
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Value;

/// No instruction-count ceiling in practice: the time limit governs.
const MAX_INSTRUCTIONS: usize = 500_000_000;

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
        let mut vm = RegoVM::new();
        vm.load_program(program.clone());
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        // Builtin errors are errors, as in the interpreter (never a silent undefined).
        vm.set_strict_builtin_errors(true);
        vm.set_execution_timer_config(self.timer);
        if let Err(err) = vm.set_data(self.data.clone()) {
            return Some(Err(err.into()));
        }
        vm.set_input(input.unwrap_or(Value::Undefined));
        Some(vm.execute().map_err(anyhow::Error::from))
    }
}
