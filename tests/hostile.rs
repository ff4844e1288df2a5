//! Attacks on the gate, each reproduced against the real server (or the
//! loader it uses) and answered safely: the regression suite of the
//! hardening issue. RELIABILITY.md has a row per attack naming its test.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::TestServer;
use flate2::write::GzEncoder;
use portcullis::bundle::signing::{self, KeyConfig, VerificationSettings};
use serde_json::json;

fn rsa_key(file: &str) -> KeyConfig {
    KeyConfig {
        id: "platform".into(),
        algorithm: "RS256".into(),
        key: None,
        key_file: Some(common::repo("tests/fixtures/keys").join(file)),
    }
}

fn verification() -> VerificationSettings {
    VerificationSettings {
        keys: vec![rsa_key("rsa_public.pem")],
        keyid: None,
        scope: None,
    }
}

/// Archive members: a name as written in the archive, and the bytes.
type Members = Vec<(String, Vec<u8>)>;

/// Write a `.tar.gz` holding `members` in this order, names as given (OPA
/// writes them with a leading `/`).
fn write_archive(out: &Path, members: &[(String, Vec<u8>)]) {
    let file = std::fs::File::create(out).unwrap();
    let mut builder = tar::Builder::new(GzEncoder::new(file, flate2::Compression::fast()));
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

/// The members of a bundle signed with the test key: a policy and data
/// under root `sb`.
fn signed_members() -> Members {
    let mut files = BTreeMap::new();
    files.insert(
        ".manifest".to_string(),
        br#"{"revision": "signed-1", "roots": ["sb"]}"#.to_vec(),
    );
    files.insert(
        "sb/policy.rego".to_string(),
        b"package sb\n\nallow := false\n".to_vec(),
    );
    files.insert(
        "data.json".to_string(),
        br#"{"sb": {"who": "signed"}}"#.to_vec(),
    );
    let signatures = signing::sign(&files, &rsa_key("rsa_private.pem")).unwrap();
    files.insert(signing::SIGNATURES_FILE.to_string(), signatures);
    files
        .into_iter()
        .map(|(name, bytes)| (format!("/{name}"), bytes))
        .collect()
}

/// The attacker's members: an unsigned policy and data at the signed
/// paths.
fn forged_members() -> Members {
    vec![
        (
            "/sb/policy.rego".to_string(),
            b"package sb\n\nallow := true\n".to_vec(),
        ),
        (
            "/data.json".to_string(),
            br#"{"sb": {"who": "attacker"}}"#.to_vec(),
        ),
    ]
}

async fn start_verified(bundle: PathBuf) -> Result<TestServer, String> {
    TestServer::try_start_with(move |c| {
        c.bundles = vec![bundle];
        c.verification = Some(verification());
    })
    .await
    .map_err(|err| err.to_string())
}

#[tokio::test]
async fn duplicate_members_before_signed_ones_do_not_pass_verification() {
    let tmp = tempfile::tempdir().unwrap();
    // The signed archive alone serves what was signed.
    let signed = tmp.path().join("signed.tar.gz");
    write_archive(&signed, &signed_members());
    let server = start_verified(signed).await.unwrap();
    assert_eq!(
        server.post("/v1/data/sb/allow", "{}").await.1["result"],
        json!(false)
    );
    server.stop().await;

    // Unsigned copies placed before the signed members (and after them, and
    // under another spelling of the same path): refused, naming the member.
    let placements: [(&str, Members); 3] = [
        ("before", [forged_members(), signed_members()].concat()),
        ("after", [signed_members(), forged_members()].concat()),
        (
            "respelt",
            [
                signed_members(),
                vec![(
                    "./sb/policy.rego".to_string(),
                    b"package sb\n\nallow := true\n".to_vec(),
                )],
            ]
            .concat(),
        ),
    ];
    for (name, members) in placements {
        let forged = tmp.path().join(format!("{name}.tar.gz"));
        write_archive(&forged, &members);
        let err = start_verified(forged.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: a bundle with duplicate members was activated"));
        assert!(err.contains("more than once"), "{name}: {err}");
        // Unsigned serving refuses it too: duplicates are never loaded.
        let err = portcullis::bundle::load(&forged).unwrap_err().to_string();
        assert!(err.contains("more than once"), "{name}: {err}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.tar.gz");
    // 8 MiB of zeros compress to a few KiB.
    let zeros = vec![b'0'; 8 << 20];
    write_archive(
        &bomb,
        &[
            ("/.manifest".to_string(), br#"{"roots": ["z"]}"#.to_vec()),
            ("/z/data.json".to_string(), zeros),
        ],
    );
    assert!(std::fs::metadata(&bomb).unwrap().len() < 64 << 10);
    let limits = portcullis::bundle::SizeLimits {
        max_bundle_bytes: 4 << 20,
        max_file_bytes: 1 << 20,
    };
    let err = TestServer::try_start_with(move |c| {
        c.bundles = vec![bomb];
        c.bundle_limits = limits;
    })
    .await
    .err()
    .expect("the bomb is refused")
    .to_string();
    assert!(err.contains("max_file_bytes"), "{err}");

    // A directory bundle is held to the same limits.
    let dir = tmp.path().join("dir");
    std::fs::create_dir_all(dir.join("z")).unwrap();
    std::fs::write(dir.join("z/data.json"), vec![b' '; 2 << 20]).unwrap();
    let err = TestServer::try_start_with(move |c| {
        c.bundles = vec![dir];
        c.bundle_limits = limits;
    })
    .await
    .err()
    .expect("the large file is refused")
    .to_string();
    assert!(err.contains("max_file_bytes"), "{err}");
}

#[tokio::test]
async fn recursive_policies_are_refused_and_the_process_survives() {
    let server = TestServer::start().await;
    let recursive = [
        ("self", "package t.rec\nf(x) := f(x)\ny := f(1)\n", "data.t.rec.f -> data.t.rec.f"),
        (
            "mutual",
            "package t.mutual\nf(x) := g(x)\ng(x) := f(x)\ny := f(1)\n",
            "data.t.mutual.f -> data.t.mutual.g -> data.t.mutual.f",
        ),
        (
            "fact",
            "package t.fact\nfact(n) := 1 if n <= 1\nfact(n) := n * fact(n - 1) if n > 1\ny := fact(input.n)\n",
            "data.t.fact.fact -> data.t.fact.fact",
        ),
        ("rules", "package t.rules\na if b\nb if a\n", "data.t.rules.a -> data.t.rules.b"),
    ];
    for (id, module, cycle) in recursive {
        let response = server
            .client
            .put(server.url(&format!("/v1/policies/{id}")))
            .body(module)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{id}");
        let body: serde_json::Value = response.json().await.unwrap();
        let text = body.to_string();
        assert!(text.contains("rego_recursion_error"), "{id}: {text}");
        assert!(text.contains(cycle), "{id}: {text}");
        assert_eq!(
            body["errors"][0]["location"]["row"],
            json!(2),
            "{id}: {text}"
        );
    }
    // Nothing was activated, and the process still answers.
    let (status, body) = server.get("/v1/data/t/rec/y").await;
    assert_eq!((status, body.get("result")), (200, None), "{body}");
    let (status, _) = server
        .post("/v1/data/t/fact/y", r#"{"input": {"n": 1000000}}"#)
        .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[test]
fn a_recursive_bundle_is_refused_by_portcullis_check_at_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("fact.rego"),
        "package fact\n\nfact(n) := n * fact(n - 1)\n\ny := fact(input.n)\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check")
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("fact.rego:3:1") && stderr.contains("rego_recursion_error"),
        "{stdout}{stderr}"
    );
}

/// Every path of `document` up to `depth` segments, as `/`-joined strings.
fn document_paths(document: &serde_json::Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Some(object) = document.as_object() else {
        return;
    };
    for (key, value) in object {
        let path = format!("{prefix}/{key}");
        out.push(path.clone());
        if depth > 1 {
            document_paths(value, &path, depth - 1, out);
        }
    }
}

#[tokio::test]
async fn every_caller_reaches_only_its_granted_documents() {
    const ORCHESTRATOR: &str = "orch-token-for-hostile-tests";
    const BROKER: &str = "broker-token-for-hostile-tests";
    const ADMIN: &str = "admin-token-for-hostile-tests";
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "provisioning-orchestrator {ORCHESTRATOR}\nsecret-broker {BROKER}\nplatform-admin {ADMIN}\n"
        ),
    )
    .unwrap();
    let server = TestServer::start_with(move |c| {
        c.auth.tokens_file = Some(tokens);
        c.auth.authz_policy = Some("/system/authz/allow".into());
        // The shipped policies and data alone (the edge fixture has a rule
        // built to be slow); evaluating all of data at once takes longer
        // than a decision.
        c.bundles = vec![common::repo("policies"), common::repo("bundles")];
        c.limits.eval_timeout_ms = 5_000;
    })
    .await;
    let get = |path: String, token: &'static str| {
        let request = server.client.get(server.url(&path)).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let whole = server
        .client
        .get(server.url("/v1/data"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let mut documents = Vec::new();
    document_paths(&whole["result"], "", 4, &mut documents);
    assert!(documents.len() > 50, "{whole}");
    documents.push("/system/check/platform/secrets".into());
    // What each caller may read, written out here independently of the
    // policy: a document and what is below it.
    let grants: [(&str, &'static str, &[&str]); 2] = [
        (
            "provisioning-orchestrator",
            ORCHESTRATOR,
            &[
                "/provisioning/decision",
                "/network/decision",
                "/system/main",
            ],
        ),
        ("secret-broker", BROKER, &["/secrets/access/decision"]),
    ];
    for (caller, token, granted) in grants {
        for document in &documents {
            let expected = granted
                .iter()
                .any(|g| document == g || document.starts_with(&format!("{g}/")));
            for url in [
                format!("/v1/data{document}"),
                format!("/v0/data{document}"),
                // The same document with its separators percent-encoded.
                format!(
                    "/v1/data{}",
                    document.replacen('/', "%2F", 3).replacen("%2F", "/", 1)
                ),
            ] {
                let status = get(url.clone(), token).await;
                if expected {
                    assert_ne!(status, 403, "{caller} refused {url}");
                } else {
                    assert_eq!(status, 403, "{caller} reached {url}");
                }
            }
        }
    }
    // The admin reaches everything.
    assert_eq!(
        get("/v1/data/system/check/platform/secrets".into(), ADMIN).await,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn admission_metric_labels_come_from_bounded_sets() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::pki::TestCa::new("hostile test CA");
    let (cert, key) = ca.serving(None);
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    let tls = dir.path().to_path_buf();
    let server = TestServer::start_with(move |c| {
        c.bundles = vec![common::repo("policies"), common::repo("bundles")];
        c.admission.enabled = true;
        c.admission.addr = "127.0.0.1:0".into();
        c.admission.cert_file = Some(tls.join("tls.crt"));
        c.admission.key_file = Some(tls.join("tls.key"));
    })
    .await;
    let client = common::pki::client_trusting(&ca.pem());
    let url = format!("{}/v1/admit", server.admission_base.as_ref().unwrap());
    for i in 0..20 {
        // A distinct 64 KiB kind and operation per review, in a namespace
        // that is checked and in an exempt one.
        let kind = format!("{i:04}{}", "K".repeat(64 << 10));
        let namespace = if i % 2 == 0 { "default" } else { "kube-system" };
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": format!("uid-{i}"),
                "kind": {"group": "", "version": "v1", "kind": kind},
                "namespace": namespace,
                "operation": format!("OP{i}{}", "O".repeat(1024)),
                "object": {"metadata": {"name": "x"}},
            }
        });
        let response = client.post(&url).json(&review).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let pod = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-pod",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "default",
            "operation": "CREATE",
            "object": {"metadata": {"name": "p"}, "spec": {"containers": []}},
        }
    });
    assert_eq!(
        client.post(&url).json(&pod).send().await.unwrap().status(),
        200
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.len() < 256 << 10,
        "/metrics is {} bytes",
        metrics.len()
    );
    assert!(!metrics.contains("KKKK") && !metrics.contains("OOOO"));
    assert!(
        metrics.contains(r#"portcullis_admission_reviews_total{kind="other",operation="other",outcome="fast_path"} 20"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kind="Pod",operation="CREATE""#),
        "{metrics}"
    );
    server.stop().await;
}

#[test]
fn an_oversized_manifest_revision_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let revision = "r".repeat(1 << 20);
    std::fs::write(
        tmp.path().join(".manifest"),
        format!(r#"{{"revision": "{revision}"}}"#),
    )
    .unwrap();
    let err = portcullis::bundle::load(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at most 256"),
        "{}",
        &err[..err.len().min(300)]
    );
    assert!(err.len() < 1024, "the error does not repeat the revision");
}

async fn generation(server: &TestServer) -> u64 {
    let (_, status) = server.get("/v1/status").await;
    status["result"]["generation"]
        .as_u64()
        .unwrap_or_else(|| panic!("no generation in {status}"))
}

#[tokio::test]
async fn an_archive_reloads_on_its_content_not_on_its_neighbours_or_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("w.tar.gz");
    let members = |value: &str| {
        vec![
            ("/.manifest".to_string(), br#"{"roots": ["w"]}"#.to_vec()),
            (
                "/w/p.rego".to_string(),
                format!("package w\n\nv := {value}\n").into_bytes(),
            ),
        ]
    };
    write_archive(&archive, &members("1"));
    let path = archive.clone();
    let server = TestServer::start_with(move |c| {
        c.bundles = vec![path];
        c.watch.debounce_ms = 50;
    })
    .await;
    let first = generation(&server).await;
    // A log written beside the archive, reads of it, and a touch.
    for i in 0..20 {
        std::fs::write(tmp.path().join("server.log"), format!("line {i}\n")).unwrap();
        let _ = std::fs::read(&archive).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let file = std::fs::File::options()
        .append(true)
        .open(&archive)
        .unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    // The same content written again (a rename over it, as a deploy does).
    let same = tmp.path().join("w.tar.gz.new");
    std::fs::copy(&archive, &same).unwrap();
    std::fs::rename(&same, &archive).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        generation(&server).await,
        first,
        "reloaded without a content change"
    );

    write_archive(&archive, &members("2"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.get("/v1/data/w/v").await.1["result"] != json!(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        generation(&server).await,
        first + 1,
        "one change, one reload"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_batch_of_slow_inputs_shares_one_time_budget() {
    let server = TestServer::start_with(|c| {
        c.limits.eval_timeout_ms = 100;
        c.cache.enabled = false;
    })
    .await;
    let inputs: serde_json::Map<String, serde_json::Value> = (0..200)
        .map(|i| (format!("i{i:03}"), json!({ "n": i })))
        .collect();
    let body = json!({ "inputs": inputs }).to_string();
    let started = std::time::Instant::now();
    let (status, response) = server.post("/v1/batch/data/edge/slow", body).await;
    let took = started.elapsed();
    // Before: 200 inputs x 100 ms each. Now the batch stops at its budget
    // (generous bound: a debug build on a loaded machine).
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert_eq!(status, 207, "{response}");
    let responses = response["responses"].as_object().unwrap();
    assert_eq!(responses.len(), 200);
    for (id, item) in responses {
        let text = item.to_string();
        assert!(text.contains("time limit"), "{id}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn builtins_that_multiply_their_arguments_are_bounded() {
    let server = TestServer::start_with(|c| c.cache.enabled = false).await;
    for query in [
        "x := count(numbers.range(1, 50000000))",
        "x := count(numbers.range(1, 1e9))",
        "x := numbers.range_step(0, 1e12, 3)",
        r#"x := sprintf("%0999999999d", [1])"#,
        r#"n := 50000000; x := count(numbers.range(1, n))"#,
    ] {
        let started = std::time::Instant::now();
        let (status, body) = server
            .post("/v1/query", json!({ "query": query }).to_string())
            .await;
        let text = body.to_string();
        assert_ne!(status, 200, "{query}: {text}");
        assert!(text.contains("max_builtin_result_bytes"), "{query}: {text}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{query} took {:?}",
            started.elapsed()
        );
    }
    // Ordinary uses answer as before.
    let (status, body) = server
        .post(
            "/v1/query",
            json!({ "query": r#"x := count(numbers.range(1, 1000)); y := sprintf("%05d", [7])"# })
                .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["x"], json!(1000));
    assert_eq!(body["result"][0]["y"], json!("00007"));
    server.stop().await;
}

#[tokio::test]
async fn writes_are_off_by_default_and_need_authentication_off_loopback() {
    let defaults = portcullis::config::Config::default();
    assert!(!defaults.data_writes.enabled);
    let server = TestServer::start_with(|c| c.data_writes.enabled = false).await;
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            "/v1/policies/x",
            "package x\ny := 1\n",
        ),
        (reqwest::Method::PUT, "/v1/data/live/usage/x", "{}"),
        (reqwest::Method::PATCH, "/v1/data/live/usage", "[]"),
        (reqwest::Method::DELETE, "/v1/data/live/usage", ""),
    ] {
        let response = server
            .client
            .request(method.clone(), server.url(path))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    server.stop().await;

    // Writes on an address other hosts reach, with no authentication: the
    // configuration is refused, naming the key.
    let mut exposed = portcullis::config::Config {
        bundles: vec![common::repo("policies")],
        ..Default::default()
    };
    exposed.server.addr = "0.0.0.0:0".into();
    exposed.data_writes.enabled = true;
    let err = exposed.validate().unwrap_err().to_string();
    assert!(err.contains("data_writes.enabled"), "{err}");
    exposed.auth.tokens_file = Some("/etc/portcullis/tokens".into());
    exposed.validate().unwrap();
}

#[tokio::test]
async fn request_edges_are_answered_as_specified() {
    let server = TestServer::start().await;
    // A path of 1,000 segments: 400 naming the limit, not an evaluation error.
    let deep = "/a".repeat(1000);
    for url in [format!("/v1/data{deep}"), format!("/v0/data{deep}")] {
        let (status, body) = if url.starts_with("/v0") {
            server.post(&url, "{}").await
        } else {
            server.get(&url).await
        };
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body.to_string().contains("at most 128"), "{body}");
    }
    let (status, _) = server.get(&format!("/v1/data{}", "/a".repeat(100))).await;
    assert_eq!(status, 200);
    // A malformed max_age_seconds is refused, not ignored.
    let (status, body) = server.get("/health?bundles&max_age_seconds=abc").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.get("/health?bundles&max_age_seconds=3600").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "provisioning-orchestrator 0123456789abcdef0123\n").unwrap();
    let server = TestServer::start_with(move |c| c.auth.tokens_file = Some(tokens)).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = server
            .client
            .get(server.url("/v1/data/platform/classes"))
            .header("authorization", format!("{scheme} 0123456789abcdef0123"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    // The token itself is compared exactly.
    let response = server
        .client
        .get(server.url("/v1/data/platform/classes"))
        .header("authorization", "Bearer 0123456789ABCDEF0123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_request_bodies_are_read_within_the_body_limit() {
    let server = TestServer::start_with(|c| c.limits.max_body_bytes = 1 << 20).await;
    let post = |body: Vec<u8>| {
        server
            .client
            .post(server.url("/v1/data/edge/echo"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let response = post(gzip(br#"{"input": {"a": 1}}"#)).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["result"], json!({"a": 1}));
    // 64 MiB of spaces compress to ~64 KiB: the decompressed body is over the
    // limit, and reading stops there.
    let mut bomb = b"{\"input\": 1".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 64 << 20));
    bomb.push(b'}');
    let compressed = gzip(&bomb);
    assert!(compressed.len() < 1 << 20);
    let response = post(compressed).await.unwrap();
    assert_eq!(response.status(), 413);
    // Not gzip at all: 400, not a crash.
    let response = post(b"not gzip".to_vec()).await.unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_half_sent_request_header_is_dropped_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|c| c.limits.header_read_timeout_ms = 300).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    // The server closes the connection (EOF or reset) without answering.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the connection is closed before 5 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    // A connection that says nothing at all is closed too.
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the silent connection is closed before 5 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Whole requests are answered as ever.
    assert_eq!(server.get("/health").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_deepest_data_a_caller_can_build_is_evaluated_without_overflow() {
    let server = TestServer::start_with(|c| {
        c.bundles.push(common::repo("tests/fixtures/live"));
        c.cache.enabled = false;
    })
    .await;
    // The deepest path (128 segments) under a free root, holding the
    // deepest body (64 levels): 192 levels of data.
    let path = format!("/v1/data/live/usage{}", "/d".repeat(126));
    let body = format!("{}1{}", "{\"d\": ".repeat(63), "}".repeat(63));
    let response = server
        .client
        .put(server.url(&path))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    for query in [
        "x := count([p | walk(data.live, [p, _])])",
        "x := json.marshal(data.live)",
        "x := data.live == data.live",
    ] {
        let (status, body) = server
            .post("/v1/query", json!({ "query": query }).to_string())
            .await;
        assert_eq!(status, 200, "{query}: {body}");
    }
    let (status, _) = server.get("/v1/data/live").await;
    assert_eq!(status, 200);
    // A deeper path is refused before anything is written.
    let deeper = format!("/v1/data/live/usage{}", "/d".repeat(127));
    let response = server
        .client
        .put(server.url(&deeper))
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}
