//! Decision logs against the real server: one event per decision in OPA's
//! schema, masked fields never written to any sink, the HTTP sink's gzip
//! batches, and what a sink that is down does in drop and never-drop mode.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use common::{example_request, TestServer};
use portcullis::config::{Config, DecisionLogSink, MaskPointer};
use serde_json::{json, Value};

const TOKEN: &str = "tok-5f1d2c9e-never-log-me";
const CARD: &str = "4111-1111-1111-1111";

/// An input carrying a credential the shipped mask policy erases and a
/// card number the configured pointer replaces.
fn secret_laden_input() -> Value {
    let mut input = example_request();
    input["token"] = json!(TOKEN);
    input["payment"] = json!({"card": CARD, "holder": "payments"});
    input
}

fn mask_card(config: &mut Config) {
    config.decision_logs.enabled = true;
    config.decision_logs.mask.pointers = vec![MaskPointer {
        pointer: "/input/payment/card".into(),
        value: Some(json!("****")),
    }];
}

fn read_events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON event"))
        .collect()
}

#[tokio::test]
async fn every_decision_is_logged_to_the_file_in_opa_schema_with_masks_applied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decisions.jsonl");
    let log_file = file.clone();
    let server = TestServer::start_with(move |c| {
        mask_card(c);
        c.decision_logs.sink = DecisionLogSink::File;
        c.decision_logs.file.path = log_file;
        c.decision_logs.labels = [("cluster".to_string(), "test".to_string())].into();
    })
    .await;

    let input = secret_laden_input();
    // Pretty-printed: the event must still be one line.
    let (status, v1) = server
        .post(
            "/v1/data/provisioning/decision",
            serde_json::to_string_pretty(&json!({ "input": input })).unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/v1/data/system/main").await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post("/v0/data/provisioning/decision", input.to_string())
        .await;
    assert_eq!(status, 200);
    let (status, batch) = server
        .post(
            "/v1/batch/data/provisioning/decision",
            json!({"inputs": {"a": input, "b": {"team": "nobody", "token": TOKEN}}}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post("/v1/data/provisioning/decision", "{\"input\": 1")
        .await;
    assert_eq!(status, 400, "malformed bodies are not decisions");
    server
        .assert_metrics(&["portcullis_decision_log_events_total{stage=\"enqueued\"} 5"])
        .await;
    server.stop().await; // flushes the log

    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(TOKEN), "the token reached the file");
    assert!(!text.contains(CARD), "the card number reached the file");
    let events = read_events(&file);
    assert_eq!(events.len(), 5, "one event per decision: {text}");

    let first = &events[0];
    assert_eq!(first["decision_id"], v1["decision_id"]);
    assert_eq!(first["path"], json!("provisioning/decision"));
    assert_eq!(first["result"], v1["result"]);
    assert_eq!(first["input"]["team"], input["team"]);
    assert_eq!(
        first["input"]["payment"],
        json!({"card": "****", "holder": "payments"})
    );
    assert!(first["input"].get("token").is_none());
    assert_eq!(first["erased"], json!(["/input/token"]));
    assert_eq!(first["masked"], json!(["/input/payment/card"]));
    assert_eq!(
        first["bundles"]["policies"]["revision"],
        json!("policies-2026.11.30.1")
    );
    assert_eq!(first["labels"]["cluster"], json!("test"));
    assert!(first["labels"]["id"].is_string() && first["labels"]["version"].is_string());
    assert!(first["requested_by"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(first["metrics"]["timer_rego_query_eval_ns"].is_u64());

    assert_eq!(events[1]["path"], json!("system/main"));
    assert!(events[1].get("input").is_none(), "GET has no input");
    assert_eq!(events[2]["input"]["payment"]["card"], json!("****"));
    let batch_id = &batch["batch_decision_id"];
    let batched: Vec<&Value> = events[3..].iter().collect();
    assert!(batched.iter().all(|e| &e["batch_decision_id"] == batch_id));
    let ids: Vec<&Value> = batched.iter().map(|e| &e["decision_id"]).collect();
    assert!(ids.contains(&&batch["responses"]["a"]["decision_id"]));
    assert!(ids.contains(&&batch["responses"]["b"]["decision_id"]));
}

/// A server logging every decision to a file in a temporary directory
/// (kept while the returned handle lives).
async fn logging_to_a_file() -> (tempfile::TempDir, std::path::PathBuf, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decisions.jsonl");
    let log_file = file.clone();
    let server = TestServer::start_with(move |c| {
        c.decision_logs.enabled = true;
        c.decision_logs.sink = DecisionLogSink::File;
        c.decision_logs.file.path = log_file;
    })
    .await;
    (dir, file, server)
}

#[tokio::test]
async fn evaluation_errors_are_logged_with_the_error() {
    let (_dir, file, server) = logging_to_a_file().await;
    let (status, body) = server
        .post(
            "/v1/data/edge/conflict",
            r#"{"input": {"a": true, "b": true}}"#,
        )
        .await;
    assert_eq!(status, 500);
    server.stop().await;
    let events = read_events(&file);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["input"], json!({"a": true, "b": true}));
    assert_eq!(events[0]["error"]["code"], body["code"]);
    assert!(events[0].get("result").is_none());
}

#[tokio::test]
async fn the_logged_input_is_the_input_wherever_the_body_puts_it() {
    let (_dir, file, server) = logging_to_a_file().await;
    let input =
        json!({"team": "payments", "note": "a \"quoted\" }, ] brace", "n": [1, {"m": null}]});
    let bodies = [
        // First, middle and last member; whitespace and line breaks around.
        format!(r#"{{"input": {input}, "other": [1, {{"input": 2}}]}}"#),
        format!("{{ \"a\": \"input\" ,\n  \"input\"\t:\n {input:#} ,\n \"z\": {{}} }}\n"),
        format!(r#"{{"other": "}}", "input":{input}}}"#),
        // An escaped key: the parser unescapes it, so the writer finds it.
        format!(r#"{{"\u0069nput": {input}, "\u007a": 1}}"#),
        // Null input is no input.
        r#"{"input": null, "x": 1}"#.to_string(),
    ];
    for body in &bodies {
        let (status, _) = server
            .post("/v1/data/provisioning/decision", body.clone())
            .await;
        assert_eq!(status, 200, "{body}");
    }
    server.stop().await;
    let events = read_events(&file);
    assert_eq!(events.len(), bodies.len());
    for (event, body) in events.iter().zip(&bodies[..4]) {
        assert_eq!(event["input"], input, "{body}");
    }
    assert!(events[4].get("input").is_none(), "null input is no input");
}

/// A collector that takes gzip-compressed JSON arrays, and fails the first
/// `fail_first` uploads (503), or every upload when it is `usize::MAX`.
#[derive(Clone, Default)]
struct Collector {
    events: Arc<Mutex<Vec<Value>>>,
    uploads: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
}

impl Collector {
    async fn start(fail_first: usize) -> (Collector, String) {
        let collector = Collector::default();
        collector.fail_first.store(fail_first, Ordering::SeqCst);
        let state = collector.clone();
        let app = axum::Router::new().route(
            "/logs",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: Bytes| async move {
                    let n = state.uploads.fetch_add(1, Ordering::SeqCst);
                    if n < state.fail_first.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    assert_eq!(headers["content-encoding"], "gzip");
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_string(&mut text)
                        .expect("gzip body");
                    let batch: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
                    state.events.lock().unwrap().extend(batch);
                    StatusCode::NO_CONTENT
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/logs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (collector, url)
    }

    fn received(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}

fn http_sink(config: &mut Config, url: String) {
    mask_card(config);
    config.decision_logs.sink = DecisionLogSink::Http;
    config.decision_logs.http.url = Some(url);
    config.decision_logs.http.batch_max_events = 8;
    config.decision_logs.http.flush_interval_ms = 50;
    config.decision_logs.http.retry_base_ms = 5;
}

/// Send `n` decisions from 8 concurrent callers; every one must be
/// answered 200. Returns the decision ids.
async fn decide_n(server: &TestServer, n: usize) -> Vec<String> {
    let body = json!({ "input": secret_laden_input() }).to_string();
    let url = server.url("/v1/data/provisioning/decision");
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..8 {
        let (client, url, body) = (server.client.clone(), url.clone(), body.clone());
        callers.spawn(async move {
            let mut ids = Vec::new();
            for _ in (caller..n).step_by(8) {
                let response = client.post(&url).body(body.clone()).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let answer: Value = response.json().await.unwrap();
                ids.push(answer["decision_id"].as_str().unwrap().to_string());
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = callers.join_next().await {
        ids.extend(done.unwrap());
    }
    ids
}

#[tokio::test]
async fn the_http_sink_posts_masked_gzip_batches() {
    let (collector, url) = Collector::start(0).await;
    let server = TestServer::start_with(move |c| http_sink(c, url)).await;
    let ids = decide_n(&server, 20).await;
    server.stop().await;
    let received = collector.received();
    let text = serde_json::to_string(&received).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(CARD));
    let mut got: Vec<String> = received
        .iter()
        .map(|e| e["decision_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want = ids;
    want.sort();
    assert_eq!(got, want);
    assert!(
        collector.uploads.load(Ordering::SeqCst) < 20,
        "events travel in batches"
    );
}

#[tokio::test]
async fn a_sink_that_is_down_loses_nothing_in_never_drop_mode() {
    // The collector refuses the first 6 uploads, long enough for the small
    // queue to fill: handlers then wait instead of dropping.
    let (collector, url) = Collector::start(6).await;
    let server = TestServer::start_with(move |c| {
        http_sink(c, url);
        c.decision_logs.never_drop = true;
        c.decision_logs.queue_size = 4;
        c.decision_logs.http.max_retries = 0;
    })
    .await;
    let ids = decide_n(&server, 40).await;
    let metrics = server.metrics().await;
    server.stop().await;
    let received = collector.received();
    assert_eq!(received.len(), ids.len(), "every decision arrived");
    assert!(collector.uploads.load(Ordering::SeqCst) > 6);
    assert!(
        metrics.contains("portcullis_decision_log_sink_errors_total 6"),
        "{metrics}"
    );
    for reason in ["queue_full", "sink_failed", "shutdown"] {
        let line = format!("portcullis_decision_log_dropped_total{{reason=\"{reason}\"}} 0");
        assert!(metrics.contains(&line), "{line} not in {metrics}");
    }
}

#[tokio::test]
async fn a_sink_that_is_down_counts_drops_and_never_slows_decisions() {
    let (collector, url) = Collector::start(usize::MAX).await;
    let server = TestServer::start_with(move |c| {
        http_sink(c, url);
        c.decision_logs.queue_size = 2;
        c.decision_logs.http.max_retries = 1;
        c.decision_logs.shutdown_timeout_ms = 2_000;
    })
    .await;
    let ids = decide_n(&server, 40).await;
    assert_eq!(
        ids.len(),
        40,
        "every decision answered although the sink is down"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = server.metrics().await;
    let value = |line: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{line} not in {metrics}"))
    };
    let enqueued = value("portcullis_decision_log_events_total{stage=\"enqueued\"}");
    let queue_full = value("portcullis_decision_log_dropped_total{reason=\"queue_full\"}");
    let sink_failed = value("portcullis_decision_log_dropped_total{reason=\"sink_failed\"}");
    assert_eq!(enqueued + queue_full, 40, "{metrics}");
    assert!(queue_full > 0, "a full queue drops: {metrics}");
    assert!(
        sink_failed > 0,
        "failed uploads are dropped after retries: {metrics}"
    );
    assert_eq!(
        value("portcullis_decision_log_events_total{stage=\"written\"}"),
        0
    );
    assert!(collector.received().is_empty());
    server.stop().await;
}
