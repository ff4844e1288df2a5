//! One `request` span per request, carrying the decision id, the data
//! path, the bundle revisions, the status and the latency.

mod common;

use std::sync::{Arc, Mutex};

use common::TestServer;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_request_has_a_span_with_its_decision() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let (status, body) = server
        .post("/v1/data/edge/greeting", r#"{"input": {}}"#)
        .await;
    assert_eq!(status, 200);
    let decision_id = body["decision_id"].as_str().unwrap().to_string();
    server.stop().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("answered") && l.contains(&decision_id))
        .unwrap_or_else(|| panic!("no request span with {decision_id} in:\n{text}"));
    for field in [
        "method=POST",
        "route=\"/v1/data/{*path}\"",
        "path=\"data.edge.greeting\"",
        "revision=\"policies=policies-2026.11.30.1,bundles=platform-data-2026.11.22.2,edge=",
        "status=200",
        "latency_us=",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
}
