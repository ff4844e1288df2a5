//! Gatekeeper compatibility: ConstraintTemplates (`templates.gatekeeper.sh`
//! v1, v1beta1) and Constraints read from bundle YAML, each template
//! compiled in an engine of its own, constraints matched against admission
//! requests (`spec.match`) and evaluated to violations, and Gatekeeper's
//! test suites (`portcullis verify`).
//!
//! Templates see what they see under Gatekeeper: `input.review` (the
//! AdmissionRequest), `input.parameters` (the constraint's
//! `spec.parameters`), their own `libs` under `data.lib`, and
//! `data.inventory` (cluster objects, supplied here as bundle data at
//! `inventory`, in Gatekeeper's layout `cluster/<groupVersion>/<Kind>/<name>`
//! and `namespace/<ns>/<groupVersion>/<Kind>/<name>`).

pub mod document;
mod error;
mod library;
mod matching;
pub mod suite;

pub use document::{ConstraintDef, EnforcementAction, TemplateDef};
pub use error::GatekeeperError;
pub use library::{read_files, Constraint, Library, Violation};
pub use matching::{Match, MatchError};

use crate::bundle::Bundle;
use crate::engine::{EngineOptions, Value};

/// The bundle data path templates see as `data.inventory`.
pub const INVENTORY_ROOT: &str = "inventory";

/// Build the library of a set of bundles: every template and constraint
/// they carry, with `data.inventory` taken from whichever bundle holds it.
pub fn from_bundles(
    bundles: &[Bundle],
    options: &EngineOptions,
) -> Result<Library, GatekeeperError> {
    let inventory = bundles
        .iter()
        .map(|b| &b.data[INVENTORY_ROOT])
        .find(|inventory| **inventory != Value::Undefined)
        .cloned()
        .unwrap_or(Value::Undefined);
    from_bundles_with_inventory(bundles, &inventory, options)
}

/// [`from_bundles`], with `data.inventory` given (undefined: empty), for
/// bundles whose data was already compiled (and taken out of them).
pub fn from_bundles_with_inventory(
    bundles: &[Bundle],
    inventory: &Value,
    options: &EngineOptions,
) -> Result<Library, GatekeeperError> {
    let mut templates = Vec::new();
    let mut constraints = Vec::new();
    for bundle in bundles {
        let (t, c) = read_files(&bundle.gatekeeper)?;
        templates.extend(t);
        constraints.extend(c);
    }
    if templates.is_empty() && constraints.is_empty() {
        return Ok(Library::default());
    }
    let inventory = match inventory {
        Value::Undefined => Value::new_object(),
        inventory => inventory.clone(),
    };
    Library::compile(templates, constraints, inventory, options)
}
