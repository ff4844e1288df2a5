//! Configuration: a YAML file, then `PORTCULLIS_*` environment variables,
//! then command-line flags, each overriding the one before; then
//! [`Config::validate`], whose errors name the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::location::Location;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener settings.
    pub server: ServerConfig,
    /// Bundle directories to load, in order.
    pub bundles: Vec<PathBuf>,
    /// The document `POST /` evaluates, as a path (`/system/main`).
    pub default_decision: String,
    /// Input limits.
    pub limits: Limits,
    /// Evaluation engine settings.
    pub engine: EngineConfig,
    /// Hot reload of bundle files.
    pub watch: WatchConfig,
    /// Bundles polled from HTTP(S) bundle servers.
    pub remote_bundles: Vec<RemoteBundleConfig>,
    /// Where the last activated remote bundles are kept, for starts while
    /// the bundle server is unreachable.
    pub persist_dir: PathBuf,
    /// Run each new revision's own `test_*` rules before activating it.
    pub self_test: bool,
    /// The Kubernetes admission webhook listener (HTTPS only).
    pub admission: AdmissionConfig,
    /// When set, every bundle (local and remote) must be signed with one of
    /// these keys.
    pub verification: Option<crate::bundle::signing::VerificationSettings>,
    /// The decision cache.
    pub cache: CacheConfig,
    /// Logging.
    pub log: LogConfig,
    /// Decision logs: one event per decision, masked, written off the
    /// request path.
    pub decision_logs: DecisionLogConfig,
    /// Who may call the decision API.
    pub auth: AuthConfig,
    /// Data pushed through the Data API (PUT/PATCH/DELETE /v1/data).
    pub data_writes: DataWritesConfig,
    /// How large a bundle (local or remote, uncompressed) and each of its
    /// files may be; a larger one is refused before it is read.
    pub bundle_limits: crate::bundle::SizeLimits,
}

/// Data writes through the Data API.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataWritesConfig {
    /// Serve `PUT`, `PATCH` and `DELETE /v1/data/...` and policy pushes
    /// (off, the default: 403). On a non-loopback address they need
    /// authentication ([`Config::validate`]).
    pub enabled: bool,
    /// Keep pushed data in this JSON file (written atomically after every
    /// write, read at start). None: pushed data lives in memory only and is
    /// gone after a restart.
    pub persist_file: Option<PathBuf>,
    /// Report not ready (`/health/ready` 503) until some data or policy has
    /// been pushed (or replayed from `persist_file`), for replicas whose
    /// decisions depend on pushed facts.
    pub ready_after_first_push: bool,
}

/// Decision logs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogConfig {
    /// Log every decision.
    pub enabled: bool,
    /// Where events go.
    pub sink: DecisionLogSink,
    /// Events waiting for the writer; beyond this, events are dropped and
    /// counted (or, with `never_drop`, handlers wait).
    pub queue_size: usize,
    /// Never drop an event: a full queue makes handlers wait (latency
    /// rises while the sink is slow or down) instead of dropping.
    pub never_drop: bool,
    /// Labels added to every event (besides `id` and `version`).
    pub labels: std::collections::BTreeMap<String, String>,
    /// The file sink.
    pub file: DecisionLogFile,
    /// The HTTP sink.
    pub http: DecisionLogHttp,
    /// Masking, applied before anything is written.
    pub mask: MaskConfig,
    /// How long shutdown waits for queued events to be written.
    pub shutdown_timeout_ms: u64,
}

/// Where decision events go.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DecisionLogSink {
    /// One JSON line per event on stdout (service logs go to stderr).
    #[default]
    Stdout,
    /// JSON lines in a file rotated by size.
    File,
    /// Gzip-compressed batches posted to a collector.
    Http,
}

/// The file sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogFile {
    /// The JSONL file.
    pub path: PathBuf,
    /// Rotate before the file would grow beyond this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` ... `path.N`).
    pub max_files: usize,
}

