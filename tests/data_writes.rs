//! Data writes through OPA's Data API against the real server: PUT, PATCH
//! and DELETE with OPA's status codes, refusal under bundle roots, the
//! decision cache never answering from before a write, no partial write
//! ever visible under concurrent reads, the write switch, and persistence
//! across restarts.

mod common;

use std::time::{Duration, Instant};

use common::{repo, TestServer};
use portcullis::config::Config;
use serde_json::{json, Value};

fn with_live(config: &mut Config) {
    config.bundles.push(repo("tests/fixtures/live"));
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    if_none_match: bool,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    send_text(server, method, path, body, if_none_match).await
}

/// Send a request with a text body (JSON or Rego); status and parsed body.
async fn send_text(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
    if_none_match: bool,
) -> (u16, Value) {
    let mut request = server.client.request(method, server.url(path));
    if let Some(body) = body {
        request = request.body(body);
    }
    if if_none_match {
        request = request.header("If-None-Match", "*");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn put_patch_delete_follow_opas_status_codes() {
    use reqwest::Method;
    let server = TestServer::start_with(with_live).await;
    let doc = "/v1/data/live/usage/payments";
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 3})), false).await;
    assert_eq!(status, 204);
    assert_eq!(server.get(doc).await.1["result"], json!({"cpu": 3}));
    // Create-only: the document exists, so nothing changes.
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 99})), true).await;
    assert_eq!(status, 304);
    assert_eq!(server.get(doc).await.1["result"], json!({"cpu": 3}));
    let patch = json!([
        {"op": "replace", "path": "/cpu", "value": 5},
        {"op": "add", "path": "/gpu", "value": 1}
    ]);
    let (status, _) = send(&server, Method::PATCH, doc, Some(patch), false).await;
    assert_eq!(status, 204);
    assert_eq!(
        server.get(doc).await.1["result"],
        json!({"cpu": 5, "gpu": 1})
    );
    let (status, body) = send(
        &server,
        Method::PATCH,
        doc,
        Some(json!([{"op": "remove", "path": "/nothing"}])),
        false,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(&server, Method::DELETE, doc, None, false).await;
    assert_eq!(status, 204);
    assert!(server.get(doc).await.1.get("result").is_none());
    let (status, body) = send(&server, Method::DELETE, doc, None, false).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], json!("resource_not_found"));
    let (status, _) = send(&server, Method::PATCH, doc, Some(json!([])), false).await;
    assert_eq!(status, 404);

    // Paths a bundle owns, and the root, are refused.
    for path in [
        "/v1/data/platform/teams/payments",
        "/v1/data/platform",
        "/v1/data",
    ] {
        let (status, body) = send(&server, Method::PUT, path, Some(json!({})), false).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], json!("invalid_parameter"));
    }
    let (_, body) = send(
        &server,
        Method::PUT,
        "/v1/data/platform/teams/x",
        Some(json!(1)),
        false,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("owned by bundle"),
        "{body}"
    );
    // Malformed JSON is refused before anything happens.
    let malformed = Some("{not json".to_string());
    let (status, _) = send_text(
        &server,
        Method::PUT,
        "/v1/data/live/usage/x",
        malformed,
        false,
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn the_cache_never_answers_from_before_a_write() {
    use reqwest::Method;
    let server = TestServer::start_with(with_live).await;
    let decide = |server: &TestServer| {
        let request = server
            .client
            .post(server.url("/v1/data/live_policy/usage?metrics"))
            .body(json!({"input": {"team": "payments"}}).to_string());
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for cpu in 1..=5 {
        let (status, _) = send(
            &server,
            Method::PUT,
            "/v1/data/live/usage/payments",
            Some(json!({"cpu": cpu})),
            false,
        )
        .await;
        assert_eq!(status, 204);
        let first = decide(&server).await;
        assert_eq!(
            first["result"],
            json!({"cpu": cpu}),
            "fresh after write {cpu}"
        );
        let second = decide(&server).await;
        assert_eq!(second["result"], json!({"cpu": cpu}));
        assert_eq!(
            second["metrics"]["counter_decision_cache_hit"],
            json!(1),
            "the repeat is cached, within the new revision"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_never_see_a_partial_write() {
    use reqwest::Method;
    let server = TestServer::start_with(with_live).await;
    let (status, _) = send(
        &server,
        Method::PUT,
        "/v1/data/live/pair",
        Some(json!({"a": 0, "b": 0})),
        false,
    )
    .await;
    assert_eq!(status, 204);
    let stop = Instant::now() + Duration::from_secs(20);
    let reader = {
        let client = server.client.clone();
        let url = server.url("/v1/data/live_policy/pair_consistent");
        tokio::spawn(async move {
            let mut reads = 0;
            while Instant::now() < stop && reads < 2000 {
                let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
                assert_eq!(
                    body["result"],
                    json!(true),
                    "a half-applied write was visible"
                );
                reads += 1;
            }
            reads
        })
    };
    // Each write changes both halves; a reader must see both or neither.
    for n in 1..=15 {
        let (status, _) = send(
            &server,
            Method::PATCH,
            "/v1/data/live/pair",
            Some(json!([
                {"op": "replace", "path": "/a", "value": n},
                {"op": "replace", "path": "/b", "value": n}
            ])),
            false,
        )
        .await;
        assert_eq!(status, 204);
    }
    let reads = reader.await.unwrap();
    assert!(reads > 10, "the reader ran ({reads} reads)");
    assert_eq!(
        server.get("/v1/data/live/pair").await.1["result"],
        json!({"a": 15, "b": 15})
    );
    server.stop().await;
}

#[tokio::test]
async fn writes_can_be_turned_off() {
    let server = TestServer::start_with(|c| {
        with_live(c);
        c.data_writes.enabled = false;
    })
    .await;
    let body = Some("{}".to_string());
    let (status, _) = send_text(
        &server,
        reqwest::Method::PUT,
        "/v1/data/live/usage/payments",
        body,
        false,
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn pushed_data_survives_a_restart_only_when_persisted() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pushed.json");
    let persisted = |file: std::path::PathBuf| {
        move |c: &mut Config| {
            with_live(c);
            c.data_writes.persist_file = Some(file);
        }
    };
    let doc = "/v1/data/live/usage/payments";
    let server = TestServer::start_with(persisted(file.clone())).await;
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 7})), false).await;
    assert_eq!(status, 204);
    server.stop().await;
    assert!(file.exists());

    let server = TestServer::start_with(persisted(file.clone())).await;
    assert_eq!(
        server.get(doc).await.1["result"],
        json!({"cpu": 7}),
        "replayed at start"
    );
    server.stop().await;

    let server = TestServer::start_with(with_live).await;
    assert!(
        server.get(doc).await.1.get("result").is_none(),
        "in memory only"
    );
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 1})), false).await;
    assert_eq!(status, 204);
    server.stop().await;
    let server = TestServer::start_with(with_live).await;
    assert!(
        server.get(doc).await.1.get("result").is_none(),
        "gone after a restart"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_write_that_cannot_be_persisted_is_not_applied() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let file = state.join("pushed.json");
    let persist = file.clone();
    let server = TestServer::start_with(move |c| {
        with_live(c);
        c.data_writes.persist_file = Some(persist);
    })
    .await;
    let doc = "/v1/data/live/usage/payments";
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 7})), false).await;
    assert_eq!(status, 204);
    // The state directory cannot be written (here a file stands where it
    // was; in production a full disk or a read-only volume): the next
    // write fails, and it is not served either.
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, "not a directory").unwrap();
    let (status, body) = send(&server, Method::PUT, doc, Some(json!({"cpu": 9})), false).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("not applied"), "{body}");
    assert_eq!(server.get(doc).await.1["result"], json!({"cpu": 7}));
    // Once it can be written again, writes apply and persist.
    std::fs::remove_file(&state).unwrap();
    let (status, _) = send(&server, Method::PUT, doc, Some(json!({"cpu": 11})), false).await;
    assert_eq!(status, 204);
    assert_eq!(server.get(doc).await.1["result"], json!({"cpu": 11}));
    assert!(std::fs::read_to_string(&file).unwrap().contains("11"));
    server.stop().await;
}

