//! Replays what the fuzzers found (`fuzz/findings/<target>/`, one input per
//! file, each once a crash, a hang or a broken answer) through the same
//! harnesses the `http_request` and `rego_compile` fuzz targets run, and
//! the seeds they start from (`fuzz/seeds/<target>/`), so that the
//! harnesses stay compiled, their checks hold here too, and a fixed finding
//! stays fixed. RELIABILITY.md says how to run the fuzzers.

use std::path::{Path, PathBuf};

#[path = "../fuzz/harness/mod.rs"]
mod harness;

use harness::http::{HttpHarness, ROUTES};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `fuzz/<dir>/<target>`, sorted (none when the directory is
/// missing).
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo().join("fuzz").join(dir).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn the_http_findings_answer_with_readable_errors() {
    let harness = HttpHarness::new(repo());
    for file in inputs("findings", "http_request") {
        let input = std::fs::read(&file).expect("finding readable");
        let answer = harness.run(&input);
        assert!(answer.is_some(), "{} is empty", file.display());
    }
}

#[test]
fn the_rego_findings_compile_or_are_refused_in_place() {
    for file in inputs("findings", "rego_compile") {
        let input = std::fs::read(&file).expect("finding readable");
        assert!(
            harness::rego::compile(&input).is_some(),
            "{} is not a module",
            file.display()
        );
    }
}

/// The HTTP seeds are the shipped examples sent to every route: each
/// answers, and the decision routes decide.
#[test]
fn the_http_seeds_answer_on_every_route() {
    let harness = HttpHarness::new(repo());
    let seeds = inputs("seeds", "http_request");
    assert!(!seeds.is_empty(), "fuzz/seeds/http_request is empty");
    for file in &seeds {
        let input = std::fs::read(file).expect("seed readable");
        let answer = harness.run(&input).expect("a seed has a route byte");
        assert!(
            answer.status.is_success(),
            "seed {} got {} on {} {}: {}",
            file.display(),
            answer.status,
            answer.method,
            answer.path,
            answer.body
        );
    }
    let example = std::fs::read(repo().join("examples/feature-payments.json")).expect("example");
    let answer = harness.send("POST", ROUTES[0].1, example);
    assert_eq!(
        answer.body["result"]["allowed"],
        serde_json::Value::Bool(true),
        "the example environment request is allowed: {}",
        answer.body
    );
}

/// The Rego seeds are modules that compile; a broken one is refused with
/// its place.
#[test]
fn the_rego_seeds_compile() {
    let seeds = inputs("seeds", "rego_compile");
    assert!(!seeds.is_empty(), "fuzz/seeds/rego_compile is empty");
    let refused: Vec<String> = seeds
        .iter()
        .filter_map(|file| {
            let input = std::fs::read(file).expect("seed readable");
            let compiled = harness::rego::compile(&input).expect("a seed is a module");
            compiled
                .err()
                .map(|err| format!("{}: {err}", file.display()))
        })
        .collect();
    assert!(refused.is_empty(), "seeds refused: {refused:#?}");
    let broken = b"\x00package fuzz\n\nallow if {\n\tinput.x ==\n}\n";
    let refused = harness::rego::compile(broken).expect("a module");
    assert!(refused.is_err(), "a rule cut short compiles");
}
