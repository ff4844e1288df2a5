//! The bytecode VM must answer exactly like the interpreter. Every entry
//! point the VM runs in the shipped policy library is evaluated both ways on
//! a spread of inputs: the examples, each field changed in turn, wrong types,
//! empty and missing input.

mod common;

use common::{example_request, repo};
use portcullis::bundle;
use portcullis::engine::{DataPath, EngineOptions, EvalError, PolicySet, Value};
use serde_json::json;

fn shipped_policy_set() -> PolicySet {
    let bundles = vec![
        bundle::load_dir(&repo("policies")).unwrap(),
        bundle::load_dir(&repo("bundles")).unwrap(),
        bundle::load_dir(&repo("tests/fixtures/edge")).unwrap(),
    ];
    PolicySet::compile(&bundles, EngineOptions::default()).unwrap()
}

/// Inputs that reach every branch of the shipped rules.
fn inputs() -> Vec<Option<serde_json::Value>> {
    let base = example_request();
    let mut inputs = vec![
        None,
        Some(json!({})),
        Some(json!([])),
        Some(json!("text")),
        Some(base.clone()),
    ];
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("team", json!("nobody")),
        ("team", json!(42)),
        ("class", json!("prod")),
        ("class", json!("dev")),
        ("class", json!("staging")),
        ("class", json!("huge")),
        ("owner", json!("mallory")),
        ("owner", json!("ben")),
        ("name", json!("Feature_Payments")),
        ("name", json!("-bad-")),
        ("name", json!("")),
        ("name", json!("a".repeat(64))),
        ("name", json!(7)),
        ("ttl_hours", json!(169)),
        ("ttl_hours", json!(72)),
        ("ttl_hours", json!(null)),
        ("source_env", json!("prod")),
        ("estimated_monthly_cost", json!(99999)),
        (
            "resources",
            json!({"cpu": 100, "memory_gb": 900, "storage_gb": 9000, "gpu": 3}),
        ),
        ("resources", json!({})),
        (
            "usage",
            json!({"cpu": 120, "environments": 20, "monthly_cost": 24990}),
        ),
        ("usage", json!({"cpu": 110, "memory_gb": 450})),
        ("a", json!(true)),
        ("b", json!(true)),
    ];
    for (field, value) in variants {
        let mut input = base.clone();
        input[field] = value;
        inputs.push(Some(input));
    }
    for name in [
        "secret-request",
        "secret-request-review",
        "network-feature-payments",
        "network-violations",
        "admission-pod",
        "admission-pod-denied",
    ] {
        let text = std::fs::read_to_string(repo(&format!("examples/{name}.json"))).unwrap();
        let example: serde_json::Value = serde_json::from_str(&text).unwrap();
        inputs.push(Some(example["input"].clone()));
    }
    inputs.push(Some(baseline_escapes_review()));
    let secret = |overrides: serde_json::Value| {
        let mut input = json!({"requester": "chen", "secret_path": "kv/prod/payments-api/db",
                               "environment": "prod", "reason": "rotation", "duration_seconds": 1800});
        for (k, v) in overrides.as_object().unwrap() {
            input[k] = v.clone();
        }
        Some(input)
    };
    inputs.extend([
        secret(json!({"requester": "mallory"})),
        secret(json!({"requester": 7})),
        secret(json!({"secret_path": "kv/prod/break-glass/root"})),
        secret(json!({"secret_path": "kv/prod/nothing"})),
        secret(json!({"reason": ""})),
        secret(json!({"reason": 3})),
        secret(json!({"duration_seconds": 7200})),
        secret(json!({"duration_seconds": 999999})),
        secret(json!({"duration_seconds": "long"})),
        secret(json!({"environment": "dev", "secret_path": "kv/dev/payments-api/x"})),
    ]);
    let mut without_ttl = base.clone();
    without_ttl.as_object_mut().unwrap().remove("ttl_hours");
    inputs.push(Some(without_ttl));
    inputs.push(Some(json!({"a": true, "b": true})));
    inputs
}