/// The HTTP sink.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionLogHttp {
    /// The collector URL each batch is posted to.
    pub url: Option<String>,
    /// A file holding a bearer token (read for every upload).
    pub bearer_token_file: Option<PathBuf>,
    /// Most events per upload.
    pub batch_max_events: usize,
    /// Upload at least this often while events wait, in ms.
    pub flush_interval_ms: u64,
    /// Timeout of one upload, in ms.
    pub timeout_ms: u64,
    /// Retries of a failed upload before its events are dropped and
    /// counted (ignored with `never_drop`: it retries until it succeeds).
    pub max_retries: u32,
    /// First retry delay, in ms (doubles, with jitter, up to 30 s).
    pub retry_base_ms: u64,
}

/// Decision-log masking.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MaskConfig {
    /// JSON pointers into `/input` or `/result` (`*` matches every child):
    /// erased, or replaced when a `value` is given.
    pub pointers: Vec<MaskPointer>,
    /// A rule in the style of OPA's `system.log.mask`, evaluated with the
    /// event as input when the active policies define it.
    pub policy: String,
    /// Erase the values of Kubernetes Secrets in admission input (`data`,
    /// `stringData`, the last-applied annotation).
    pub kubernetes_secrets: bool,
}

/// One configured mask.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskPointer {
    /// The JSON pointer.
    pub pointer: String,
    /// The replacement; absent: erase the field.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        DecisionLogConfig {
            enabled: false,
            sink: DecisionLogSink::Stdout,
            queue_size: 10_000,
            never_drop: false,
            labels: Default::default(),
            file: DecisionLogFile::default(),
            http: DecisionLogHttp::default(),
            mask: MaskConfig::default(),
            shutdown_timeout_ms: 5_000,
        }
    }
}

impl Default for DecisionLogFile {
    fn default() -> Self {
        DecisionLogFile {
            path: PathBuf::from("decisions.jsonl"),
            max_bytes: 100 * 1024 * 1024,
            max_files: 5,
        }
    }
}

impl Default for DecisionLogHttp {
    fn default() -> Self {
        DecisionLogHttp {
            url: None,
            bearer_token_file: None,
            batch_max_events: 500,
            flush_interval_ms: 1_000,
            timeout_ms: 10_000,
            max_retries: 5,
            retry_base_ms: 100,
        }
    }
}

impl Default for MaskConfig {
    fn default() -> Self {
        MaskConfig {
            pointers: Vec::new(),
            policy: "/system/log/mask".into(),
            kubernetes_secrets: true,
        }
    }
}

/// The decision cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Cache decisions (never across activations, never for policies that
    /// call non-deterministic builtins).
    pub enabled: bool,
    /// At most this many entries.
    pub max_entries: u64,
    /// At most this many bytes of cached results (approximate).
    pub max_bytes: u64,
    /// Entries expire this many seconds after they were made (0: never).
    pub ttl_seconds: u64,
    /// Data paths never cached (`/secrets/access`: that path and below).
    pub exclude_paths: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_entries: 100_000,
            max_bytes: 256 * 1024 * 1024,
            ttl_seconds: 300,
            exclude_paths: Vec::new(),
        }
    }
}

impl CacheConfig {
    /// The settings the cache is built from.
    pub fn settings(&self) -> crate::cache::CacheSettings {
        crate::cache::CacheSettings {
            enabled: self.enabled,
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            ttl: (self.ttl_seconds > 0).then(|| Duration::from_secs(self.ttl_seconds)),
            exclude_paths: self
                .exclude_paths
                .iter()
                .map(|p| crate::engine::DataPath::parse(p))
                .collect(),
        }
    }
}

