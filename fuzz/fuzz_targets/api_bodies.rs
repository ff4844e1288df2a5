//! Data API and batch request bodies: the depth check, the partial input
//! reader (whole input and a few read paths), and the full JSON → Rego
//! value conversion the v0 and batch APIs use.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use portcullis::config::Limits;
use portcullis::engine::input::read_input_member;
use portcullis::engine::reads::{InputReads, ReadTree};
use portcullis::engine::Value;

fuzz_target!(|data: &[u8]| {
    let _ = portcullis::api::body::check_depth(data, 64);
    let whole = ReadTree::new(&InputReads::Whole);
    let _ = read_input_member(data, &whole);
    let some = ReadTree::new(&InputReads::Paths(
        [
            vec!["team".to_string()],
            vec!["resources".to_string(), "cpu".to_string()],
        ]
        .into_iter()
        .collect(),
    ));
    let _ = read_input_member(data, &some);
    let _ = portcullis::api::body::parse_json::<Value>(data, &Limits::default(), "input");
    let _ = serde_json::from_slice::<BTreeMap<String, Value>>(data);
});
