//! A bundle directory whose `.manifest`, `data.json` and `data.yaml` come
//! from the fuzzer (the first byte picks which file, the rest is its text),
//! next to a valid policy: loading answers a bundle or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    std::fs::write(
        root.join("app/policy.rego"),
        "package app\n\nallow if input.user == data.app.admin\n",
    )
    .expect("write policy");
    let name = match choice % 4 {
        0 => ".manifest",
        1 => "app/data.json",
        2 => "app/data.yaml",
        _ => "data.json",
    };
    std::fs::write(root.join(name), text).expect("write file");
    let _ = portcullis::bundle::load_dir(root);
});