/// The admission webhook listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Serve `POST /v1/admit` (needs `cert_file` and `key_file`).
    pub enabled: bool,
    /// The HTTPS listen address (in a cluster: `0.0.0.0:8443`).
    pub addr: String,
    /// PEM certificate chain, reloaded when it changes.
    pub cert_file: Option<PathBuf>,
    /// PEM private key, reloaded when it changes.
    pub key_file: Option<PathBuf>,
    /// Namespaces whose requests are allowed without evaluation.
    pub exempt_namespaces: Vec<String>,
    /// Kinds the admission policies check; requests for other kinds are
    /// allowed without evaluation.
    pub kinds: Vec<String>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            enabled: false,
            addr: "127.0.0.1:8443".into(),
            cert_file: None,
            key_file: None,
            exempt_namespaces: vec!["kube-system".into(), "portcullis".into()],
            kinds: [
                "Pod",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "ReplicaSet",
                "Job",
                "CronJob",
                "Service",
                "Ingress",
                "NetworkPolicy",
                "Namespace",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// One bundle on an HTTP(S) bundle server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteBundleConfig {
    /// The bundle's name (also its file name in `persist_dir`).
    pub name: String,
    /// The bundle's URL (a `.tar.gz`).
    pub url: String,
    /// Shortest wait between polls, in milliseconds.
    #[serde(default = "default_min_delay_ms")]
    pub min_delay_ms: u64,
    /// Longest wait between polls and the backoff ceiling, in milliseconds.
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Timeout of one download, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A file holding a bearer token sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
}

fn default_min_delay_ms() -> u64 {
    10_000
}

fn default_max_delay_ms() -> u64 {
    60_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Hot reload of bundle files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Watch the bundle paths and reload when they change.
    pub enabled: bool,
    /// How long files must be quiet before a reload starts, in milliseconds.
    pub debounce_ms: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            enabled: true,
            debounce_ms: 200,
        }
    }
}

/// Evaluation engine settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Run entry points on regorus's bytecode VM where it compiles them;
    /// `false` keeps every evaluation on the interpreter.
    pub vm: bool,
    /// A builtin that fails (`to_number("x")`, a division by zero) fails
    /// the decision. Off, OPA's default: the call is undefined and
    /// evaluation goes on.
    pub strict_builtin_errors: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            vm: true,
            strict_builtin_errors: false,
        }
    }
}

/// Listener settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the decision API.
    pub addr: String,
    /// Serve the decision API over HTTPS (and optionally check client
    /// certificates). Off: plain HTTP, fit for localhost only.
    pub tls: Option<ApiTlsConfig>,
}

/// HTTPS for the decision API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsConfig {
    /// PEM certificate chain, reloaded when it changes.
    pub cert_file: PathBuf,
    /// PEM private key, reloaded when it changes.
    pub key_file: PathBuf,
    /// PEM CA certificates that client certificates must chain to (mTLS);
    /// a verified certificate's common name identifies the caller.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate.
    #[serde(default)]
    pub require_client_certificate: bool,
}

/// Authentication and authorization of the decision API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer tokens (`NAME TOKEN` per line), reloaded when the file
    /// changes. Set: every call must authenticate (token or client
    /// certificate).
    pub tokens_file: Option<PathBuf>,
    /// A rule in the style of OPA's `system.authz`, e.g.
    /// `/system/authz/allow`: every call must make it `true`.
    pub authz_policy: Option<String>,
    /// `/health`, `/health/live` and `/health/ready` need no credentials.
    pub open_health: bool,
    /// `/metrics` needs no credentials.
    pub open_metrics: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            tokens_file: None,
            authz_policy: None,
            open_health: true,
            open_metrics: true,
        }
    }
}

