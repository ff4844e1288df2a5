//! In-process decision latency: the prepared engine evaluating the shipped
//! quota policy, on the shipped data and on a generated 200-team catalog,
//! plus a trivial rule as the engine's floor, and the same decision
//! answered from the decision cache.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use portcullis::bundle::{self, Bundle};
use portcullis::cache::{CacheStatus, CachedDecision, DecisionCache};
use portcullis::config::CacheConfig;
use portcullis::engine::{DataPath, EngineOptions, PolicySet, Value};

fn shipped_bundles() -> Vec<Bundle> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    vec![
        bundle::load_dir(&root.join("policies")).expect("policies load"),
        bundle::load_dir(&root.join("bundles")).expect("data loads"),
    ]
}

/// The shipped bundles with the teams replaced by `n` generated ones.
fn bundles_with_teams(n: usize) -> Vec<Bundle> {
    let mut bundles = shipped_bundles();
    let mut teams = serde_json::Map::new();
    for i in 0..n {
        let members: serde_json::Map<String, serde_json::Value> = (0..8)
            .map(|k| (format!("user{}", i * 8 + k), serde_json::json!("member")))
            .collect();
        teams.insert(
            format!("team-{i:03}"),
            serde_json::json!({
                "members": members,
                "quota": {"cpu": 64, "memory_gb": 256, "storage_gb": 2000, "gpu": 2,
                          "environments": 10, "monthly_budget": 10000}
            }),
        );
    }
    let platform = bundles[1]
        .data
        .as_object_mut()
        .unwrap()
        .get_mut(&Value::from("platform"))
        .unwrap();
    platform.as_object_mut().unwrap().insert(
        Value::from("teams"),
        Value::from(serde_json::Value::Object(teams)),
    );
    bundles
}

fn request(team: &str, owner: &str) -> Value {
    Value::from(serde_json::json!({
        "name": "feature-payments",
        "owner": owner,
        "team": team,
        "class": "feature",
        "source_env": "staging",
        "ttl_hours": 168,
        "resources": {"cpu": 4, "memory_gb": 8, "storage_gb": 50, "gpu": 0},
        "estimated_monthly_cost": 180,
        "usage": {"cpu": 40, "memory_gb": 96, "storage_gb": 600, "gpu": 0,
                  "environments": 6, "monthly_cost": 900}
    }))
}

/// The `input` of an example request in examples/.
fn example_input(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.json"));
    let body: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("example exists")).unwrap();
    Value::from(body["input"].clone())
}

/// One bench per shipped decision path, on its example input.
fn bench_decision_paths(c: &mut Criterion) {
    let shipped = PolicySet::compile(&shipped_bundles(), EngineOptions::default()).unwrap();
    let mut group = c.benchmark_group("decision_path");
    let cases = [
        (
            "provisioning_decision",
            "provisioning/decision",
            "feature-payments",
        ),
        (
            "secrets_access_approve",
            "secrets/access/decision",
            "secret-request",
        ),
        (
            "secrets_access_review",
            "secrets/access/decision",
            "secret-request-review",
        ),
        (
            "network_decision_clean",
            "network/decision",
            "network-feature-payments",
        ),
        (
            "network_decision_violations",
            "network/decision",
            "network-violations",
        ),
        (
            "admission_pod_allowed",
            "admission/decision",
            "admission-pod",
        ),
        (
            "admission_pod_denied",
            "admission/decision",
            "admission-pod-denied",
        ),
    ];
    for (name, path, example) in cases {
        let path = DataPath::parse(path);
        let input = example_input(example);
        group.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |input| shipped.evaluate(&path, Some(input)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    // The ~20 KB Pod review the admission load test sends (the file is the
    // review itself, not wrapped in "input").
    let review_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/admission-pod-20k.json");
    let review_text = std::fs::read_to_string(review_path).expect("review exists");
    let admission = DataPath::parse("admission/decision");
    group.bench_function("admission_pod_20k_parse_and_decide", |b| {
        b.iter(|| {
            let review = Value::from_json_str(&review_text).unwrap();
            shipped.evaluate(&admission, Some(review)).unwrap()
        })
    });
    let review = Value::from_json_str(&review_text).unwrap();
    group.bench_function("admission_pod_20k_decide", |b| {
        b.iter_batched(
            || review.clone(),
            |review| shipped.evaluate(&admission, Some(review)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn bench_decisions(c: &mut Criterion) {
    let shipped = PolicySet::compile(&shipped_bundles(), EngineOptions::default()).unwrap();
    let interpreter_only = PolicySet::compile(
        &shipped_bundles(),
        EngineOptions {
            use_vm: false,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let big = PolicySet::compile(&bundles_with_teams(200), EngineOptions::default()).unwrap();
    let decision = DataPath::parse("provisioning/decision");
    let trivial = DataPath::parse("provisioning/quota_dimensions");

    let mut group = c.benchmark_group("in_process");
    group.bench_function("trivial_rule", |b| {
        b.iter(|| shipped.evaluate(&trivial, None).unwrap())
    });
    let input = request("payments", "ana");
    group.bench_function("quota_decision_shipped_data", |b| {
        b.iter_batched(
            || input.clone(),
            |input| shipped.evaluate(&decision, Some(input)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let input = request("payments", "ana");
    group.bench_function("quota_decision_shipped_data_interpreter", |b| {
        b.iter_batched(
            || input.clone(),
            |input| interpreter_only.evaluate(&decision, Some(input)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let input = request("team-137", "user1097");
    group.bench_function("quota_decision_200_teams", |b| {
        b.iter_batched(
            || input.clone(),
            |input| big.evaluate(&decision, Some(input)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let denied = request("team-137", "mallory");
    group.bench_function("quota_decision_200_teams_denied", |b| {
        b.iter_batched(
            || denied.clone(),
            |input| big.evaluate(&decision, Some(input)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A cached decision: the key (canonical hash of what the quota policy
/// reads, which is its whole input) and a hit, as a handler does them.
fn bench_cached(c: &mut Criterion) {
    let shipped = PolicySet::compile(&shipped_bundles(), EngineOptions::default()).unwrap();
    let decision = DataPath::parse("provisioning/decision");
    let reads = shipped.reads_of(&decision);
    let cache: DecisionCache<CachedDecision> =
        DecisionCache::new("bench", &CacheConfig::default().settings(), None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let input = request("payments", "ana");
    let evaluate = || {
        shipped
            .evaluate(&decision, Some(input.clone()))
            .map(|result| CachedDecision { result, eval_ns: 0 })
    };
    let first = runtime
        .block_on(cache.get_or_compute(cache.key(1, &decision, &reads, Some(&input)), evaluate));
    assert_eq!(first.unwrap().1, CacheStatus::Miss);
    let mut group = c.benchmark_group("in_process");
    group.bench_function("quota_decision_cached", |b| {
        b.iter(|| {
            let key = cache.key(1, &decision, &reads, Some(&input));
            let (answer, status) = runtime
                .block_on(cache.get_or_compute(key, evaluate))
                .unwrap();
            assert_eq!(status, CacheStatus::Hit);
            answer
        })
    });
    group.finish();
}

criterion_group!(benches, bench_decisions, bench_decision_paths, bench_cached);
criterion_main!(benches);
