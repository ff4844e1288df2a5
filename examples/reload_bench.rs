//! Hot-reload figures for BENCHMARKS.md, measured against the real server on
//! loopback:
//!
//! 1. latency: the time from a bundle file being written to the new revision
//!    answering `POST /v1/data`, over 20 rewrites, with the debounce window
//!    reported separately;
//! 2. memory: the resident memory of the `portcullis` binary itself (a
//!    process of its own for each kind of change, read from `/proc`) while
//!    it reloads a bundle with ~10 MB of JSON data 3 times: steady state,
//!    the kernel's high-water mark during the reloads (`VmHWM`, reset after
//!    the steady state is read), and after. Three kinds of change: the same
//!    data, one team changed, and every team changed. `memory KIND` runs
//!    one kind alone.
//!
//! Usage: `cargo build --release && cargo run --release --example
//! reload_bench` (the memory part runs `target/release/portcullis`, or the
//! binary `RELOAD_BENCH_SERVER` names).
//! Bounded: about 60 s.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use portcullis::config::Config;
use portcullis::server::Server;

/// The allocator the `portcullis` binary uses (the latency part runs the
/// server in this process).
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

/// A `/proc/PID/status` figure in bytes (`VmRSS:`, `VmHWM:`).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
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
    if let [_, command, kind] = args.as_slice() {
        if command == "memory" {
            return prepare_and_measure(kind).await;
        }
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
    // server process of its own
    for (kind, _) in MEMORY_KINDS {
        prepare_and_measure(kind).await;
    }
}

/// Write the data files of a memory run of `kind` (the first revision and
/// the three that replace it), then measure a fresh server on them.
async fn prepare_and_measure(kind: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = large_data(10 * 1024 * 1024);
    std::fs::write(tmp.path().join("100.json"), &data).unwrap();
    for revision in 101..=103u32 {
        let text = changed_data(&data, kind, revision);
        std::fs::write(tmp.path().join(format!("{revision}.json")), text).unwrap();
    }
    drop(data);
    measure(kind, tmp.path()).await;
}

/// `target/release/portcullis`, next to this example's directory, or the
/// binary `RELOAD_BENCH_SERVER` names (to compare two builds).
fn server_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("RELOAD_BENCH_SERVER") {
        return PathBuf::from(binary);
    }
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("portcullis"))
        .unwrap();
    assert!(
        binary.exists(),
        "{} not found: run `cargo build --release` first",
        binary.display()
    );
    binary
}

/// The server binary serving `dir` on `addr`, reloading on file changes.
fn spawn_server(dir: &Path, addr: &str) -> Child {
    Command::new(server_binary())
        .args(["serve", "--addr", addr])
        .arg(dir)
        .env("PORTCULLIS_WATCH_DEBOUNCE_MS", DEBOUNCE_MS.to_string())
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .env(
            "PORTCULLIS_ENGINE_VM",
            std::env::var("RELOAD_BENCH_VM").unwrap_or_else(|_| "true".into()),
        )
        .spawn()
        .unwrap()
}

/// Serve a bundle with ~10 MB of data (`files/100.json`) from the server
/// binary, reload it 3 times with the data of `files/101.json` to
/// `103.json`, and print the server's resident memory: steady, peak, after.
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
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .to_string();
    let mut server = spawn_server(&dir, &addr);
    let pid = server.id();
    let url = format!("http://{addr}/v1/data/hot/policy/v");
    let started = Instant::now();
    while client.post(&url).body("{}").send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer(&client, &url).await, 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let steady = status_bytes(pid, "VmRSS:");
    let started_at = status_bytes(pid, "VmHWM:");
    // Reset the high-water mark to the current resident set (clear_refs 5),
    // so VmHWM afterwards is the peak of the reloads alone.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
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
    let after = status_bytes(pid, "VmRSS:");
    let peak = status_bytes(pid, "VmHWM:");
    server.kill().unwrap();
    server.wait().unwrap();
    let described = MEMORY_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(kind, |(_, text)| text);
    println!(
        "memory with a {:.1} MB data.json, 3 reloads, {described}:",
        data_size as f64 / 1e6
    );
    println!(
        "  server: peak while starting {:.1} MB; steady {:.1} MB, peak during reloads {:.1} MB ({:.2}x steady), after {:.1} MB",
        started_at as f64 / 1e6,
        steady as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / steady as f64,
        after as f64 / 1e6
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
