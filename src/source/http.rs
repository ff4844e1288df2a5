//! Bundles on HTTP(S) bundle servers: downloaded with `If-None-Match` (a 304
//! costs one round trip and nothing else), checked, written atomically into
//! the persist directory and activated; polled again after a random delay
//! between the configured minimum and maximum, with exponential backoff and
//! jitter after failures. The persisted file doubles as the start-up copy
//! when the bundle server is unreachable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;

use super::SourceError;
use crate::backoff::{after_failures, between};
use crate::bundle::{self, SizeLimits, Verifier};
use crate::config::RemoteBundleConfig;
use crate::pdp::DecisionPoint;

/// What `/v1/status` shows for one remote bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteStatus {
    /// The configured name.
    pub name: String,
    /// Where it is polled from.
    pub url: String,
    /// The ETag of the last download.
    pub etag: Option<String>,
    /// When a download last activated.
    pub last_activation: Option<String>,
    /// When the server was last asked.
    pub last_check: Option<String>,
    /// The last failure (download, format or activation), if the latest
    /// attempt failed.
    pub last_error: Option<String>,
    /// True while the copy persisted by an earlier run is serving because
    /// the server has not answered yet.
    pub serving_persisted: bool,
}

/// One remote bundle source.
#[derive(Debug)]
pub struct RemoteSource {
    config: RemoteBundleConfig,
    verifier: Option<Arc<Verifier>>,
    limits: SizeLimits,
    path: PathBuf,
    client: reqwest::Client,
    token: Option<String>,
    status: ArcSwap<RemoteStatus>,
}

