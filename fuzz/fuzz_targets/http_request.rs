//! One HTTP request per input against the in-process routers
//! (`harness/http.rs`).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../harness/http.rs"]
mod http;

use http::HttpHarness;

static HARNESS: OnceLock<HttpHarness> = OnceLock::new();

fuzz_target!(|input: &[u8]| {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let harness = HARNESS.get_or_init(|| HttpHarness::new(&repo));
    harness.run(input);
});
