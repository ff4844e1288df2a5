//! Signed bundles against the real server: a verified bundle serves; a
//! changed, added or unsigned one is refused at start and never replaces a
//! good one on reload, with the file and the check named.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::TestServer;
use portcullis::bundle::signing::{self, KeyConfig, VerificationSettings};
use serde_json::json;

fn key(name: &str) -> PathBuf {
    common::repo("tests/fixtures/keys").join(name)
}

fn rsa_key(file: &str) -> KeyConfig {
    KeyConfig {
        id: "platform".into(),
        algorithm: "RS256".into(),
        key: None,
        key_file: Some(key(file)),
    }
}

fn settings() -> VerificationSettings {
    VerificationSettings {
        keys: vec![rsa_key("rsa_public.pem")],
        keyid: None,
        scope: None,
    }
}

/// Write a bundle directory and sign it.
fn write_signed(dir: &Path, revision: &str, value: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = BTreeMap::new();
    files.insert(
        ".manifest".to_string(),
        format!(r#"{{"revision": "{revision}", "roots": ["hot"]}}"#).into_bytes(),
    );
    files.insert(
        "hot.rego".to_string(),
        format!("package hot\n\nv := {value}\n").into_bytes(),
    );
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let signatures = signing::sign(&files, &rsa_key("rsa_private.pem")).unwrap();
    std::fs::write(dir.join(signing::SIGNATURES_FILE), signatures).unwrap();
}

async fn start(path: &Path) -> Result<TestServer, String> {
    let path = path.to_path_buf();
    TestServer::try_start_with(move |c| {
        c.bundles = vec![path];
        c.watch.debounce_ms = 50;
        c.verification = Some(settings());
    })
    .await
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_signed_bundle_serves_and_a_tampered_change_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_signed(&dir, "s1", "1");
    let server = start(&dir).await.unwrap();
    assert_eq!(server.get("/v1/data/hot/v").await.1["result"], json!(1));

    // Change a policy without re-signing: the reload is refused.
    std::fs::write(dir.join("hot.rego"), "package hot\n\nv := 666\n").unwrap();
    let started = Instant::now();
    let message = loop {
        let (_, status) = server.get("/v1/status").await;
        if let Some(message) = status["result"]["last_failure"]["message"].as_str() {
            break message.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no failure recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        message.contains("file digest failed for hot.rego"),
        "{message}"
    );
    assert_eq!(server.get("/v1/data/hot/v").await.1["result"], json!(1));

    // A properly signed new revision goes live.
    write_signed(&dir, "s2", "2");
    let started = Instant::now();
    while server.get("/v1/data/hot/v").await.1["result"] != json!(2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "s2 never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn tampered_added_and_unsigned_bundles_fail_the_start() {
    let tmp = tempfile::tempdir().unwrap();

    let changed = tmp.path().join("changed");
    write_signed(&changed, "c1", "1");
    std::fs::write(
        changed.join(".manifest"),
        r#"{"revision": "forged", "roots": ["hot"]}"#,
    )
    .unwrap();
    let err = start(&changed).await.err().unwrap();
    assert!(err.contains("file digest failed for .manifest"), "{err}");

    let added = tmp.path().join("added");
    write_signed(&added, "a1", "1");
    std::fs::write(added.join("extra.rego"), "package hot.extra\nx := 1\n").unwrap();
    let err = start(&added).await.err().unwrap();
    assert!(err.contains("file listed failed for extra.rego"), "{err}");

    let removed = tmp.path().join("removed");
    write_signed(&removed, "r1", "1");
    std::fs::remove_file(removed.join("hot.rego")).unwrap();
    let err = start(&removed).await.err().unwrap();
    assert!(err.contains("file present failed for hot.rego"), "{err}");

    let unsigned = tmp.path().join("unsigned");
    write_signed(&unsigned, "u1", "1");
    std::fs::remove_file(unsigned.join(signing::SIGNATURES_FILE)).unwrap();
    let err = start(&unsigned).await.err().unwrap();
    assert!(err.contains("not signed"), "{err}");
}

#[tokio::test]
async fn a_bundle_signed_with_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_signed(&dir, "k1", "1");
    let err = TestServer::try_start_with(|c| {
        c.bundles = vec![dir.clone()];
        c.verification = Some(VerificationSettings {
            keys: vec![rsa_key("rsa_other_public.pem")],
            keyid: None,
            scope: None,
        });
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("signature failed"), "{err}");
}

#[test]
fn bundle_build_signs_archives_that_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("signed.tar.gz");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .current_dir(common::repo(""))
        .args([
            "bundle",
            "build",
            "policies",
            "bundles",
            "-o",
            out.to_str().unwrap(),
            "--signing-key",
            key("ec_private.pem").to_str().unwrap(),
            "--signing-alg",
            "ES256",
            "--signing-keyid",
            "platform",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let verifier = signing::Verifier::new(&VerificationSettings {
        keys: vec![KeyConfig {
            id: "platform".into(),
            algorithm: "ES256".into(),
            key: None,
            key_file: Some(key("ec_public.pem")),
        }],
        keyid: None,
        scope: None,
    })
    .unwrap();
    let bundle = portcullis::bundle::load_verified(&out, Some(&verifier)).unwrap();
    assert_eq!(bundle.name, "signed");
    assert!(portcullis::bundle::load_verified(&out, None).is_ok());
}
