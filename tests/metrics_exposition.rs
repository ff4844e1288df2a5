//! The live `/metrics` page checked against the rules `promtool check
//! metrics` applies, and by promtool itself where it is installed
//! (`scripts/check-metrics.sh` installs it and drives every family):
//! one HELP and one TYPE per family before its samples, snake_case names,
//! counters ending in `_total`, durations in seconds, histograms with
//! ascending `le` buckets ending in `+Inf` whose counts never decrease and
//! whose `_count` equals the `+Inf` bucket.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{example_request, TestServer};
use serde_json::json;

/// A sample line split into name, labels (without `le`), `le` and value.
fn parse_sample(line: &str) -> (String, String, Option<String>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').expect("closed labels")),
        None => (series, ""),
    };
    let mut le = None;
    let mut others = Vec::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (key, quoted) = pair.split_once('=').expect("label=value");
        assert!(
            quoted.starts_with('"') && quoted.ends_with('"'),
            "unquoted label value in {line}"
        );
        if key == "le" {
            le = Some(quoted.trim_matches('"').to_string());
        } else {
            others.push(pair.to_string());
        }
    }
    (name.to_string(), others.join(","), le, value)
}

#[tokio::test]
async fn the_metrics_page_passes_the_exposition_format_rules() {
    let server = TestServer::start().await;
    // Make every request histogram have samples.
    let body = json!({ "input": example_request() }).to_string();
    for _ in 0..3 {
        let (status, _) = server
            .post("/v1/data/provisioning/decision", body.clone())
            .await;
        assert_eq!(status, 200);
    }
    let page = server.metrics().await;
    server.stop().await;

    // Where promtool is installed (scripts/check-metrics.sh installs it),
    // it must accept the page too.
    if let Ok(mut promtool) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let output = promtool.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let name_rule = regex::Regex::new(r"^[a-z_:][a-z0-9_:]*$").unwrap();
    let mut help = BTreeSet::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    // histogram family -> label set -> [(le, count)], plus _count values
    let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in page.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').expect("HELP has text");
            assert!(!text.trim().is_empty(), "empty HELP for {name}");
            assert!(help.insert(name.to_string()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(name_rule.is_match(name), "{name} is not snake_case");
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice for {name}"
            );
            match kind {
                "counter" => assert!(name.ends_with("_total"), "counter {name} lacks _total"),
                "histogram" | "gauge" => {}
                other => panic!("unexpected type {other} for {name}"),
            }
            if name.contains("duration") {
                assert!(
                    name.ends_with("_seconds"),
                    "{name}: durations are in seconds"
                );
            }
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment: {line}");
        let (name, labels, le, value) = parse_sample(line);
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|suffix| {
            name.strip_suffix(suffix)
                .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
                .map(|f| (f.to_string(), *suffix))
        });
        match family {
            Some((family, "_bucket")) => {
                let le = le.unwrap_or_else(|| panic!("bucket without le: {line}"));
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                buckets
                    .entry((family, labels))
                    .or_default()
                    .push((bound, value));
            }
            Some((family, "_count")) => {
                counts.insert((family, labels), value);
            }
            Some(_) => {}
            None => {
                assert!(types.contains_key(&name), "sample before its TYPE: {line}");
                assert!(le.is_none(), "le outside a histogram: {line}");
            }
        }
    }
    assert!(types.len() >= 20, "{types:?}");
    assert!(!buckets.is_empty());
    for (series, list) in &buckets {
        for pair in list.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{series:?}: le not ascending");
            assert!(pair[0].1 <= pair[1].1, "{series:?}: bucket counts decrease");
        }
        let last = list.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{series:?}: no +Inf bucket");
        assert_eq!(
            Some(&last.1),
            counts.get(series),
            "{series:?}: _count differs from +Inf"
        );
    }
}
