//! Policy compilation under fuzzing: one Rego module per input, compiled
//! as a bundle of its own, so that regorus's parser and every analysis
//! Portcullis runs at activation (VM gaps, `every` indexes, undefined
//! heads and functions, read sets) see arbitrary modules.
//!
//! A module that compiles is then evaluated, each package as a whole, so
//! that what compiles cannot crash the process when it runs (recursion,
//! builtins with huge results).
//!
//! An input's first byte picks the Rego version (even: v1, odd: v0); the
//! rest is the module text. Besides not panicking, a refused module must
//! say where: every error names the module's file, and a line of it when
//! regorus gave one (row 0 is the file alone).

use portcullis::bundle::{Bundle, Manifest, PolicyFile, RegoVersion};
use portcullis::engine::{DataPath, EngineOptions, PolicySet, Value};

/// The file name errors give the module.
pub const MODULE_PATH: &str = "fuzz.rego";

/// Compile the module `input` describes; panics (a finding) when an error
/// does not point into it.
pub fn compile(input: &[u8]) -> Option<Result<PolicySet, String>> {
    let (&selector, text) = input.split_first()?;
    let source = std::str::from_utf8(text).ok()?.to_string();
    let rego_version = if selector % 2 == 0 {
        RegoVersion::V1
    } else {
        RegoVersion::V0
    };
    let lines = source.lines().count().max(1);
    let bundle = Bundle {
        name: "fuzz".into(),
        location: "fuzz".into(),
        manifest: Manifest::default(),
        policies: vec![PolicyFile {
            id: format!("fuzz/{MODULE_PATH}"),
            path: MODULE_PATH.into(),
            source,
            rego_version,
        }],
        data: Value::new_object(),
        gatekeeper: Vec::new(),
    };
    let compiled = PolicySet::compile(&[bundle], EngineOptions::default());
    Some(match compiled {
        Ok(set) => {
            // What compiled must evaluate without crashing the process
            // (recursion is refused above; builtins are bounded; the time
            // limit holds): every package as a whole, with an empty input.
            for module in set.modules() {
                let package = DataPath::from_dotted(&module.package);
                let _ = set.evaluate(&package, Some(Value::new_object()));
            }
            Ok(set)
        }
        Err(err) => {
            let errors = err.errors();
            assert!(!errors.is_empty(), "a refusal without an error: {err}");
            for error in &errors {
                let at = error
                    .location
                    .as_ref()
                    .unwrap_or_else(|| panic!("an error without a place: {error:?}"));
                assert!(
                    at.file.ends_with(MODULE_PATH),
                    "an error placed elsewhere: {error:?}"
                );
                let row = at.row as usize;
                assert!(
                    row <= lines + 1,
                    "an error placed outside the module's {lines} lines: {error:?}"
                );
            }
            Err(err.to_string())
        }
    })
}
