//! One Rego module per input, compiled with every activation analysis
//! (`harness/rego.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/rego.rs"]
mod rego;

fuzz_target!(|input: &[u8]| {
    rego::compile(input);
});