/// Input limits; each has a clear error when exceeded.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a request body.
    pub max_json_depth: usize,
    /// Longest one evaluation may run, in milliseconds.
    pub eval_timeout_ms: u64,
    /// Most inputs one batch request may carry.
    pub max_batch_inputs: usize,
    /// Most requests handled at once per listener; beyond, 503 with
    /// `Retry-After` at once (health and metrics are never refused).
    pub max_in_flight: usize,
    /// How long a client may take to send a request's header block (from
    /// connecting, or from the previous response: an idle keep-alive
    /// connection closes after it too), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// The largest result one call of a builtin that can multiply its
    /// arguments (`numbers.range`, `sprintf` widths, `concat`, `replace`)
    /// may build, in bytes; a larger one fails the evaluation.
    pub max_builtin_result_bytes: u64,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter).
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            bundles: vec![PathBuf::from("policies"), PathBuf::from("bundles")],
            default_decision: "/system/main".to_string(),
            limits: Limits::default(),
            engine: EngineConfig::default(),
            watch: WatchConfig::default(),
            remote_bundles: Vec::new(),
            persist_dir: PathBuf::from(".portcullis/bundles"),
            self_test: false,
            admission: AdmissionConfig::default(),
            verification: None,
            cache: CacheConfig::default(),
            log: LogConfig::default(),
            decision_logs: DecisionLogConfig::default(),
            auth: AuthConfig::default(),
            data_writes: DataWritesConfig::default(),
            bundle_limits: crate::bundle::SizeLimits::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:8181".to_string(),
            tls: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_json_depth: 64,
            eval_timeout_ms: 100,
            max_batch_inputs: 1000,
            max_in_flight: 1024,
            header_read_timeout_ms: 10_000,
            max_builtin_result_bytes: crate::engine::DEFAULT_MAX_BUILTIN_RESULT_BYTES,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML for this schema.
    #[error("{location}: {message}")]
    Parse {
        /// Where.
        location: Location,
        /// The parser's message (names an unknown or mistyped key).
        message: String,
    },
    /// A key has a value that cannot work.
    #[error("invalid config: {key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `limits.max_body_bytes`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The environment variables read, and the key each sets.
pub const ENV_KEYS: [(&str, &str); 26] = [
    ("PORTCULLIS_ADDR", "server.addr"),
    ("PORTCULLIS_BUNDLES", "bundles"),
    ("PORTCULLIS_DEFAULT_DECISION", "default_decision"),
    ("PORTCULLIS_MAX_BODY_BYTES", "limits.max_body_bytes"),
    ("PORTCULLIS_MAX_JSON_DEPTH", "limits.max_json_depth"),
    ("PORTCULLIS_EVAL_TIMEOUT_MS", "limits.eval_timeout_ms"),
    ("PORTCULLIS_MAX_BATCH_INPUTS", "limits.max_batch_inputs"),
    ("PORTCULLIS_MAX_IN_FLIGHT", "limits.max_in_flight"),
    ("PORTCULLIS_ENGINE_VM", "engine.vm"),
    (
        "PORTCULLIS_ENGINE_STRICT_BUILTIN_ERRORS",
        "engine.strict_builtin_errors",
    ),
    ("PORTCULLIS_WATCH", "watch.enabled"),
    ("PORTCULLIS_WATCH_DEBOUNCE_MS", "watch.debounce_ms"),
    ("PORTCULLIS_LOG_LEVEL", "log.level"),
    ("PORTCULLIS_LOG_FORMAT", "log.format"),
    ("PORTCULLIS_CACHE", "cache.enabled"),
    ("PORTCULLIS_CACHE_MAX_ENTRIES", "cache.max_entries"),
    ("PORTCULLIS_CACHE_TTL_SECONDS", "cache.ttl_seconds"),
    ("PORTCULLIS_DECISION_LOGS", "decision_logs.enabled"),
    ("PORTCULLIS_DECISION_LOGS_SINK", "decision_logs.sink"),
    ("PORTCULLIS_DECISION_LOGS_FILE", "decision_logs.file.path"),
    ("PORTCULLIS_DECISION_LOGS_URL", "decision_logs.http.url"),
    (
        "PORTCULLIS_DECISION_LOGS_NEVER_DROP",
        "decision_logs.never_drop",
    ),
    ("PORTCULLIS_AUTH_TOKENS_FILE", "auth.tokens_file"),
    ("PORTCULLIS_AUTH_AUTHZ_POLICY", "auth.authz_policy"),
    ("PORTCULLIS_DATA_WRITES", "data_writes.enabled"),
    (
        "PORTCULLIS_DATA_WRITES_PERSIST_FILE",
        "data_writes.persist_file",
    ),
];

/// serde_json refuses deeper documents than this, whatever we allow.
const PARSER_DEPTH_CEILING: usize = 128;

