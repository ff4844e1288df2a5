//! Gatekeeper YAML: multi-document files split into ConstraintTemplates and
//! Constraints, and gator-style suite files (run against a temp directory
//! where the files they name may be missing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::engine::EngineOptions;
use portcullis::gatekeeper::document::{self, ObjectKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(documents) = document::documents("fuzz.yaml", text) {
        for doc in &documents {
            match document::object_kind(doc) {
                ObjectKind::Template => {
                    let _ = document::template(doc);
                }
                ObjectKind::Constraint => {
                    let _ = document::constraint(doc);
                }
                _ => {}
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("suite.yaml");
    std::fs::write(&suite, text).expect("write suite");
    let _ = portcullis::gatekeeper::suite::run_suite(&suite, &EngineOptions::default());
});