/// A Pod review that trips every Pod Security Standards baseline control
/// kept in security contexts, sysctls and AppArmor annotations, at the pod's
/// level and a container's.
fn baseline_escapes_review() -> serde_json::Value {
    let text = std::fs::read_to_string(repo("examples/admission-pod.json")).unwrap();
    let mut review: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pod = &mut review["input"]["request"]["object"];
    pod["metadata"]["annotations"] =
        json!({"container.apparmor.security.beta.kubernetes.io/api": "unconfined"});
    pod["spec"]["securityContext"] = json!({
        "seccompProfile": {"type": "Unconfined"},
        "seLinuxOptions": {"type": "spc_t", "user": "system_u"},
        "windowsOptions": {"hostProcess": true},
        "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}],
    });
    pod["spec"]["containers"][0]["securityContext"] = json!({
        "appArmorProfile": {"type": "Unconfined"},
        "seLinuxOptions": {"type": "container_t", "role": "system_r"},
        "procMount": "Unmasked",
    });
    review["input"].take()
}

fn same(vm: &Result<Value, EvalError>, interpreter: &Result<Value, EvalError>) -> bool {
    match (vm, interpreter) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

#[test]
fn the_vm_runs_the_main_decision_paths() {
    let set = shipped_policy_set();
    for path in [
        "provisioning/decision",
        "system/main",
        "secrets/access/decision",
        "network/decision",
        "admission/decision",
    ] {
        assert!(
            set.runs_on_vm(&DataPath::parse(path)),
            "{path} should compile for the VM; VM entry points: {:?}",
            set.vm_entry_points()
        );
    }
}

#[test]
fn vm_and_interpreter_agree_on_every_entry_point_and_input() {
    let set = shipped_policy_set();
    let entry_points = set.vm_entry_points();
    assert!(!entry_points.is_empty());
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for entry in &entry_points {
        let path = DataPath::from_dotted(entry);
        if entry == "data.edge.slow" || entry == "data.edge.busy" {
            continue; // time-limit fixtures
        }
        for input in inputs() {
            let value = input.clone().map(Value::from);
            let vm = set.evaluate(&path, value.clone());
            let interpreted = set.evaluate_interpreted(&path, value);
            if !same(&vm, &interpreted) {
                mismatches.push(format!(
                    "{entry} with input {input:?}:\n  vm:          {vm:?}\n  interpreter: {interpreted:?}"
                ));
            }
            compared += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared > 100, "compared {compared} evaluations");
}

#[test]
fn the_vm_denies_every_baseline_escape() {
    let set = shipped_policy_set();
    let path = DataPath::parse("admission/deny");
    assert!(set.runs_on_vm(&path));
    let denied = set
        .evaluate(&path, Some(Value::from(baseline_escapes_review())))
        .unwrap();
    let denied: serde_json::Value = serde_json::from_str(&denied.to_json_str().unwrap()).unwrap();
    let mut messages: Vec<&str> = denied
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "Pod payments-api-7d9f must not set seLinuxOptions.type spc_t",
            "Pod payments-api-7d9f must not set seLinuxOptions.user system_u",
            "Pod payments-api-7d9f must not set seccompProfile.type Unconfined",
            "Pod payments-api-7d9f must not set the sysctl kernel.msgmax",
            "Pod payments-api-7d9f must not set windowsOptions.hostProcess true",
            "container api must not set appArmorProfile.type Unconfined",
            "container api must not set procMount Unmasked",
            "container api must not set seLinuxOptions.role system_r",
            "container api: annotation container.apparmor.security.beta.kubernetes.io/api \
             must be runtime/default or localhost/<profile>, not unconfined",
        ]
    );
}

