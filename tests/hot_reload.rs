//! Hot reload from files: a change goes live, a bad change never does, the
//! ConfigMap symlink swap and archive replacement are followed, and requests
//! keep succeeding while bundles change under load.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

fn write_bundle(dir: &Path, revision: &str, value: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(".manifest"),
        format!(r#"{{"revision": "{revision}", "roots": ["hot"]}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("hot.rego"),
        format!("package hot\n\nv := {value}\n"),
    )
    .unwrap();
}

async fn start_on(path: &Path) -> TestServer {
    let path = path.to_path_buf();
    TestServer::start_with(move |c| {
        c.bundles = vec![path];
        c.watch.debounce_ms = 50;
    })
    .await
}

/// Poll until `GET /v1/data/hot/v` answers `expected` (bounded at 10 s).
async fn wait_for(server: &TestServer, expected: serde_json::Value) -> Duration {
    let started = Instant::now();
    loop {
        let (_, body) = server.get("/v1/data/hot/v").await;
        if body["result"] == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never saw {expected}; last answer {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revision(server: &TestServer) -> String {
    let (_, body) = server.get("/v1/status").await;
    body["result"]["bundles"][0]["revision"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_changed_file_goes_live() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_bundle(&dir, "r1", "1");
    let server = start_on(&dir).await;
    wait_for(&server, json!(1)).await;
    write_bundle(&dir, "r2", "2");
    wait_for(&server, json!(2)).await;
    assert_eq!(revision(&server).await, "r2");
    server.stop().await;
}

#[tokio::test]
async fn a_broken_change_never_replaces_the_good_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_bundle(&dir, "r1", "1");
    let server = start_on(&dir).await;
    std::fs::write(dir.join("hot.rego"), "package hot\n\nv := := 2\n").unwrap();
    // Wait for the failed reload to be recorded, then check nothing changed.
    let started = Instant::now();
    loop {
        let (_, status) = server.get("/v1/status").await;
        if !status["result"]["last_failure"].is_null() {
            let message = status["result"]["last_failure"]["message"]
                .as_str()
                .unwrap();
            assert!(message.contains("hot.rego:3:"), "{message}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no failure recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "plain health only needs an active snapshot");
    let (status, body) = server.get("/health?bundles").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], json!("the latest bundle load failed"));
    let waited = wait_for(&server, json!(1)).await;
    assert!(
        waited < Duration::from_secs(1),
        "still serving r1 at once ({waited:?})"
    );
    assert_eq!(revision(&server).await, "r1");
    // Roots violations are refused the same way.
    std::fs::write(dir.join("hot.rego"), "package elsewhere\n\nv := 3\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for(&server, json!(1)).await;
    write_bundle(&dir, "r3", "3");
    wait_for(&server, json!(3)).await;
    assert_eq!(server.get("/health?bundles").await.0, 200);
    assert_eq!(
        server.get("/health?bundles&max_age_seconds=3600").await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(server.get("/health?bundles&max_age_seconds=0").await.0, 503);
    server.stop().await;
}

#[tokio::test]
async fn configmap_symlink_swap_is_followed() {
    // The layout kubelet writes for a ConfigMap volume: the files live in a
    // hidden timestamped directory, `..data` links to it, and the visible
    // names link through `..data`. An update swaps `..data` atomically.
    let tmp = tempfile::tempdir().unwrap();
    let volume = tmp.path().join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    write_bundle(&volume.join("..2026_11_22_1"), "cm1", "1");
    std::os::unix::fs::symlink("..2026_11_22_1", volume.join("..data")).unwrap();
    for name in [".manifest", "hot.rego"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), volume.join(name)).unwrap();
    }
    let server = start_on(&volume).await;
    wait_for(&server, json!(1)).await;
    assert_eq!(revision(&server).await, "cm1");

    write_bundle(&volume.join("..2026_11_22_2"), "cm2", "2");
    std::os::unix::fs::symlink("..2026_11_22_2", volume.join("..data_tmp")).unwrap();
    std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
    wait_for(&server, json!(2)).await;
    assert_eq!(revision(&server).await, "cm2");
    server.stop().await;
}

#[tokio::test]
async fn an_archive_replaced_by_rename_goes_live() {
    let tmp = tempfile::tempdir().unwrap();
    let build = |revision: &str, value: &str, out: &Path| {
        let src = tmp.path().join(format!("src-{revision}"));
        write_bundle(&src, revision, value);
        let bundle = portcullis::bundle::load(&src).unwrap();
        portcullis::bundle::write_tarball(&bundle, out, None).unwrap();
    };
    let archive = tmp.path().join("hot.tar.gz");
    build("a1", "1", &archive);
    let server = start_on(&archive).await;
    wait_for(&server, json!(1)).await;
    let staged = tmp.path().join("hot.tar.gz.tmp");
    build("a2", "2", &staged);
    std::fs::rename(&staged, &archive).unwrap();
    wait_for(&server, json!(2)).await;
    assert_eq!(revision(&server).await, "a2");
    server.stop().await;
}

#[tokio::test]
async fn no_request_fails_while_bundles_change_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_bundle(&dir, "r0", "0");
    let server = start_on(&dir).await;
    let url = server.url("/v1/data/hot/v");
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let client = server.client.clone();
        let url = url.clone();
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            let mut seen = std::collections::BTreeSet::new();
            // Bounded by time and by count.
            while Instant::now() < deadline && ok + failed < 100_000 {
                match client.post(&url).body(r#"{"input": {}}"#).send().await {
                    Ok(r) if r.status() == 200 => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        seen.insert(body["result"].as_i64().unwrap());
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, seen)
        }));
    }
    let mut reloads = 0;
    while Instant::now() + Duration::from_millis(400) < deadline {
        reloads += 1;
        // Alternate good and broken revisions: broken ones must never serve.
        if reloads % 3 == 0 {
            std::fs::write(dir.join("hot.rego"), "package hot\nv := {\n").unwrap();
        } else {
            write_bundle(&dir, &format!("r{reloads}"), &reloads.to_string());
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (mut ok, mut failed) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for worker in workers {
        let (o, f, s) = worker.await.unwrap();
        ok += o;
        failed += f;
        seen.extend(s);
    }
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(ok > 100, "only {ok} requests");
    assert!(seen.len() >= 3, "saw revisions {seen:?}");
    server.stop().await;
}

#[tokio::test]
async fn bundle_metrics_follow_activations_and_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_bundle(&dir, "m1", "1");
    let server = start_on(&dir).await;
    let metrics = || async {
        let response = server
            .client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let text = metrics().await;
    assert!(
        text.contains("portcullis_bundle_activations_total{result=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_bundle_info{bundle=\"hot\",revision=\"m1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_bundle_last_activation_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains("portcullis_bundle_load_duration_seconds_count 1"),
        "{text}"
    );

    std::fs::write(dir.join("hot.rego"), "package hot\nv := := 1\n").unwrap();
    let started = Instant::now();
    while !metrics()
        .await
        .contains("portcullis_bundle_activations_total{result=\"failure\"} 1")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failure never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    write_bundle(&dir, "m2", "2");
    wait_for(&server, json!(2)).await;
    let text = metrics().await;
    assert!(
        text.contains("portcullis_bundle_info{bundle=\"hot\",revision=\"m2\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("revision=\"m1\""),
        "the old revision is gone: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn entry_points_kept_off_the_vm_are_counted_and_still_answer_like_opa() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hot");
    write_bundle(&dir, "g1", "1");
    // `role := …` used only under `not`: the VM would allow a request
    // without a role; OPA and the interpreter do not.
    std::fs::write(
        dir.join("gate.rego"),
        "package hot\n\nimport rego.v1\n\nallow if {\n  role := input.role\n  not role == \"guest\"\n}\n\n\
         names contains input.people[k].name if {\n  some k in input.ids\n}\n",
    )
    .unwrap();
    let server = start_on(&dir).await;
    let gauges = || async {
        let text = server.metrics().await;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing: {text}"))
                .parse::<i64>()
                .unwrap()
        };
        (
            value("portcullis_vm_entry_points"),
            value("portcullis_vm_gap_entry_points"),
            value("portcullis_undefined_head_rules"),
        )
    };
    let (on_vm, gaps, undefined_heads) = gauges().await;
    assert_eq!(gaps, 1, "data.hot.allow is kept off the VM");
    assert_eq!(undefined_heads, 1, "data.hot.names is counted");
    // On the VM, the element that is undefined is skipped, as in OPA.
    let (_, body) = server
        .post(
            "/v1/data/hot/names",
            json!({"input": {"ids": ["a", "b"], "people": {"a": {"name": "Ana"}}}}).to_string(),
        )
        .await;
    assert_eq!(body["result"], json!(["Ana"]), "{body}");
    assert!(on_vm >= 1, "data.hot.v runs on the VM");
    let (status, body) = server
        .post("/v1/data/hot/allow", json!({"input": {}}).to_string())
        .await;
    assert_eq!(status, 200);
    assert_eq!(body.get("result"), None, "undefined, as in OPA: {body}");
    let (_, body) = server
        .post(
            "/v1/data/hot/allow",
            json!({"input": {"role": "dev"}}).to_string(),
        )
        .await;
    assert_eq!(body["result"], json!(true));

    // Guarded, the rule goes back to the VM on the next activation; bound
    // in the body, the element no longer counts.
    std::fs::write(
        dir.join("gate.rego"),
        "package hot\n\nimport rego.v1\n\nallow if {\n  role := input.role\n  is_string(role)\n  not role == \"guest\"\n}\n\n\
         names contains name if {\n  some k in input.ids\n  name := input.people[k].name\n}\n",
    )
    .unwrap();
    write_bundle(&dir, "g2", "2");
    wait_for(&server, json!(2)).await;
    let (on_vm_after, gaps_after, undefined_heads_after) = gauges().await;
    assert_eq!(gaps_after, 0);
    assert_eq!(undefined_heads_after, 0);
    assert_eq!(on_vm_after, on_vm + 1);
    server.stop().await;
}
