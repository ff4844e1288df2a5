//! AdmissionReview bodies: the one-pass scan that routes a review (captures
//! and the read-set hash) and the partial conversion of what policies read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::cache::stream::{scan, Captures};
use portcullis::engine::input::read_parts;
use portcullis::engine::reads::{InputReads, ReadTree};

fuzz_target!(|data: &[u8]| {
    let captures = Captures::new(&[
        &["apiVersion"],
        &["kind"],
        &["request", "uid"],
        &["request", "kind", "kind"],
        &["request", "namespace"],
        &["request", "operation"],
    ]);
    let tree = ReadTree::new(&InputReads::Paths(
        [
            vec!["request".to_string(), "object".to_string(), "spec".to_string()],
            vec!["request".to_string(), "kind".to_string()],
        ]
        .into_iter()
        .collect(),
    ));
    let _ = scan(data, None, &captures);
    let _ = scan(data, Some(&tree), &captures);
    let _ = read_parts(data, &tree);
    let _ = read_parts(data, &ReadTree::new(&InputReads::Whole));
});