#[test]
fn vm_respects_the_time_limit() {
    let bundles = vec![bundle::load_dir(&repo("tests/fixtures/edge")).unwrap()];
    let set = PolicySet::compile(
        &bundles,
        EngineOptions {
            eval_timeout: std::time::Duration::from_millis(50),
            use_vm: true,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let path = DataPath::parse("edge/slow");
    let started = std::time::Instant::now();
    let result = set.evaluate(&path, None);
    assert!(
        matches!(result, Err(EvalError::TimeLimit { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A small deterministic generator (xorshift), so a failure names an input
/// that reproduces.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick(&mut self, pool: &[serde_json::Value]) -> serde_json::Value {
        pool[(self.next() % pool.len() as u64) as usize].clone()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// An environment request with each field present or missing, of the right
/// type or not, over and under the quotas and caps; a third are the example
/// request with at most one field changed and its CPU usage varied, most of
/// which pass.
fn generated_request(g: &mut Generator, example: &serde_json::Value) -> serde_json::Value {
    if g.chance(2) {
        return g.pick(&[
            json!("text"),
            json!([1, 2]),
            json!(null),
            json!(3),
            json!({}),
        ]);
    }
    let fields: [(&str, Vec<serde_json::Value>); 7] = [
        (
            "team",
            vec![
                json!("payments"),
                json!("billing"),
                json!("catalog"),
                json!("nobody"),
                json!(42),
                json!(null),
            ],
        ),
        (
            "owner",
            vec![
                json!("ana"),
                json!("mo"),
                json!("ben"),
                json!("mallory"),
                json!(7),
                json!(["ana"]),
            ],
        ),
        (
            "class",
            vec![
                json!("dev"),
                json!("feature"),
                json!("staging"),
                json!("prod"),
                json!("huge"),
                json!(3),
            ],
        ),
        (
            "name",
            vec![
                json!("feature-payments"),
                json!("-x"),
                json!("x-"),
                json!(""),
                json!("Bad_Name"),
                json!(5),
            ],
        ),
        (
            "ttl_hours",
            vec![
                json!(24),
                json!(168),
                json!(500),
                json!("7d"),
                json!(null),
                json!(0),
            ],
        ),
        (
            "estimated_monthly_cost",
            vec![
                json!(100),
                json!(5000),
                json!(30000),
                json!("lots"),
                json!(null),
                json!(0.5),
            ],
        ),
        (
            "source_env",
            vec![json!("prod"), json!("staging"), json!("dev"), json!(1)],
        ),
    ];
    if g.chance(33) {
        let mut request = example.clone();
        let (field, pool) = &fields[(g.next() % fields.len() as u64) as usize];
        if g.chance(50) {
            request[*field] = g.pick(pool);
        }
        request["usage"]["cpu"] = json!(g.next() % 160);
        return request;
    }
    let mut request = serde_json::Map::new();
    for (field, pool) in fields {
        if g.chance(88) {
            request.insert(field.into(), g.pick(&pool));
        }
    }
    // The quota dimensions, then usage-only keys and an unknown one.
    let quota_dimensions = [
        "cpu",
        "memory_gb",
        "storage_gb",
        "gpu",
        "databases",
        "caches",
    ];
    let dimensions = quota_dimensions
        .iter()
        .chain(&["environments", "monthly_cost", "other"]);
    for map in ["resources", "usage"] {
        match g.next() % 10 {
            0 => {}
            1 => {
                request.insert(
                    map.into(),
                    g.pick(&[json!("lots"), json!([1]), json!(null)]),
                );
            }
            _ => {
                let mut amounts = serde_json::Map::new();
                for &dimension in dimensions.clone() {
                    // A resource the quota does not know is denied; keep
                    // such keys rare so that requests still pass.
                    let known_resource = quota_dimensions.contains(&dimension);
                    let chance = if map == "resources" && !known_resource {
                        5
                    } else {
                        60
                    };
                    if g.chance(chance) {
                        let amount = match g.next() % 12 {
                            0 => json!("4"),
                            1 => json!(null),
                            2 => json!(2.5),
                            3 => json!(-1),
                            4 => json!([1]),
                            5 => json!(100000),
                            _ => json!(g.next() % 700),
                        };
                        amounts.insert(dimension.into(), amount);
                    }
                }
                request.insert(map.into(), serde_json::Value::Object(amounts));
            }
        }
    }
    serde_json::Value::Object(request)
}

#[test]
fn vm_and_interpreter_agree_on_generated_environment_requests() {
    let set = shipped_policy_set();
    let path = DataPath::parse("provisioning/decision");
    assert!(set.runs_on_vm(&path));
    let example = example_request();
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut denied = 0;
    for _ in 0..1500 {
        let input = generated_request(&mut generator, &example);
        let vm = set.evaluate(&path, Some(Value::from(input.clone())));
        let interpreted = set.evaluate_interpreted(&path, Some(Value::from(input.clone())));
        assert!(
            same(&vm, &interpreted),
            "input {input}:\n  vm:          {vm:?}\n  interpreter: {interpreted:?}"
        );
        let decision = vm.expect("the quota policy raises no error on bad input");
        if decision["allowed"] == Value::from(false) {
            denied += 1;
        }
    }
    // The generator reaches both answers.
    assert!((100..1500).contains(&denied), "{denied} of 1500 denied");
}

/// `value` with a few random edits at random depths: a member removed, a
/// value replaced by one of another JSON type, or an array emptied.
fn mutated(value: &serde_json::Value, g: &mut Generator, depth: usize) -> serde_json::Value {
    let replacement = |g: &mut Generator| {
        g.pick(&[
            json!(null),
            json!("x"),
            json!(0),
            json!(-1.5),
            json!(true),
            json!([]),
            json!({}),
            json!(["x"]),
        ])
    };
    if depth > 0 && g.chance(6) {
        return replacement(g);
    }
    match value {
        serde_json::Value::Object(members) => {
            let mut out = serde_json::Map::new();
            for (key, member) in members {
                if g.chance(5) {
                    continue;
                }
                out.insert(key.clone(), mutated(member, g, depth + 1));
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(_) if g.chance(4) => json!([]),
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| mutated(item, g, depth + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The callers of these paths send JSON nothing has validated, so any shape
/// can arrive. (An AdmissionReview's object has passed the API server's
/// schema validation before a webhook sees it: strings where strings are
/// required, an image on every container. Mutating it freely mostly makes
/// builtins raise errors, which the VM reports as undefined and the
/// interpreter as errors; see ARCHITECTURE.md.)
#[test]
fn vm_and_interpreter_agree_on_mutated_examples_of_every_decision_path() {
    let set = shipped_policy_set();
    let cases = [
        ("provisioning/decision", "feature-payments"),
        ("secrets/access/decision", "secret-request"),
        ("secrets/access/decision", "secret-request-review"),
        ("network/decision", "network-feature-payments"),
        ("network/decision", "network-violations"),
    ];
    let mut generator = Generator(0x2545_f491_4f6c_dd1d);
    for (path, example) in cases {
        let path = DataPath::parse(path);
        assert!(set.runs_on_vm(&path), "{path:?} should run on the VM");
        let text = std::fs::read_to_string(repo(&format!("examples/{example}.json"))).unwrap();
        let input = serde_json::from_str::<serde_json::Value>(&text).unwrap()["input"].clone();
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..250 {
            let changed = mutated(&input, &mut generator, 0);
            let vm = set.evaluate(&path, Some(Value::from(changed.clone())));
            let interpreted = set.evaluate_interpreted(&path, Some(Value::from(changed.clone())));
            assert!(
                same(&vm, &interpreted),
                "{example}, input {changed}:\n  vm:          {vm:?}\n  interpreter: {interpreted:?}"
            );
            distinct.insert(format!("{vm:?}"));
        }
        // The edits reach more than one answer.
        assert!(
            distinct.len() > 5,
            "{example}: {} distinct answers",
            distinct.len()
        );
    }
}
