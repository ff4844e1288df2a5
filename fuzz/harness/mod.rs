//! What the fuzz targets run, shared with `tests/fuzz_findings.rs`, which
//! replays every input a fuzzer has found (`fuzz/findings/<target>/`) so a
//! fixed finding stays fixed.

pub mod http;
pub mod rego;
