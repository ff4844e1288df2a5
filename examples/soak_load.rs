//! The soak test's load generator (run by `scripts/soak.sh`): a fixed rate
//! of decisions for as long as asked, a mix of the three callers (the
//! provisioning orchestrator, the secret broker and the API server over
//! HTTPS), then per-minute figures as JSON lines on stdout and a summary
//! line.
//!
//! Requests whose inputs vary (environment names, review uids) so that the
//! decision cache does not answer everything. A request fails when it gets
//! no answer or an answer other than 200; failures after the `--stop-marker`
//! file appears (SIGTERM was sent) are counted apart, as intended.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
struct Args {
    /// The decision API, e.g. http://127.0.0.1:18281.
    #[arg(long)]
    api: String,
    /// The admission listener, e.g. https://127.0.0.1:18443.
    #[arg(long)]
    admission: String,
    /// PEM CA the admission certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// Requests per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// How long to run, in seconds.
    #[arg(long)]
    seconds: u64,
    /// Once this file exists, failures are counted as after-shutdown.
    #[arg(long)]
    stop_marker: PathBuf,
    /// Repository root (for the example requests).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
}

#[derive(Default)]
struct Minute {
    latencies_us: Vec<u64>,
    ok: u64,
    failed: u64,
    after_stop: u64,
}

struct Stats {
    minutes: Mutex<Vec<Minute>>,
    started: Instant,
    decisions: AtomicU64,
    in_flight: AtomicU64,
    skipped: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Stats {
    fn record(&self, latency: Duration, outcome: Result<(), String>, after_stop: bool) {
        let minute = (self.started.elapsed().as_secs() / 60) as usize;
        let mut minutes = self.minutes.lock().unwrap();
        while minutes.len() <= minute {
            minutes.push(Minute::default());
        }
        let m = &mut minutes[minute];
        match outcome {
            Ok(()) => {
                m.ok += 1;
                m.latencies_us.push(latency.as_micros() as u64);
            }
            Err(_) if after_stop => m.after_stop += 1,
            Err(err) => {
                m.failed += 1;
                let mut failures = self.failures.lock().unwrap();
                if failures.len() < 20 {
                    failures.push(err);
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn example(repo: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(repo.join("examples").join(name)).expect("example");
    serde_json::from_str::<Value>(&text).expect("example JSON")["input"].clone()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let ca = std::fs::read(&args.ca).expect("CA file");
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tls = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
        .build()
        .unwrap();
    let environment = example(&args.repo, "feature-payments.json");
    let secret = example(&args.repo, "secret-request.json");
    let review = example(&args.repo, "admission-pod.json");
    let stats = Arc::new(Stats {
        minutes: Mutex::new(Vec::new()),
        started: Instant::now(),
        decisions: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
    });
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        ticker.tick().await;
        n += 1;
        // Bounded: a stalled server never piles up unbounded tasks.
        if stats.in_flight.load(Ordering::Relaxed) >= 512 {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (client, url, body) = match n % 5 {
            0..=2 => {
                let mut input = environment.clone();
                input["name"] = json!(format!("feature-soak-{}", n % 500));
                (
                    plain.clone(),
                    format!("{}/v1/data/provisioning/decision", args.api),
                    json!({ "input": input }),
                )
            }
            3 => (
                plain.clone(),
                format!("{}/v1/data/secrets/access/decision", args.api),
                json!({ "input": secret }),
            ),
            _ => {
                let mut body = review.clone();
                body["request"]["uid"] = json!(format!("soak-{n}"));
                (tls.clone(), format!("{}/v1/admit", args.admission), body)
            }
        };
        let stats = stats.clone();
        let marker = args.stop_marker.clone();
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = match client.post(&url).json(&body).send().await {
                Ok(response) if response.status() == 200 => match response.bytes().await {
                    Ok(_) => Ok(()),
                    Err(err) => Err(format!("{url}: body: {err}")),
                },
                Ok(response) => Err(format!("{url}: status {}", response.status())),
                Err(err) => Err(format!("{url}: {err}")),
            };
            if outcome.is_ok() {
                stats.decisions.fetch_add(1, Ordering::Relaxed);
            }
            stats.record(sent.elapsed(), outcome, marker.exists());
            stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    // Let the last requests finish.
    let settle = Instant::now() + Duration::from_secs(15);
    while stats.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let minutes = stats.minutes.lock().unwrap().len();
    for minute in 0..minutes {
        report_minute(&stats, minute);
    }
    let minutes = stats.minutes.lock().unwrap();
    let failed: u64 = minutes.iter().map(|m| m.failed).sum();
    let after_stop: u64 = minutes.iter().map(|m| m.after_stop).sum();
    println!(
        "{}",
        json!({
            "summary": true,
            "sent": n,
            "decisions_answered": stats.decisions.load(Ordering::Relaxed),
            "failed": failed,
            "failed_after_sigterm": after_stop,
            "skipped_overrun": stats.skipped.load(Ordering::Relaxed),
            "first_failures": *stats.failures.lock().unwrap(),
        })
    );
}

fn report_minute(stats: &Stats, minute: usize) {
    let mut minutes = stats.minutes.lock().unwrap();
    let Some(m) = minutes.get_mut(minute) else {
        return;
    };
    m.latencies_us.sort_unstable();
    println!(
        "{}",
        json!({
            "minute": minute + 1,
            "ok": m.ok,
            "failed": m.failed,
            "failed_after_sigterm": m.after_stop,
            "p50_us": percentile(&m.latencies_us, 0.50),
            "p99_us": percentile(&m.latencies_us, 0.99),
        })
    );
}
