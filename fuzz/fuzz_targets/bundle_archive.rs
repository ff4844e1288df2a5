//! A bundle archive (`.tar.gz`) with arbitrary bytes: the reader must
//! answer a bundle or an error, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, data).expect("write archive");
    let _ = portcullis::bundle::load_verified(&path, None);
});
