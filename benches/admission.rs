//! The admission handler in process (no TLS, no sockets): how long the
//! server spends on a review that matches nothing (the fast path), on a
//! ~21 KB Pod answered from the decision cache, and on the same Pod
//! evaluated against `data.admission` and 10 Gatekeeper constraints with
//! the cache off. Every request carries a fresh uid, as the API server's do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::api;
use portcullis::metrics::Metrics;
use tower::ServiceExt;

mod support;

use support::{admission_state, repo};

/// The review in `file` with its uid replaced on every call.
fn reviews(file: &str) -> impl FnMut() -> Vec<u8> {
    let text = std::fs::read_to_string(repo(file)).expect("review exists");
    let mut review: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let counter = AtomicU64::new(0);
    move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        review["request"]["uid"] = serde_json::json!(format!("uid-{n}"));
        serde_json::to_vec(&review).expect("serializes")
    }
}

fn bench_admission(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("admission_handler");
    let cases = [
        ("lease_fast_path", "benches/admission-lease.json", true),
        ("pod_21k_cache_hit", "benches/admission-pod-20k.json", true),
        ("pod_21k_uncached", "benches/admission-pod-20k.json", false),
    ];
    for (name, file, cache) in cases {
        let router = api::admission::router(admission_state(cache, Arc::new(Metrics::new())));
        let mut next = reviews(file);
        let status = runtime.block_on(async {
            let request = Request::post("/v1/admit").body(Body::from(next())).unwrap();
            router.clone().oneshot(request).await.unwrap().status()
        });
        assert!(status.is_success(), "{name}: {status}");
        group.bench_function(name, |b| {
            b.iter_batched(
                &mut next,
                |body| {
                    runtime.block_on(async {
                        let request = Request::post("/v1/admit").body(Body::from(body)).unwrap();
                        let response = router.clone().oneshot(request).await.unwrap();
                        axum::body::to_bytes(response.into_body(), usize::MAX)
                            .await
                            .unwrap()
                    })
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_admission);
criterion_main!(benches);
