//! The OPA Data API against the real server: response shapes exactly as OPA
//! defines them, and every error path.

mod common;

use common::{example_request, TestServer};
use serde_json::json;

fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn assert_decision_id(body: &serde_json::Value) {
    let id = body["decision_id"]
        .as_str()
        .expect("decision_id is a string");
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "decision_id {id} is a UUID"
    );
}

#[tokio::test]
async fn v1_post_returns_the_full_quota_decision() {
    let server = TestServer::start().await;
    let body = json!({"input": example_request()}).to_string();
    let (status, response) = server.post("/v1/data/provisioning/decision", body).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&response), ["decision_id", "result"]);
    assert_decision_id(&response);
    assert_eq!(
        response["result"],
        json!({
            "allowed": true,
            "violations": [],
            "warnings": [],
            "limits": {
                "quota": {"cpu": 128, "memory_gb": 512, "storage_gb": 4000, "gpu": 0,
                          "databases": 10, "caches": 6, "environments": 20,
                          "monthly_budget": 25000},
                "class": {"cpu": 8, "memory_gb": 16, "storage_gb": 100, "gpu": 0,
                          "databases": 2, "caches": 1},
                "max_ttl_hours": 168
            }
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn v1_post_denies_with_every_violation() {
    let server = TestServer::start().await;
    let mut input = example_request();
    input["owner"] = json!("mallory");
    input["ttl_hours"] = json!(400);
    input["source_env"] = json!("prod");
    let (status, response) = server
        .post(
            "/v1/data/provisioning/decision",
            json!({"input": input}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["result"]["allowed"], json!(false));
    let mut codes: Vec<&str> = response["result"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        ["forbidden_source", "owner_not_in_team", "ttl_too_long"]
    );
    server.stop().await;
}

#[tokio::test]
async fn undefined_document_has_no_result_key() {
    let server = TestServer::start().await;
    let (status, response) = server
        .post("/v1/data/provisioning/no_such_rule", r#"{"input": {}}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(keys(&response), ["decision_id"]);
    let (status, response) = server.get("/v1/data/nowhere/at/all").await;
    assert_eq!(status, 200);
    assert_eq!(keys(&response), ["decision_id"]);
    server.stop().await;
}

#[tokio::test]
async fn missing_input_still_evaluates_with_opas_warning() {
    let server = TestServer::start().await;
    for body in ["{}", "", r#"{"input": null}"#] {
        let (status, response) = server.post("/v1/data/edge/greeting", body).await;
        assert_eq!(status, 200, "body {body:?}");
        assert_eq!(response["result"], json!("hello"));
        assert_eq!(
            response["warning"],
            json!({"code": "api_usage_warning", "message": "'input' key missing from the request"})
        );
    }
    let (_, response) = server
        .post("/v1/data/edge/greeting", r#"{"input": 1}"#)
        .await;
    assert!(response.get("warning").is_none());
    server.stop().await;
}

#[tokio::test]
async fn get_reads_data_rules_and_packages() {
    let server = TestServer::start().await;
    let (status, response) = server.get("/v1/data/edge/settings").await;
    assert_eq!(status, 200);
    assert_eq!(response["result"], json!({"level": 3, "names": ["a", "b"]}));
    let (_, response) = server.get("/v1/data/edge/settings/names/1").await;
    assert_eq!(response["result"], json!("b"));
    let (_, response) = server
        .get("/v1/data/platform/classes/feature/max_ttl_hours")
        .await;
    assert_eq!(response["result"], json!(168));
    let (_, response) = server.get("/v1/data/system").await;
    assert_eq!(response["result"]["main"]["allowed"], json!(false));
    server.stop().await;

    // The whole document evaluates every rule, so it is served by a server
    // without the deliberately slow fixture.
    let shipped = TestServer::start_with(|c| {
        c.bundles = vec![common::repo("policies"), common::repo("bundles")]
    })
    .await;
    let (status, response) = shipped.get("/v1/data").await;
    assert_eq!(status, 200);
    assert!(response["result"]["platform"]["teams"]["payments"].is_object());
    assert!(response["result"]["provisioning"]["decision"].is_object());
    shipped.stop().await;
}

#[tokio::test]
async fn v0_returns_the_raw_value_and_404_when_undefined() {
    let server = TestServer::start().await;
    let (status, response) = server
        .post(
            "/v0/data/provisioning/decision/allowed",
            example_request().to_string(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(response, json!(true));
    let (status, response) = server.post("/v0/data/edge/echo", r#"{"x": [1, 2]}"#).await;
    assert_eq!(status, 200);
    assert_eq!(response, json!({"x": [1, 2]}));
    let (status, response) = server.post("/v0/data/edge/nothing", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(
        response,
        json!({"code": "undefined_document", "message": "document missing or undefined: data.edge.nothing"})
    );
    server.stop().await;
}

#[tokio::test]
async fn post_root_evaluates_the_default_decision() {
    let server = TestServer::start().await;
    let (status, response) = server.post("/", example_request().to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(response["allowed"], json!(true));

    let other = TestServer::start_with(|c| c.default_decision = "/edge/nothing".into()).await;
    let (status, response) = other.post("/", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(response["code"], json!("undefined_document"));
    assert_eq!(
        response["message"],
        json!("document missing or undefined: data.edge.nothing")
    );
    server.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn query_flags_pretty_provenance_metrics() {
    let server = TestServer::start().await;
    let response = server
        .client
        .post(server.url("/v1/data/edge/greeting?pretty&provenance&metrics"))
        .body(r#"{"input": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("\n  \"result\": \"hello\""), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["provenance"]["bundles"],
        json!({
            "policies": {"revision": "policies-2026.11.30.1"},
            "bundles": {"revision": "platform-data-2026.11.22.2"},
            "edge": {"revision": "edge-1"}
        })
    );
    assert_eq!(
        body["provenance"]["version"],
        json!(env!("CARGO_PKG_VERSION"))
    );
    for timer in [
        "timer_rego_input_parse_ns",
        "timer_rego_query_eval_ns",
        "timer_server_handler_ns",
    ] {
        assert!(
            body["metrics"][timer].as_u64().is_some(),
            "{timer} in {body}"
        );
    }
    let (_, plain) = server
        .post("/v1/data/edge/greeting", r#"{"input": {}}"#)
        .await;
    assert_eq!(keys(&plain), ["decision_id", "result"]);
    server.stop().await;
}

#[tokio::test]
async fn policies_are_listed_with_their_revisions() {
    let server = TestServer::start().await;
    let (status, response) = server.get("/v1/policies").await;
    assert_eq!(status, 200);
    let list = response["result"].as_array().unwrap();
    let quota = list
        .iter()
        .find(|p| p["id"] == json!("policies/provisioning/quota.rego"))
        .expect("quota module listed");
    assert_eq!(quota["revision"], json!("policies-2026.11.30.1"));
    assert_eq!(quota["bundle"], json!("policies"));
    assert_eq!(quota["package"], json!("data.provisioning"));
    assert!(quota["raw"]
        .as_str()
        .unwrap()
        .contains("package provisioning"));

    let (status, one) = server.get("/v1/policies/edge/edge.rego").await;
    assert_eq!(status, 200);
    assert_eq!(one["result"]["revision"], json!("edge-1"));
    let (status, missing) = server.get("/v1/policies/nope.rego").await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], json!("resource_not_found"));
    server.stop().await;
}

#[tokio::test]
async fn batch_answers_every_input_and_isolates_errors() {
    let server = TestServer::start().await;
    let mut denied = example_request();
    denied["team"] = json!("nobody");
    let body = json!({"inputs": {"ok": example_request(), "denied": denied}}).to_string();
    let (status, response) = server
        .post("/v1/batch/data/provisioning/decision/allowed", body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["responses"]["ok"]["result"], json!(true));
    assert_eq!(response["responses"]["denied"]["result"], json!(false));
    assert_decision_id(&response["responses"]["ok"]);

    let body =
        json!({"inputs": {"fine": {"a": true}, "broken": {"a": true, "b": true}, "undefined": {}}});
    let (status, response) = server
        .post("/v1/batch/data/edge/conflict", body.to_string())
        .await;
    assert_eq!(status, 207);
    assert_eq!(response["responses"]["fine"]["result"], json!(1));
    assert_eq!(keys(&response["responses"]["undefined"]), ["decision_id"]);
    let broken = &response["responses"]["broken"];
    assert_eq!(broken["code"], json!("evaluation_error"));
    assert_eq!(broken["http_status_code"], json!("500"));
    server.stop().await;
}

#[tokio::test]
async fn batch_limits_and_shape_errors() {
    let server = TestServer::start_with(|c| c.limits.max_batch_inputs = 2).await;
    let body = json!({"inputs": {"a": {}, "b": {}, "c": {}}}).to_string();
    let (status, response) = server.post("/v1/batch/data/edge/echo", body).await;
    assert_eq!(status, 400);
    assert_eq!(response["code"], json!("invalid_parameter"));
    assert!(response["message"].as_str().unwrap().contains("limit is 2"));
    let (status, response) = server
        .post("/v1/batch/data/edge/echo", r#"{"input": {}}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(response["code"], json!("invalid_parameter"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_with_the_parse_position() {
    let server = TestServer::start().await;
    let (status, response) = server
        .post("/v1/data/edge/echo", "{\n  \"input\": {\"a\": tru}\n}")
        .await;
    assert_eq!(status, 400);
    assert_eq!(response["code"], json!("invalid_parameter"));
    assert!(response["message"]
        .as_str()
        .unwrap()
        .starts_with("body contains malformed input document"));
    assert_eq!(
        response["errors"][0]["location"],
        json!({"file": "request body", "row": 2, "col": 21})
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_body_types_are_400() {
    let server = TestServer::start().await;
    for body in ["[1, 2]", "\"text\"", "42"] {
        let (status, response) = server.post("/v1/data/edge/echo", body).await;
        assert_eq!(status, 400, "body {body}");
        assert_eq!(response["code"], json!("invalid_parameter"));
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = TestServer::start_with(|c| c.limits.max_body_bytes = 1024).await;
    let big = json!({"input": {"blob": "x".repeat(4096)}}).to_string();
    let (status, response) = server.post("/v1/data/edge/echo", big).await;
    assert_eq!(status, 413);
    assert_eq!(response["code"], json!("invalid_parameter"));
    assert!(response["message"].as_str().unwrap().contains("1024 bytes"));
    let (status, _) = server.post("/v1/data/edge/echo", r#"{"input": 1}"#).await;
    assert_eq!(status, 200, "the server keeps serving");
    server.stop().await;
}

#[tokio::test]
async fn too_deep_json_is_400_naming_the_limit() {
    let server = TestServer::start_with(|c| c.limits.max_json_depth = 8).await;
    let deep = format!("{{\"input\": {}1{}}}", "[".repeat(20), "]".repeat(20));
    let (status, response) = server.post("/v1/data/edge/echo", deep).await;
    assert_eq!(status, 400);
    assert!(
        response["message"].as_str().unwrap().contains("limit of 8"),
        "{response}"
    );
    assert_eq!(response["errors"][0]["location"]["col"], json!(18));
    server.stop().await;
}

#[tokio::test]
async fn evaluation_time_limit_answers_evaluation_error() {
    let server = TestServer::start_with(|c| c.limits.eval_timeout_ms = 50).await;
    let started = std::time::Instant::now();
    let (status, response) = server.post("/v1/data/edge/slow", r#"{"input": {}}"#).await;
    assert_eq!(status, 500);
    assert_eq!(response["code"], json!("evaluation_error"));
    assert_eq!(response["errors"][0]["code"], json!("eval_timeout_error"));
    assert!(response["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("time limit of 50 ms"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let (status, _) = server.post("/v1/data/edge/greeting", "{}").await;
    assert_eq!(status, 200, "other requests keep flowing");
    server.stop().await;
}

#[tokio::test]
async fn conflicting_rule_values_are_an_evaluation_error_with_location() {
    let server = TestServer::start().await;
    let (status, response) = server
        .post(
            "/v1/data/edge/conflict",
            r#"{"input": {"a": true, "b": true}}"#,
        )
        .await;
    assert_eq!(status, 500);
    assert_eq!(response["code"], json!("evaluation_error"));
    assert!(response["errors"][0]["message"].as_str().is_some());
    server.stop().await;
}

#[tokio::test]
async fn unknown_endpoints_and_methods() {
    let server = TestServer::start().await;
    let (status, response) = server.get("/v2/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(response["code"], json!("resource_not_found"));
    let response = server
        .client
        .delete(server.url("/v1/batch/data/edge/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn percent_encoded_path_segments_are_decoded() {
    let server = TestServer::start().await;
    let (status, response) = server
        .get("/v1/data/platform/teams/data-platform/quota/cpu")
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["result"], json!(128));
    let (status, response) = server
        .get("/v1/data/platform/teams/data%2Dplatform/quota/gpu")
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["result"], json!(0));
    server.stop().await;
}
