//! Every input limit answers with its own error while the server keeps
//! serving: in-flight requests (503 + Retry-After at once), body size,
//! JSON depth, batch size and evaluation time.

mod common;

use std::time::{Duration, Instant};

use common::{example_request, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn beyond_max_in_flight_requests_get_503_with_retry_after_at_once() {
    let server = TestServer::start_with(|c| c.limits.max_in_flight = 1).await;
    // Hold the only slot: a request whose body has not finished arriving.
    let addr = server.base.trim_start_matches("http://").to_string();
    let body = json!({ "input": example_request() }).to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/data/provisioning/decision HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..10]).await.unwrap();
    // Once the server has the held request's head, the next one is refused
    // (bounded: 50 tries, 100 ms apart, in case the server is slow to read).
    let mut refused = None;
    for _ in 0..50 {
        let started = Instant::now();
        let response = server
            .client
            .post(server.url("/v1/data/provisioning/decision"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "refused at once, not queued"
            );
            refused = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("a request beyond the limit is refused");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("limit 1"),
        "{error}"
    );
    // Probes still answer while the replica is saturated.
    let health = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The held request completes normally once its body arrives.
    slow.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, _) = server.post("/v1/data/provisioning/decision", body).await;
    assert_eq!(status, 200, "the slot is free again");
    server
        .assert_metrics(&["portcullis_requests_refused_overload_total 1"])
        .await;
    server.stop().await;
}

#[tokio::test]
async fn each_input_limit_has_its_own_error_and_the_server_keeps_serving() {
    let server = TestServer::start_with(|c| {
        c.limits.max_body_bytes = 4096;
        c.limits.max_json_depth = 8;
        c.limits.max_batch_inputs = 2;
    })
    .await;
    let cases = [
        (
            "/v1/data/provisioning/decision",
            format!("{{\"input\": \"{}\"}}", "x".repeat(5000)),
            413,
            "4096",
        ),
        (
            "/v1/data/provisioning/decision",
            format!("{{\"input\": {}{}}}", "[".repeat(20), "]".repeat(20)),
            400,
            "depth",
        ),
        (
            "/v1/batch/data/provisioning/decision",
            json!({"inputs": {"a": {}, "b": {}, "c": {}}}).to_string(),
            400,
            "limit is 2",
        ),
        (
            "/v1/data/provisioning/decision",
            "{\"input\": [1,".to_string(),
            400,
            "line 1",
        ),
    ];
    for (path, body, status, needle) in cases {
        let (got, error) = server.post(path, body).await;
        assert_eq!(got, status, "{path}: {error}");
        let text = error.to_string();
        assert!(text.contains(needle), "{needle} not in {text}");
        let (ok, _) = server
            .post(
                "/v1/data/provisioning/decision",
                json!({ "input": example_request() }).to_string(),
            )
            .await;
        assert_eq!(ok, 200, "still serving after {path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_evaluation_is_cut_off_while_other_requests_keep_flowing() {
    let server = TestServer::start_with(|c| c.limits.eval_timeout_ms = 1500).await;
    let slow = {
        let client = server.client.clone();
        let url = server.url("/v1/data/edge/slow");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .post(url)
                .body("{\"input\": {}}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While the slow evaluation runs, quick ones are answered promptly.
    for _ in 0..20 {
        let started = Instant::now();
        let (status, _) = server.post("/v1/data/edge/greeting", "{}").await;
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
    }
    let (status, body, took) = slow.await.unwrap();
    assert_eq!(status, 500);
    assert_eq!(body["errors"][0]["code"], json!("eval_timeout_error"));
    assert!(
        took < Duration::from_secs(10),
        "cut off near the limit: {took:?}"
    );
    server.stop().await;
}
