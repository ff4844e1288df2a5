//! The Kubernetes manifests in webhook-config/: every file parses, and what
//! must agree with the server does (ports, probe and webhook paths, the
//! config, certificate names, the exemptions).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::repo;
use portcullis::config::Config;
use serde::Deserialize;
use serde_json::{json, Value};

/// Every document of every YAML file, by kind.
fn manifests() -> BTreeMap<String, Vec<Value>> {
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(repo("webhook-config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in yaml_serde::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let kind = value["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no kind", path.display()));
            by_kind.entry(kind.to_string()).or_default().push(value);
        }
    }
    by_kind
}

fn one<'a>(all: &'a BTreeMap<String, Vec<Value>>, kind: &str) -> &'a Value {
    let docs = &all[kind];
    assert_eq!(docs.len(), 1, "one {kind}");
    &docs[0]
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn kustomization_lists_every_manifest() {
    let all = manifests();
    let kustomization = one(&all, "Kustomization");
    for resource in kustomization["resources"].as_array().unwrap() {
        let file = resource.as_str().unwrap();
        assert!(repo("webhook-config").join(file).exists(), "{file}");
    }
}

#[test]
fn the_shipped_config_is_valid_and_matches_the_deployment() {
    let all = manifests();
    let config_map = one(&all, "ConfigMap");
    let text = config_map["data"]["portcullis.yaml"].as_str().unwrap();
    let config = Config::from_yaml(text, "configmap.yaml").unwrap();
    config.validate().unwrap();
    assert!(config.admission.enabled);

    let deployment = one(&all, "Deployment");
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    assert!(!spec["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .unwrap()
        .is_empty());
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], json!(true));
    let container = &pod["containers"][0];
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"],
        json!(true)
    );
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        json!(false)
    );
    for key in ["requests", "limits"] {
        assert!(container["resources"][key]["cpu"].is_string());
        assert!(container["resources"][key]["memory"].is_string());
    }
    let ports: BTreeMap<&str, u64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports["api"], port_of(&config.server.addr));
    assert_eq!(ports["webhook"], port_of(&config.admission.addr));

    // Probes hit the real health routes on the API port.
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        json!("/health/ready")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        json!("/health/live")
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], json!("api"));
    }

    // The certificate files come from the mounted TLS secret.
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let tls_dir = Path::new(mounts["tls"]);
    assert_eq!(
        config.admission.cert_file.as_deref(),
        Some(tls_dir.join("tls.crt").as_path())
    );
    assert_eq!(
        config.admission.key_file.as_deref(),
        Some(tls_dir.join("tls.key").as_path())
    );
    let secret = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .unwrap();
    let certificates = &all["Certificate"];
    let serving = certificates
        .iter()
        .find(|c| c["metadata"]["name"] == "portcullis-tls")
        .unwrap();
    assert_eq!(
        secret["secret"]["secretName"],
        serving["spec"]["secretName"]
    );
    // The config exempts what the webhook's namespaceSelector leaves out.
    for ns in ["kube-system", "portcullis"] {
        assert!(config.admission.exempt_namespaces.iter().any(|e| e == ns));
    }
}

#[test]
fn the_shipped_deployment_exposes_no_writes_and_only_the_webhook() {
    let all = manifests();
    let config_map = one(&all, "ConfigMap");
    let text = config_map["data"]["portcullis.yaml"].as_str().unwrap();
    let config = Config::from_yaml(text, "configmap.yaml").unwrap();
    assert!(!config.data_writes.enabled, "writes must be off");
    // The Service carries the webhook alone.
    let service = one(&all, "Service");
    let names: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["webhook"]);
    // The NetworkPolicy admits the API port only from labelled namespaces.
    let policy = one(&all, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let rules = policy["spec"]["ingress"].as_array().unwrap();
    let api_port = port_of(&config.server.addr);
    for rule in rules {
        let opens_api = rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"].as_u64() == Some(api_port));
        if opens_api {
            assert_eq!(
                rule["from"][0]["namespaceSelector"]["matchLabels"]["portcullis.io/api-client"],
                json!("true"),
                "{rule}"
            );
        }
    }
    // The same config with writes turned on and no authentication does not
    // start: the API listens on all addresses.
    let mut writes = config.clone();
    writes.data_writes.enabled = true;
    assert!(writes.validate().is_err());
}

