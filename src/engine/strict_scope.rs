//! Strict builtin errors for one evaluation on this thread, whatever the
//! policy set's setting (the Data API's `strict-builtin-errors` parameter).
//! The builtins Portcullis registers and the VM read it; the interpreter
//! is switched on its own copy of the engine.

use std::cell::Cell;

thread_local! {
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Whether the evaluation running on this thread asked for strict
/// builtin errors.
pub fn active() -> bool {
    STRICT.with(Cell::get)
}

/// Strict builtin errors until dropped.
pub struct Strict {
    previous: bool,
}

impl Strict {
    /// Turn strict builtin errors on for this thread.
    pub fn enter() -> Strict {
        Strict {
            previous: STRICT.with(|s| s.replace(true)),
        }
    }
}

impl Drop for Strict {
    fn drop(&mut self) {
        STRICT.with(|s| s.set(self.previous));
    }
}
