//! Hot-reload figures for BENCHMARKS.md, measured against the real server on
//! loopback:
//!
//! 1. latency: the time from a bundle file being written to the new revision
//!    answering `POST /v1/data`, over 20 rewrites, with the debounce window
//!    reported separately;
//! 2. memory: resident memory while reloading a bundle with ~10 MB of JSON
//!    data 3 times, peak against steady state, for three kinds of change:
//!    the same data, one team changed, and every team changed. Each kind
//!    runs in a process of its own (this program started again with
//!    `memory KIND`, which writes the revisions' files and starts it once
//!    more with `measure KIND DIR`), so one cannot inherit another's memory,
//!    and the measuring process never holds the data itself: it only copies
//!    prepared files into the bundle, so what it measures is the server.
//!
//! Usage: `cargo run --release --example reload_bench`. Bounded: about 40 s.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis::server::Server;

/// The allocator the `portcullis` binary uses, so the memory figures are
/// the shipped server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEBOUNCE_MS: u64 = 50;

fn write_bundle(dir: &Path, revision: u32) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(".manifest"),
        format!(r#"{{"revision": "r{revision}", "roots": ["hot"]}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("hot.rego"),
        format!("package hot.policy\n\nv := {revision}\n"),
    )
    .unwrap();
}

/// A `data.json` of teams with members and quotas, `bytes` long or a little
/// more. Made in the process that prepares the files, never in the one
/// that measures: generating it allocates a tree of its own, and an
/// allocator keeps freed pages, so it would be counted as the server's.
fn large_data(bytes: usize) -> String {
    let mut teams = serde_json::Map::new();
    let mut size = 0;
    let mut i = 0;
    while size < bytes {
        let team = serde_json::json!({
            "members": (0..20)
                .map(|k| (format!("person-{i}-{k}"), serde_json::Value::from("member")))
                .collect::<serde_json::Map<_, _>>(),
            "quota": {"cpu": 64, "memory_gb": 256, "storage_gb": 2000, "environments": 10}
        });
        size += team.to_string().len();
        teams.insert(format!("team-{i:06}"), team);
        i += 1;
    }
    serde_json::json!({"hot": {"teams": teams}}).to_string()
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

async fn start(dir: &Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::default();
    config.server.addr = "127.0.0.1:0".into();
    config.bundles = vec![dir.to_path_buf()];
    config.watch.debounce_ms = DEBOUNCE_MS;
    config.log.level = "warn".into();
    config.engine.vm = std::env::var("RELOAD_BENCH_VM")
        .map(|v| v != "false")
        .unwrap_or(true);
    let server = Server::bind(&config).await.unwrap();
    let base = format!("http://{}/v1/data/hot/policy/v", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    (base, stop)
}

async fn answer(client: &reqwest::Client, url: &str) -> i64 {
    let body: serde_json::Value = client
        .post(url)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["result"].as_i64().unwrap_or(-1)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// How the data changes between the reloads of the memory measurement.
const MEMORY_KINDS: [(&str, &str); 3] = [
    ("same", "the same data"),
    ("one-team", "one team's quota changed"),
    ("all-teams", "every team's members renamed"),
];

/// The data of `revision` for a change of `kind`, made from `base`.
fn changed_data(base: &str, kind: &str, revision: u32) -> String {
    match kind {
        "one-team" => base.replacen(
            "\"environments\":10",
            &format!("\"environments\":{revision}"),
            1,
        ),
        "all-teams" => base.replace("person-", &format!("person{revision}-")),
        _ => base.to_string(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, command, kind] if command == "memory" => return prepare_and_measure(kind),
        [_, command, kind, dir] if command == "measure" => {
            return measure(kind, Path::new(dir)).await;
        }
        _ => {}
    }
    let client = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();

    // 1. latency from write to the new revision answering
    let dir = tmp.path().join("small");
    write_bundle(&dir, 0);
    let (url, stop) = start(&dir).await;
    let mut latencies = Vec::new();
    for revision in 1..=20u32 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let written = Instant::now();
        write_bundle(&dir, revision);
        loop {
            if answer(&client, &url).await == i64::from(revision) {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "revision {revision} never served"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(written.elapsed());
    }
    let _ = stop.send(());
    latencies.sort();
    let debounce = Duration::from_millis(DEBOUNCE_MS);
    println!(
        "reload latency over {} rewrites (debounce {DEBOUNCE_MS} ms):",
        latencies.len()
    );
    println!(
        "  write -> new revision answering: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(*latencies.last().unwrap())
    );
    println!(
        "  after the debounce window:       median {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5).saturating_sub(debounce)),
        ms(latencies.last().unwrap().saturating_sub(debounce))
    );

    // 2. memory while reloading ~10 MB of data, each kind of change in a
    // process of its own
    for (kind, _) in MEMORY_KINDS {
        prepare_and_measure(kind);
    }
}

/// Write the data files of a memory run of `kind` (the first revision and
/// the three that replace it), then measure in a fresh process.
fn prepare_and_measure(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = large_data(10 * 1024 * 1024);
    std::fs::write(tmp.path().join("100.json"), &data).unwrap();
    for revision in 101..=103u32 {
        let text = changed_data(&data, kind, revision);
        std::fs::write(tmp.path().join(format!("{revision}.json")), text).unwrap();
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("measure")
        .arg(kind)
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success(), "memory run {kind} failed");
}

/// Serve a bundle with ~10 MB of data (`files/100.json`), reload it 3 times
/// with the data of `files/101.json` to `103.json`, and print resident
/// memory: before the server starts, steady, peak, after.
async fn measure(kind: &str, files: &Path) {
    let client = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("large");
    // The data first, then the revision the answers show.
    let install = |revision: u32| {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            files.join(format!("{revision}.json")),
            dir.join("data.json"),
        )
        .unwrap();
        write_bundle(&dir, revision);
    };
    install(100);
    let data_size = std::fs::metadata(dir.join("data.json")).unwrap().len();
    let before = rss_bytes();
    let (url, stop) = start(&dir).await;
    assert_eq!(answer(&client, &url).await, 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let steady = rss_bytes();
    let peak = Arc::new(AtomicU64::new(steady));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for revision in 101..=103u32 {
        install(revision);
        let started = Instant::now();
        while answer(&client, &url).await != i64::from(revision) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "large revision never served"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rss_bytes();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = stop.send(());
    let peak = peak.load(Ordering::Relaxed);
    let described = MEMORY_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(kind, |(_, text)| text);
    println!(
        "memory with a {:.1} MB data.json, 3 reloads, {described}:",
        data_size as f64 / 1e6
    );
    println!(
        "  before the server {:.1} MB; steady {:.1} MB, peak during reloads {:.1} MB ({:.2}x steady), after {:.1} MB",
        before as f64 / 1e6,
        steady as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / steady as f64,
        after as f64 / 1e6
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
