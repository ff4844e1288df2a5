//! A replay of 10,000 AdmissionReviews with a realistic mix, through the
//! admission router in process (no TLS): the decision cache's hit rate and
//! the per-review latency, with the cache on and off.
//!
//! The mix (deterministic, seeded): 60 % re-applied workloads (a GitOps sync
//! or `kubectl apply` of one of 200 Deployments: same spec, a new uid,
//! resourceVersion and managedFields), 25 % status updates of those
//! Deployments (only `status` and `resourceVersion` change), 15 % new
//! objects (a Deployment never seen before). Each Deployment carries the
//! ~20 KB pod spec of `benches/admission-pod-20k.json`.
//!
//! Run: `cargo bench --bench admission_replay`

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use portcullis::api;
use portcullis::metrics::Metrics;
use serde_json::{json, Value};
use tower::ServiceExt;

mod support;

use support::{admission_state, repo};

const REVIEWS: usize = 10_000;
const WORKLOADS: usize = 200;

/// A small deterministic generator (no dependency needed for a replay mix).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn deployment(pod: &Value, index: usize) -> Value {
    let name = format!("payments-api-{index:04}");
    let mut spec = pod["spec"].clone();
    spec["containers"][0]["image"] = json!(format!(
        "registry.example.com/payments/api:1.{}.0",
        index % 7
    ));
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "payments-staging",
            "labels": pod["metadata"]["labels"],
            "annotations": pod["metadata"]["annotations"],
            "resourceVersion": "1",
        },
        "spec": {"replicas": 2, "template": {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": spec}},
    })
}

fn review(uid: usize, operation: &str, object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("replay-{uid}"),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": object["metadata"]["name"],
            "namespace": "payments-staging",
            "operation": operation,
            "userInfo": {"username": "argocd"},
            "object": object,
        }
    }))
    .expect("serializes")
}

/// The replay, in order.
fn mix() -> (Vec<Vec<u8>>, [usize; 3]) {
    let text = std::fs::read_to_string(repo("benches/admission-pod-20k.json")).expect("pod");
    let pod: Value =
        serde_json::from_str::<Value>(&text).expect("json")["request"]["object"].clone();
    let mut rng = Lcg(42);
    let mut counts = [0; 3];
    let mut fresh = WORKLOADS;
    let reviews = (0..REVIEWS)
        .map(|uid| {
            let roll = rng.next() % 100;
            let workload = (rng.next() as usize) % WORKLOADS;
            let mut object = deployment(&pod, workload);
            object["metadata"]["resourceVersion"] = json!(format!("{}", 1000 + uid));
            if roll < 60 {
                counts[0] += 1;
                object["metadata"]["managedFields"] = json!([{"manager": "argocd", "operation": "Apply", "time": format!("2026-11-22T08:{:02}:00Z", uid % 60)}]);
                review(uid, "UPDATE", &object)
            } else if roll < 85 {
                counts[1] += 1;
                object["status"] = json!({"observedGeneration": uid, "readyReplicas": uid % 3, "replicas": 2});
                review(uid, "UPDATE", &object)
            } else {
                counts[2] += 1;
                fresh += 1;
                review(uid, "CREATE", &deployment(&pod, fresh))
            }
        })
        .collect();
    (reviews, counts)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn counter(metrics: &Metrics, result: &str) -> u64 {
    let text = String::from_utf8(metrics.render()).expect("utf-8");
    let prefix = format!(
        "portcullis_decision_cache_requests_total{{cache=\"admission\",result=\"{result}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().expect("a count"))
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing.
    let (reviews, counts) = mix();
    let bytes: usize = reviews.iter().map(Vec::len).sum();
    println!(
        "replay: {REVIEWS} reviews ({} re-applied, {} status updates, {} new), {:.1} KB average",
        counts[0],
        counts[1],
        counts[2],
        bytes as f64 / REVIEWS as f64 / 1024.0
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "cache", "hit rate", "p50", "p99", "max", "total"
    );
    for cache in [true, false] {
        let metrics = Arc::new(Metrics::new());
        let router = api::admission::router(admission_state(cache, metrics.clone()));
        let mut latencies = Vec::with_capacity(REVIEWS);
        let started = Instant::now();
        for body in &reviews {
            let request = Request::post("/v1/admit")
                .body(Body::from(body.clone()))
                .expect("request");
            let t = Instant::now();
            let response = runtime.block_on(async {
                let response = router.clone().oneshot(request).await.expect("answer");
                assert!(response.status().is_success());
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("body")
            });
            latencies.push(t.elapsed());
            std::hint::black_box(response);
        }
        let total = started.elapsed();
        latencies.sort();
        let (hits, misses) = (counter(&metrics, "hit"), counter(&metrics, "miss"));
        let rate = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64 * 100.0
        };
        println!(
            "{:<10} {:>8.1}% {:>9.1?} {:>9.1?} {:>9.1?} {:>9.2?}",
            if cache { "on" } else { "off" },
            rate,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            total
        );
    }
}