#[tokio::test]
async fn policies_can_be_pushed_replaced_and_deleted_but_not_bundle_modules() {
    use reqwest::Method;
    let server = TestServer::start_with(with_live).await;
    let put_policy = |id: &str, text: &str| {
        let path = format!("/v1/policies/{id}");
        let body = Some(text.to_string());
        let server = &server;
        async move { send_text(server, reqwest::Method::PUT, &path, body, false).await }
    };
    let (status, _) = send(
        &server,
        Method::PUT,
        "/v1/data/live/usage/payments",
        Some(json!({"cpu": 4})),
        false,
    )
    .await;
    assert_eq!(status, 204);
    let module =
        "package live_extra\n\nimport rego.v1\n\ndouble := data.live.usage.payments.cpu * 2\n";
    let (status, body) = put_policy("live/extra.rego", module).await;
    assert_eq!((status, &body), (200, &json!({})));
    assert_eq!(
        server.get("/v1/data/live_extra/double").await.1["result"],
        json!(8)
    );
    let (_, listed) = server.get("/v1/policies/live/extra.rego").await;
    assert_eq!(listed["result"]["raw"], json!(module));

    // A module that does not parse: 400 with the position; nothing changes.
    let (status, body) = put_policy("live/extra.rego", "package live_extra\n\ndouble := \n").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]["location"]["row"].is_u64(), "{body}");
    assert_eq!(
        server.get("/v1/data/live_extra/double").await.1["result"],
        json!(8)
    );

    // A module calling a function nothing defines: 400 at the call, as OPA
    // refuses it when it compiles; nothing changes.
    let (status, body) = put_policy(
        "live/extra.rego",
        "package live_extra\n\nimport rego.v1\n\ndouble := 1 if regex.mtch(\"a\", \"a\")\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        json!("undefined function regex.mtch"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["location"]["row"], json!(5), "{body}");
    assert_eq!(body["errors"][0]["location"]["col"], json!(16), "{body}");
    assert_eq!(
        server.get("/v1/data/live_extra/double").await.1["result"],
        json!(8)
    );

    // Collections nested deeper than regorus parses in reasonable time:
    // refused at once, at the collection that crosses the limit.
    let deep = format!(
        "package live_extra\n\nimport rego.v1\n\ndouble := {}1{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    let (status, body) = put_policy("live/extra.rego", &deep).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["code"],
        json!("rego_parse_error"),
        "{body}"
    );
    assert_eq!(body["errors"][0]["location"]["row"], json!(5), "{body}");
    assert_eq!(body["errors"][0]["location"]["col"], json!(27), "{body}");
    assert_eq!(
        server.get("/v1/data/live_extra/double").await.1["result"],
        json!(8)
    );

    // Packages under a bundle's root, and the bundle's own modules, are refused.
    let (status, body) =
        put_policy("live/evil.rego", "package provisioning.evil\n\nx := 1\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("owned by bundle"),
        "{body}"
    );
    let (status, _) = put_policy(
        "policies/provisioning/quota.rego",
        "package provisioning\n\nx := 1\n",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &server,
        Method::DELETE,
        "/v1/policies/policies/provisioning/quota.rego",
        None,
        false,
    )
    .await;
    assert_eq!(status, 403);

    let (status, _) = send(
        &server,
        Method::DELETE,
        "/v1/policies/live/extra.rego",
        None,
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert!(server
        .get("/v1/data/live_extra/double")
        .await
        .1
        .get("result")
        .is_none());
    let (status, _) = send(
        &server,
        Method::DELETE,
        "/v1/policies/live/extra.rego",
        None,
        false,
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// The servers example from OPA's REST API documentation, pushed and
/// queried the way the documentation does it.
#[tokio::test]
async fn opas_documented_servers_example_answers_the_same() {
    use reqwest::Method;
    let server = TestServer::start().await;
    let servers = json!([
        {"id": "s1", "name": "app", "protocols": ["https", "ssh"], "ports": ["p1", "p2", "p3"]},
        {"id": "s2", "name": "db", "protocols": ["mysql"], "ports": ["p3"]},
        {"id": "s3", "name": "cache", "protocols": ["memcache"], "ports": ["p3"]},
        {"id": "s4", "name": "dev", "protocols": ["http"], "ports": ["p1", "p2"]}
    ]);
    let (status, _) = send(
        &server,
        Method::PUT,
        "/v1/data/servers",
        Some(servers),
        false,
    )
    .await;
    assert_eq!(status, 204);
    // Append with the "-" index, as the documentation's PATCH does.
    let (status, body) = send(
        &server,
        Method::PATCH,
        "/v1/data/servers",
        Some(json!([{"op": "add", "path": "-", "value":
            {"id": "s5", "name": "web", "protocols": ["https"], "ports": ["p2"]}}])),
        false,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, body) = server.get("/v1/data/servers/4/name").await;
    assert_eq!(body["result"], json!("web"));

    let query = "data.servers[i].ports[_] = \"p2\"; data.servers[i].name = name";
    let url = common::query_url(query);
    let (status, body) = server.get(&url).await;
    assert_eq!(status, 200, "{body}");
    let mut rows: Vec<(u64, String)> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["i"].as_u64().unwrap(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows.dedup();
    assert_eq!(
        rows,
        vec![
            (0, "app".to_string()),
            (3, "dev".to_string()),
            (4, "web".to_string())
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn readiness_can_wait_for_the_first_push() {
    use reqwest::Method;
    let server = TestServer::start_with(|c| {
        with_live(c);
        c.data_writes.ready_after_first_push = true;
    })
    .await;
    let ready = |server: &TestServer| {
        let request = server.client.get(server.url("/health/ready"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(ready(&server).await, 503);
    let (status, _) = send(
        &server,
        Method::PUT,
        "/v1/data/live/usage/payments",
        Some(json!({"cpu": 1})),
        false,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(ready(&server).await, 200);
    server.stop().await;
}