#[test]
fn the_webhook_points_at_the_admission_route_through_the_service() {
    let all = manifests();
    let service = one(&all, "Service");
    let webhook_port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webhook")
        .unwrap();
    assert_eq!(webhook_port["targetPort"], json!("webhook"));

    let configuration = one(&all, "ValidatingWebhookConfiguration");
    let webhook = &configuration["webhooks"][0];
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(webhook["sideEffects"], json!("None"));
    assert_eq!(webhook["timeoutSeconds"], json!(3));
    assert!(webhook["failurePolicy"].is_string());
    let target = &webhook["clientConfig"]["service"];
    assert_eq!(target["name"], service["metadata"]["name"]);
    assert_eq!(target["namespace"], service["metadata"]["namespace"]);
    assert_eq!(target["path"], json!("/v1/admit"));
    assert_eq!(target["port"], webhook_port["port"]);
    let excluded = &webhook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["operator"], json!("NotIn"));
    assert_eq!(excluded["values"], json!(["kube-system", "portcullis"]));
    assert!(!webhook["matchConditions"].as_array().unwrap().is_empty());
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        json!("portcullis/portcullis-tls")
    );

    // The serving certificate names the Service as the API server calls it.
    let serving = all["Certificate"]
        .iter()
        .find(|c| c["metadata"]["name"] == "portcullis-tls")
        .unwrap();
    let dns = serving["spec"]["dnsNames"].as_array().unwrap();
    assert!(dns.contains(&json!("portcullis.portcullis.svc")));
    assert!(
        one(&all, "PodDisruptionBudget")["spec"]["minAvailable"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn gen_certs_makes_a_serving_certificate_with_the_service_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(repo("webhook-config/gen-certs.sh"))
        .args(["--out", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("caBundle: "));
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(tmp.path().join("tls.crt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DNS:portcullis.portcullis.svc,"), "{text}");
    assert!(
        text.contains("DNS:portcullis.portcullis.svc.cluster.local"),
        "{text}"
    );
    // The server accepts what the script writes.
    portcullis::tls::CertStore::load(&tmp.path().join("tls.crt"), &tmp.path().join("tls.key"))
        .unwrap();
    assert!(tmp.path().join("secret.yaml").exists());
}

#[tokio::test]
async fn the_grafana_dashboard_only_uses_metrics_the_server_exports() {
    let text = std::fs::read_to_string(repo("webhook-config/grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    // The families a live server exports now (process metrics included)
    // plus every family src/metrics.rs registers (labelled families only
    // appear once something is counted in them).
    let server = common::TestServer::start().await;
    let metrics = server.metrics().await;
    server.stop().await;
    let mut families: BTreeMap<String, String> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect();
    let source = std::fs::read_to_string(repo("src/metrics.rs")).unwrap();
    let declared =
        regex::Regex::new(r#"(HistogramOpts|Opts|IntCounter|IntGauge)::new\(\s*"([a-z_]+)""#)
            .unwrap();
    for found in declared.captures_iter(&source) {
        let kind = if &found[1] == "HistogramOpts" {
            "histogram"
        } else {
            "other"
        };
        families
            .entry(format!("portcullis_{}", &found[2]))
            .or_insert_with(|| kind.to_string());
    }
    let name = regex::Regex::new(r"portcullis_[a-z_]+").unwrap();
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(panel["title"].is_string());
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for found in name.find_iter(expr) {
                let metric = found.as_str();
                let (family, suffix) = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| metric.strip_suffix(s).map(|f| (f, *s)))
                    .filter(|(f, _)| families.get(*f).map(String::as_str) == Some("histogram"))
                    .unwrap_or((metric, ""));
                let kind = families.get(family).unwrap_or_else(|| {
                    panic!("{metric} (panel {}) is not exported", panel["title"])
                });
                assert!(suffix.is_empty() || *kind == "histogram", "{metric}");
                used += 1;
            }
        }
    }
    assert!(used >= 18, "every panel queries a metric");
}