impl Config {
    /// Read a YAML config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text, &path.display().to_string())
    }

    /// Parse YAML config text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        yaml_serde::from_str(text).map_err(|err| {
            let (row, col) = err
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                location: Location::new(file, row, col),
                message: err.to_string(),
            }
        })
    }

    /// Apply `PORTCULLIS_*` variables from `lookup` (normally `std::env::var`).
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (var, key) in ENV_KEYS {
            if let Some(value) = lookup(var) {
                self.set(key, &value)
                    .map_err(|message| ConfigError::Invalid {
                        key: format!("{key} (from {var})"),
                        message,
                    })?;
            }
        }
        Ok(())
    }

    /// Set one key from text, as the environment and flags do.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
            value
                .trim()
                .parse()
                .map_err(|_| format!("expected a whole number, got {value:?}"))
        }
        fn boolean(value: &str) -> Result<bool, String> {
            match value.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(format!("expected true or false, got {other:?}")),
            }
        }
        match key {
            "server.addr" => self.server.addr = value.to_string(),
            "bundles" => {
                self.bundles = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            }
            "default_decision" => self.default_decision = value.to_string(),
            "limits.max_body_bytes" => self.limits.max_body_bytes = number(value)?,
            "limits.max_json_depth" => self.limits.max_json_depth = number(value)?,
            "limits.eval_timeout_ms" => self.limits.eval_timeout_ms = number(value)?,
            "limits.max_batch_inputs" => self.limits.max_batch_inputs = number(value)?,
            "limits.max_in_flight" => self.limits.max_in_flight = number(value)?,
            "engine.vm" => self.engine.vm = boolean(value)?,
            "engine.strict_builtin_errors" => self.engine.strict_builtin_errors = boolean(value)?,
            "watch.enabled" => self.watch.enabled = boolean(value)?,
            "watch.debounce_ms" => self.watch.debounce_ms = number(value)?,
            "cache.enabled" => self.cache.enabled = boolean(value)?,
            "cache.max_entries" => self.cache.max_entries = number(value)?,
            "cache.ttl_seconds" => self.cache.ttl_seconds = number(value)?,
            "decision_logs.enabled" => self.decision_logs.enabled = boolean(value)?,
            "decision_logs.sink" => {
                self.decision_logs.sink = match value {
                    "stdout" => DecisionLogSink::Stdout,
                    "file" => DecisionLogSink::File,
                    "http" => DecisionLogSink::Http,
                    other => return Err(format!("expected stdout, file or http, got {other:?}")),
                }
            }
            "decision_logs.file.path" => self.decision_logs.file.path = PathBuf::from(value),
            "decision_logs.http.url" => self.decision_logs.http.url = Some(value.to_string()),
            "decision_logs.never_drop" => self.decision_logs.never_drop = boolean(value)?,
            "auth.tokens_file" => self.auth.tokens_file = Some(PathBuf::from(value)),
            "data_writes.enabled" => self.data_writes.enabled = boolean(value)?,
            "data_writes.persist_file" => {
                self.data_writes.persist_file = Some(PathBuf::from(value))
            }
            "auth.authz_policy" => self.auth.authz_policy = Some(value.to_string()),
            "log.level" => self.log.level = value.to_string(),
            "log.format" => {
                self.log.format = match value {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(format!("expected text or json, got {other:?}")),
                }
            }
            other => return Err(format!("unknown key {other}")),
        }
        Ok(())
    }

    /// Check every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_string(),
            message,
        };
        self.listen_addr()?;
        if self.bundles.is_empty() && self.remote_bundles.is_empty() {
            return Err(invalid(
                "bundles",
                "at least one bundle directory or remote bundle is needed".into(),
            ));
        }
        if self.cache.enabled && (self.cache.max_entries == 0 || self.cache.max_bytes == 0) {
            return Err(invalid(
                "cache.max_entries",
                "max_entries and max_bytes must be above 0 (or set cache.enabled: false)".into(),
            ));
        }
        if self.admission.enabled {
            self.admission_addr()?;
            if self.admission.cert_file.is_none() || self.admission.key_file.is_none() {
                return Err(invalid(
                    "admission.cert_file",
                    "the admission listener is HTTPS only: set cert_file and key_file".into(),
                ));
            }
        }
        for (i, remote) in self.remote_bundles.iter().enumerate() {
            let key = |field: &str| format!("remote_bundles[{i}].{field}");
            let name_ok = !remote.name.is_empty()
                && remote
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                return Err(invalid(
                    &key("name"),
                    "letters, digits, '-', '_' and '.' only".into(),
                ));
            }
            if !(remote.url.starts_with("http://") || remote.url.starts_with("https://")) {
                return Err(invalid(
                    &key("url"),
                    format!("{:?} is not an http(s) URL", remote.url),
                ));
            }
            if remote.min_delay_ms == 0 || remote.min_delay_ms > remote.max_delay_ms {
                return Err(invalid(
                    &key("min_delay_ms"),
                    "must be greater than 0 and at most max_delay_ms".into(),
                ));
            }
            if remote.timeout_ms == 0 {
                return Err(invalid(&key("timeout_ms"), "must be greater than 0".into()));
            }
        }
        if self.limits.max_body_bytes == 0 {
            return Err(invalid(
                "limits.max_body_bytes",
                "must be greater than 0".into(),
            ));
        }
        if !(1..=PARSER_DEPTH_CEILING).contains(&self.limits.max_json_depth) {
            return Err(invalid(
                "limits.max_json_depth",
                format!("must be between 1 and {PARSER_DEPTH_CEILING}"),
            ));
        }
        if self.limits.eval_timeout_ms == 0 {
            return Err(invalid(
                "limits.eval_timeout_ms",
                "must be greater than 0".into(),
            ));
        }
        if self.limits.header_read_timeout_ms == 0 {
            return Err(invalid(
                "limits.header_read_timeout_ms",
                "must be greater than 0".into(),
            ));
        }
        if self.limits.max_in_flight == 0 {
            return Err(invalid(
                "limits.max_in_flight",
                "must be greater than 0".into(),
            ));
        }
        if self.limits.max_batch_inputs == 0 {
            return Err(invalid(
                "limits.max_batch_inputs",
                "must be greater than 0".into(),
            ));
        }
        if self.default_decision.trim_matches('/').is_empty() {
            return Err(invalid(
                "default_decision",
                "must name a document path".into(),
            ));
        }
        self.validate_decision_logs()?;
        if let Some(tls) = &self.server.tls {
            if tls.require_client_certificate && tls.client_ca_file.is_none() {
                return Err(invalid(
                    "server.tls.require_client_certificate",
                    "needs server.tls.client_ca_file to verify client certificates".into(),
                ));
            }
        }
        if let Some(policy) = &self.auth.authz_policy {
            if policy.trim_matches('/').is_empty() {
                return Err(invalid("auth.authz_policy", "must name a rule path".into()));
            }
        }
        if self.data_writes.enabled && !self.api_is_loopback() && !self.api_authenticates() {
            return Err(invalid(
                "data_writes.enabled",
                format!(
                    "data and policy writes on {}, reachable from other hosts, need authentication: \
                     set auth.tokens_file (or server.tls.require_client_certificate), \
                     or listen on a loopback address",
                    self.server.addr
                ),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| invalid("log.level", err.to_string()))?;
        Ok(())
    }

    /// Whether the decision API listens on a loopback address only.
    fn api_is_loopback(&self) -> bool {
        self.listen_addr().is_ok_and(|addr| addr.ip().is_loopback())
    }

    /// Whether every call of the decision API must authenticate.
    fn api_authenticates(&self) -> bool {
        self.auth.tokens_file.is_some()
            || self
                .server
                .tls
                .as_ref()
                .is_some_and(|tls| tls.require_client_certificate)
    }

    fn validate_decision_logs(&self) -> Result<(), ConfigError> {
        let logs = &self.decision_logs;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("decision_logs.{key}"),
            message,
        };
        if logs.queue_size == 0 {
            return Err(invalid("queue_size", "must be greater than 0".into()));
        }
        if logs.file.max_bytes == 0 {
            return Err(invalid("file.max_bytes", "must be greater than 0".into()));
        }
        if logs.enabled && logs.sink == DecisionLogSink::Http {
            match &logs.http.url {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {}
                Some(url) => {
                    return Err(invalid(
                        "http.url",
                        format!("{url:?} is not an http(s) URL"),
                    ))
                }
                None => return Err(invalid("http.url", "the http sink needs a url".into())),
            }
        }
        if logs.http.batch_max_events == 0 || logs.http.timeout_ms == 0 {
            return Err(invalid(
                "http.batch_max_events",
                "batch_max_events and timeout_ms must be greater than 0".into(),
            ));
        }
        for (i, mask) in logs.mask.pointers.iter().enumerate() {
            crate::decision_log::mask::MaskRule::new(
                &mask.pointer,
                crate::decision_log::mask::MaskAction::Erase,
            )
            .map_err(|err| invalid(&format!("mask.pointers[{i}]"), err.to_string()))?;
        }
        Ok(())
    }

    /// The parsed listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .addr
            .parse()
            .map_err(|err| ConfigError::Invalid {
                key: "server.addr".to_string(),
                message: format!("{:?} is not a socket address: {err}", self.server.addr),
            })
    }

    /// The parsed admission listen address.
    pub fn admission_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.admission
            .addr
            .parse()
            .map_err(|err| ConfigError::Invalid {
                key: "admission.addr".to_string(),
                message: format!("{:?} is not a socket address: {err}", self.admission.addr),
            })
    }

    /// The evaluation time limit as a duration.
    pub fn eval_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.eval_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_listen_on_localhost() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.listen_addr().unwrap().to_string(), "127.0.0.1:8181");
        assert_eq!(config.limits.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(config.eval_timeout(), Duration::from_millis(100));
    }

    #[test]
    fn yaml_overrides_defaults_and_keeps_the_rest() {
        let config = Config::from_yaml(
            "server:\n  addr: 0.0.0.0:9000\nlimits:\n  eval_timeout_ms: 250\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(config.server.addr, "0.0.0.0:9000");
        assert_eq!(config.limits.eval_timeout_ms, 250);
        assert_eq!(
            config.limits.max_body_bytes,
            Limits::default().max_body_bytes
        );
    }

    #[test]
    fn the_shipped_example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("portcullis.example.yaml");
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn unknown_key_is_named_with_its_position() {
        let err = Config::from_yaml("limits:\n  max_body: 1\n", "c.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("max_body"), "{text}");
        assert!(text.starts_with("c.yaml:2:"), "{text}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let err = Config::from_yaml("limits:\n  max_body_bytes: lots\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("c.yaml:2:"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_bad_env_names_the_key() {
        let mut config = Config::default();
        config
            .apply_env(|k| match k {
                "PORTCULLIS_ADDR" => Some("127.0.0.1:0".into()),
                "PORTCULLIS_BUNDLES" => Some("a, b".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.server.addr, "127.0.0.1:0");
        assert_eq!(config.bundles, vec![PathBuf::from("a"), PathBuf::from("b")]);
        let err = config
            .apply_env(|k| (k == "PORTCULLIS_EVAL_TIMEOUT_MS").then(|| "soon".into()))
            .unwrap_err();
        assert!(err.to_string().contains("limits.eval_timeout_ms"), "{err}");
    }

    #[test]
    fn remote_bundles_are_validated() {
        let config = Config::from_yaml(
            "bundles: []\nremote_bundles:\n  - name: platform\n    url: ftp://x/b.tar.gz\n",
            "c.yaml",
        )
        .unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("remote_bundles[0].url"), "{err}");
        let config = Config::from_yaml(
            "bundles: []\nremote_bundles:\n  - name: platform\n    url: https://b/x.tar.gz\n",
            "c.yaml",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.remote_bundles[0].min_delay_ms, 10_000);
        let err = Config::from_yaml("remote_bundles:\n  - name: p\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("url"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = Config::default();
        config.server.addr = "localhost".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.addr"));
        let mut config = Config::default();
        config.limits.max_json_depth = 500;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.max_json_depth"));
        let mut config = Config::default();
        config.log.level = "loud=[".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("log.level"));
    }
}