enum Fetch {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl RemoteSource {
    /// A source for `config`, persisting into `persist_dir`.
    pub fn new(
        config: &RemoteBundleConfig,
        persist_dir: &Path,
        verifier: Option<Arc<Verifier>>,
        limits: SizeLimits,
    ) -> Result<RemoteSource, SourceError> {
        let token = match &config.bearer_token_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|source| SourceError::Io {
                        path: file.clone(),
                        source,
                    })?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|err| SourceError::Http {
                url: config.url.clone(),
                message: err.to_string(),
            })?;
        std::fs::create_dir_all(persist_dir).map_err(|source| SourceError::Io {
            path: persist_dir.to_path_buf(),
            source,
        })?;
        Ok(RemoteSource {
            path: persist_dir.join(format!("{}.tar.gz", config.name)),
            status: ArcSwap::from_pointee(RemoteStatus {
                name: config.name.clone(),
                url: config.url.clone(),
                ..RemoteStatus::default()
            }),
            config: config.clone(),
            verifier,
            limits,
            client,
            token,
        })
    }

    /// The local file the decision point loads this bundle from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current status.
    pub fn status(&self) -> Arc<RemoteStatus> {
        self.status.load_full()
    }

    fn update(&self, change: impl FnOnce(&mut RemoteStatus)) {
        let mut status = RemoteStatus::clone(&self.status.load());
        change(&mut status);
        self.status.store(Arc::new(status));
    }

    /// Make sure a usable copy is on disk before the first activation: a
    /// fresh download, or else the persisted copy of an earlier run. With
    /// neither, start-up fails.
    pub async fn prepare(&self) -> Result<(), SourceError> {
        let attempt = match self.fetch(None).await {
            Ok(Fetch::Body { bytes, etag }) => self.install(&bytes).map(|_| etag),
            Ok(Fetch::NotModified) => Err("unexpected 304 without an ETag".to_string()),
            Err(err) => Err(err),
        };
        match attempt {
            Ok(etag) => {
                self.update(|s| {
                    s.etag = etag;
                    s.last_check = Some(now());
                });
                Ok(())
            }
            Err(message) if self.path.exists() => {
                tracing::warn!(bundle = %self.config.name, error = %message,
                    "bundle server unavailable; starting from the persisted copy");
                self.update(|s| {
                    s.serving_persisted = true;
                    s.last_error = Some(message);
                    s.last_check = Some(now());
                });
                Ok(())
            }
            Err(message) => Err(SourceError::Http {
                url: self.config.url.clone(),
                message: format!(
                    "{message}, and no persisted copy exists at {}",
                    self.path.display()
                ),
            }),
        }
    }

    async fn fetch(&self, etag: Option<&str>) -> Result<Fetch, String> {
        let mut request = self.client.get(&self.config.url);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|err| format!("download failed: {err}"))?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(Fetch::NotModified),
            status if status.is_success() => {
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // The archive is compressed: it may not be larger than
                // the bundle it holds may be (plus gzip's and tar's framing).
                let cap = self.limits.max_bundle_bytes.saturating_add(1 << 20);
                if response.content_length().is_some_and(|len| len > cap) {
                    return Err(format!(
                        "bundle is larger than {cap} bytes (max_bundle_bytes)"
                    ));
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|err| format!("download failed: {err}"))?
                {
                    if (bytes.len() + chunk.len()) as u64 > cap {
                        return Err(format!(
                            "bundle is larger than {cap} bytes (max_bundle_bytes)"
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(Fetch::Body { bytes, etag })
            }
            status => Err(format!("bundle server answered {status}")),
        }
    }

    /// Check a downloaded archive and move it into place atomically.
    /// Returns the bytes it replaced, for a rollback.
    fn install(&self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let staged = self.path.with_extension("download.tar.gz");
        std::fs::write(&staged, bytes)
            .map_err(|err| format!("cannot write {}: {err}", staged.display()))?;
        if let Err(err) = bundle::load_sharing(&staged, self.verifier.as_deref(), None, self.limits)
        {
            let _ = std::fs::remove_file(&staged);
            return Err(format!("downloaded bundle is invalid: {err}"));
        }
        let previous = std::fs::read(&self.path).ok();
        std::fs::rename(&staged, &self.path)
            .map_err(|err| format!("cannot move the bundle into place: {err}"))?;
        Ok(previous)
    }

    fn restore(&self, previous: Option<Vec<u8>>) {
        if let Some(bytes) = previous {
            let staged = self.path.with_extension("restore.tar.gz");
            if std::fs::write(&staged, bytes).is_ok() {
                let _ = std::fs::rename(&staged, &self.path);
            }
        }
    }

    /// Poll until the task is aborted.
    pub fn spawn(self: Arc<Self>, pdp: Arc<DecisionPoint>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.poll(pdp).await })
    }

    async fn poll(&self, pdp: Arc<DecisionPoint>) {
        let min = Duration::from_millis(self.config.min_delay_ms);
        let max = Duration::from_millis(self.config.max_delay_ms);
        let mut failures: u32 = 0;
        loop {
            let delay = if failures == 0 {
                between(min, max)
            } else {
                after_failures(failures, min, max)
            };
            tokio::time::sleep(delay).await;
            let etag = self.status().etag.clone();
            match self.fetch(etag.as_deref()).await {
                Ok(Fetch::NotModified) => {
                    failures = 0;
                    self.update(|s| s.last_check = Some(now()));
                }
                Ok(Fetch::Body { bytes, etag }) => {
                    failures = 0;
                    self.activate(&pdp, &bytes, etag).await;
                }
                Err(message) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(bundle = %self.config.name, error = %message, failures, "bundle poll failed");
                    self.update(|s| {
                        s.last_error = Some(message);
                        s.last_check = Some(now());
                    });
                }
            }
        }
    }

    async fn activate(&self, pdp: &Arc<DecisionPoint>, bytes: &[u8], etag: Option<String>) {
        let previous = match self.install(bytes) {
            Ok(previous) => previous,
            Err(message) => {
                tracing::warn!(bundle = %self.config.name, error = %message, "bundle refused");
                // Remember the ETag: the same bad bundle is not fetched again.
                self.update(|s| {
                    s.etag = etag;
                    s.last_error = Some(message);
                    s.last_check = Some(now());
                });
                return;
            }
        };
        let reload = {
            let pdp = pdp.clone();
            tokio::task::spawn_blocking(move || pdp.reload().map(|_| ()).map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|err| Err(err.to_string()))
        };
        match reload {
            Ok(()) => self.update(|s| {
                s.etag = etag;
                s.last_activation = Some(now());
                s.last_check = s.last_activation.clone();
                s.last_error = None;
                s.serving_persisted = false;
            }),
            Err(message) => {
                self.restore(previous);
                self.update(|s| {
                    s.etag = etag;
                    s.last_error = Some(format!("activation failed: {message}"));
                    s.last_check = Some(now());
                });
            }
        }
    }
}
