//! The decision cache through the real server: answers come from the cache
//! only when a fresh evaluation against the active revision would give the
//! same answer, in both directions (a difference in what a policy reads
//! always misses; a difference in anything else shares the entry).

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{json, Value};

const POLICY: &str = r#"package cached

doubled := input.x * 2

sum := input.y.a + input.y.b

# Reads nothing but the clock: never cacheable.
stamp := time.now_ns()
"#;

fn bundle(dir: &std::path::Path, policy: &str) {
    std::fs::write(
        dir.join(".manifest"),
        r#"{"revision": "r1", "roots": ["cached"]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("cached.rego"), policy).unwrap();
}

/// A server on a fresh bundle holding `POLICY` (the directory is returned
/// so that tests can change the bundle and it lives as long as the server).
async fn start(
    adjust: impl FnOnce(&mut portcullis::config::Config),
) -> (tempfile::TempDir, TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    bundle(tmp.path(), POLICY);
    let dir = tmp.path().to_path_buf();
    let server = TestServer::start_with(move |c| {
        c.bundles = vec![dir];
        c.watch.debounce_ms = 20;
        adjust(c);
    })
    .await;
    (tmp, server)
}

/// POST raw text to `path?metrics`: (result, whether the cache answered).
async fn ask(server: &TestServer, path: &str, body: &str) -> (Value, bool) {
    let (status, answer) = server
        .post(&format!("/v1/data/{path}?metrics"), body.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let hit = answer["metrics"]["counter_decision_cache_hit"] == json!(1);
    if hit {
        assert_eq!(answer["metrics"]["timer_rego_query_eval_ns"], json!(0));
    }
    (answer["result"].clone(), hit)
}

#[tokio::test]
async fn equal_reads_hit_and_any_read_difference_misses() {
    let (_bundle, server) = start(|_| {}).await;

    assert_eq!(
        ask(&server, "cached/doubled", r#"{"input": {"x": 2}}"#).await,
        (json!(4), false)
    );
    assert_eq!(
        ask(&server, "cached/doubled", r#"{"input": {"x": 2}}"#).await,
        (json!(4), true)
    );
    // Number spelling, key order and fields the rule does not read do not
    // matter...
    assert_eq!(
        ask(
            &server,
            "cached/doubled",
            r#"{"input": {"noise": [1, 2], "x": 2.0}}"#
        )
        .await,
        (json!(4), true)
    );
    // ...a difference in what it reads does, including its type.
    assert_eq!(
        ask(&server, "cached/doubled", r#"{"input": {"x": 3}}"#).await,
        (json!(6), false)
    );
    let (status, _) = server
        .post("/v1/data/cached/doubled", r#"{"input": {"x": "2"}}"#)
        .await;
    assert_eq!(
        status, 500,
        "a string is not a number: an error, never a cached 4"
    );
    // Nested key order does not matter either.
    let sum_a = r#"{"input": {"y": {"a": 1, "b": 2}}}"#;
    let sum_b = r#"{"input": {"y": {"b": 2, "a": 1e0}}}"#;
    assert_eq!(ask(&server, "cached/sum", sum_a).await, (json!(3), false));
    assert_eq!(ask(&server, "cached/sum", sum_b).await, (json!(3), true));
    // The same input on another path is another entry.
    assert!(!ask(&server, "cached/sum", r#"{"input": {"x": 2}}"#).await.1);
    // Errors are not cached: the same bad input errors again.
    for _ in 0..2 {
        let (status, _) = server
            .post("/v1/data/cached/doubled", r#"{"input": {"x": "2"}}"#)
            .await;
        assert_eq!(status, 500);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_new_revision_is_never_answered_from_the_old_one() {
    let (dir, server) = start(|_| {}).await;
    let body = r#"{"input": {"x": 5}}"#;
    assert_eq!(
        ask(&server, "cached/doubled", body).await,
        (json!(10), false)
    );
    assert_eq!(
        ask(&server, "cached/doubled", body).await,
        (json!(10), true)
    );

    bundle(dir.path(), &POLICY.replace("input.x * 2", "input.x * 3"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = server.get("/v1/status").await;
        if status["result"]["generation"] == json!(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ask(&server, "cached/doubled", body).await,
        (json!(15), false)
    );
    assert_eq!(
        ask(&server, "cached/doubled", body).await,
        (json!(15), true)
    );
    server.stop().await;
}

#[tokio::test]
async fn nondeterministic_and_excluded_paths_are_never_cached_and_say_why() {
    let (_bundle, server) = start(|c| {
        c.cache.exclude_paths = vec!["/cached/sum".into()];
    })
    .await;
    for _ in 0..3 {
        assert!(!ask(&server, "cached/stamp", "{}").await.1);
        assert!(
            !ask(
                &server,
                "cached/sum",
                r#"{"input": {"y": {"a": 1, "b": 1}}}"#
            )
            .await
            .1
        );
    }
    let (_, status) = server.get("/v1/status").await;
    let cache = &status["result"]["cache"];
    assert_eq!(cache["enabled"], json!(true));
    let entry = |path: &str| {
        cache["entry_points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == json!(path))
            .cloned()
            .unwrap_or_else(|| panic!("{path} not listed: {cache}"))
    };
    let stamp = entry("data.cached.stamp");
    assert_eq!(stamp["cacheable"], json!(false));
    let reason = stamp["reason"].as_str().unwrap();
    assert!(
        reason.contains("time.now_ns") && reason.contains("cached.rego:8:"),
        "{reason}"
    );
    let sum = entry("data.cached.sum");
    assert_eq!(sum["cacheable"], json!(false));
    assert!(
        sum["reason"].as_str().unwrap().contains("excluded"),
        "{sum}"
    );
    let doubled = entry("data.cached.doubled");
    assert_eq!(doubled["cacheable"], json!(true));
    assert_eq!(doubled["input_paths"], json!(["x"]));
    server.stop().await;
}

#[tokio::test]
async fn batch_and_v0_share_the_cache_and_metrics_count_it() {
    let (_bundle, server) = start(|_| {}).await;
    let batch = json!({"inputs": {"a": {"x": 1}, "b": {"x": 2}}}).to_string();
    for _ in 0..2 {
        let (status, body) = server
            .post("/v1/batch/data/cached/doubled", batch.clone())
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["responses"]["a"]["result"], json!(2));
        assert_eq!(body["responses"]["b"]["result"], json!(4));
    }
    let (status, body) = server.post("/v0/data/cached/doubled", r#"{"x": 2}"#).await;
    assert_eq!((status, body), (200, json!(4)));
    server
        .assert_metrics(&[
            r#"portcullis_decision_cache_requests_total{cache="data",result="miss"} 2"#,
            r#"portcullis_decision_cache_requests_total{cache="data",result="hit"} 3"#,
            r#"portcullis_decision_cache_entries{cache="data"} 2"#,
        ])
        .await;
    server.stop().await;
}

#[tokio::test]
async fn the_cache_can_be_turned_off() {
    let (_bundle, server) = start(|c| c.cache.enabled = false).await;
    for _ in 0..2 {
        assert_eq!(
            ask(&server, "cached/doubled", r#"{"input": {"x": 1}}"#).await,
            (json!(2), false)
        );
    }
    let (_, status) = server.get("/v1/status").await;
    assert_eq!(status["result"]["cache"]["enabled"], json!(false));
    server.stop().await;
}

#[tokio::test]
async fn requests_and_decisions_are_measured() {
    let (_bundle, server) = start(|_| {}).await;
    for _ in 0..3 {
        ask(&server, "cached/doubled", r#"{"input": {"x": 1}}"#).await;
    }
    let (status, _) = server.post("/v1/data/cached/doubled", "{").await;
    assert_eq!(status, 400);
    let (status, _) = server
        .post("/v1/data/cached/doubled", r#"{"input": {"x": "a"}}"#)
        .await;
    assert_eq!(status, 500);
    let (status, _) = server.post("/v1/data/cached/nothing", "{}").await;
    assert_eq!(status, 200);
    server
        .assert_metrics(&[
        r#"portcullis_http_request_duration_seconds_count{route="/v1/data/{*path}",status="200"} 4"#,
        r#"portcullis_http_request_duration_seconds_count{route="/v1/data/{*path}",status="400"} 1"#,
        r#"portcullis_http_request_duration_seconds_count{route="/v1/data/{*path}",status="500"} 1"#,
        r#"portcullis_http_request_duration_seconds_bucket{route="/v1/data/{*path}",status="200",le="0.00005"}"#,
        r#"portcullis_http_request_duration_seconds_bucket{route="/v1/data/{*path}",status="200",le="10"} 4"#,
        r#"portcullis_decisions_total{outcome="defined",path="data.cached.doubled"} 3"#,
        r#"portcullis_decisions_total{outcome="error",path="data.cached.doubled"} 1"#,
        r#"portcullis_decisions_total{outcome="undefined",path="other"} 1"#,
        ])
        .await;
    server.stop().await;
}
