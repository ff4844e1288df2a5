//! OPA's ad-hoc query API (`/v1/query`) against the real server: binding
//! rows in OPA's shape, no `result` when nothing matches, input, metrics,
//! and parse errors with their position.

mod common;

use common::{query_url, TestServer};
use serde_json::json;

#[tokio::test]
async fn queries_answer_one_binding_object_per_row() {
    let server = TestServer::start().await;
    let (status, body) = server
        .get(&query_url("x := count(data.platform.teams)"))
        .await;
    assert_eq!(status, 200);
    let teams = body["result"][0]["x"].as_u64().unwrap();
    assert!(teams > 0, "{body}");

    let (_, body) = server.get(&query_url("x := [1, 2, 3][_]")).await;
    assert_eq!(body, json!({"result": [{"x": 1}, {"x": 2}, {"x": 3}]}));
    // True without variables: one empty row. Nothing matches: no result.
    let (_, body) = server.get(&query_url("1 == 1")).await;
    assert_eq!(body, json!({"result": [{}]}));
    let (status, body) = server.get(&query_url("1 == 2")).await;
    assert_eq!((status, body), (200, json!({})));
    let (_, body) = server.get(&query_url("x := data.no.such.document")).await;
    assert_eq!(body, json!({}));

    let (status, body) = server
        .post(
            "/v1/query?metrics",
            json!({"query": "y := input.a; input.a > 2", "input": {"a": 3}}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!([{"y": 3}]));
    assert!(body["metrics"]["timer_rego_query_eval_ns"].is_u64());
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_are_400_with_the_position() {
    let server = TestServer::start().await;
    let (status, body) = server.get(&query_url("x := ")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], json!("invalid_parameter"));
    assert_eq!(body["errors"][0]["code"], json!("rego_parse_error"));
    assert_eq!(body["errors"][0]["location"]["row"], json!(1));
    // Nesting regorus would take minutes to parse: refused at once, at
    // the collection that crosses the limit.
    let deep = format!("x := {}1{}", "[".repeat(40), "]".repeat(40));
    let (status, body) = server
        .post("/v1/query", json!({ "query": deep }).to_string())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["code"], json!("rego_parse_error"));
    assert_eq!(body["errors"][0]["location"]["col"], json!(22), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("nest 17 deep"),
        "{body}"
    );
    let (status, body) = server.get("/v1/query").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("q"), "{body}");
    let (status, body) = server.post("/v1/query", "{\"input\": {}}").await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], json!("invalid_parameter"));
    server.stop().await;
}

#[tokio::test]
async fn negation_and_builtin_errors_answer_as_opa() {
    let server = TestServer::start().await;
    // The terms under `not` are evaluated first: without `input.name` the
    // query is undefined in OPA, and no row shows the rewrite's variables.
    let (status, body) = server
        .post(
            "/v1/query",
            json!({"query": "not startswith(input.name, \"a\")", "input": {}}).to_string(),
        )
        .await;
    assert_eq!((status, body), (200, json!({})));
    let (_, body) = server
        .post(
            "/v1/query",
            json!({"query": "x := 1; not startswith(input.name, \"a\")", "input": {"name": "bob"}})
                .to_string(),
        )
        .await;
    assert_eq!(body, json!({"result": [{"x": 1}]}));

    // A builtin that fails is undefined by default, an error on request.
    let ask = json!({"input": {"text": "not a number"}}).to_string();
    let (status, body) = server.post("/v1/data/edge/number", ask.clone()).await;
    assert_eq!(status, 200);
    assert!(body.get("result").is_none(), "{body}");
    let (status, body) = server
        .post("/v1/data/edge/number?strict-builtin-errors", ask)
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("as number"),
        "{body}"
    );
    let (_, body) = server
        .post(
            "/v1/data/edge/number?strict-builtin-errors",
            json!({"input": {"text": "12"}}).to_string(),
        )
        .await;
    assert_eq!(body["result"], json!(12));
    server.stop().await;
}
