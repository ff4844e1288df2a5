//! The composition root: configuration → decision point (first load fails
//! fast) → listener → axum, with panics answered as 500s and a graceful
//! drain on SIGTERM/SIGINT.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::error::{code, ApiError};
use crate::api::overload::{limit_in_flight, InFlight};
use crate::api::{self, AppParts, AppState};
use crate::auth::{Auth, TokenStore};
use crate::bundle::Verifier;
use crate::cache::DecisionCache;
use crate::config::{Config, ConfigError};
use crate::decision_log::DecisionLogger;
use crate::engine::{DataPath, EngineOptions};
use crate::file_watch::{watch_files, FileWatch};
use crate::header_deadline::HeaderDeadline;
use crate::metrics::Metrics;
use crate::pdp::{DecisionPoint, LoadError};
use crate::source::{watch_bundles, RemoteSource, SourceError, WatchHandle};
use crate::tls::{
    server_config, server_config_with_clients, watch_certs, CertStore, ClientAuth, TlsError,
    TlsListener,
};
use std::path::Path;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The first bundle load failed.
    #[error("initial bundle load failed: {0}")]
    Load(#[from] LoadError),
    /// A bundle source could not start (file watch, bundle server).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The persisted pushed data could not be read.
    #[error("pushed data (data_writes.persist_file): {0}")]
    Pushed(#[source] std::io::Error),
    /// The API token file could not be read.
    #[error("API tokens: {0}")]
    Tokens(#[from] crate::auth::TokenError),
    /// The decision log could not start.
    #[error("decision log: {0}")]
    DecisionLog(#[from] crate::decision_log::DecisionLogError),
    /// A listener's TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bound, loaded server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: ApiListener,
    state: AppState,
    /// Authentication and authorization of the decision API, when on.
    auth: Option<Arc<Auth>>,
    /// Reloads the token file while the server lives.
    _token_watch: Option<FileWatch>,
    /// Live while the server is: dropping it stops the file watch.
    watch: Option<WatchHandle>,
    /// The remote bundle pollers, stopped when the server is dropped.
    pollers: Vec<PollerHandle>,
    /// The admission HTTPS listener and its certificate watch, if enabled.
    admission: Option<(TlsListener, FileWatch)>,
}

/// The decision API's listener: plain TCP, or TLS with its certificate
/// watch (and optional client certificates).
#[derive(Debug)]
enum ApiListener {
    Plain(tokio::net::TcpListener),
    Tls(TlsListener, FileWatch),
}

/// Aborts a poller task when dropped.
#[derive(Debug)]
struct PollerHandle(tokio::task::JoinHandle<()>);

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Server {
    /// Validate `config`, load and activate its bundles, and bind the
    /// listener. Fails, without serving anything, if any of that fails.
    pub async fn bind(config: &Config) -> Result<Server, ServerError> {
        config.validate()?;
        let addr = config.listen_addr()?;
        let options = EngineOptions {
            eval_timeout: config.eval_timeout(),
            use_vm: config.engine.vm,
            max_builtin_result_bytes: config.limits.max_builtin_result_bytes,
            strict_builtin_errors: config.engine.strict_builtin_errors,
        };
        let verifier = match &config.verification {
            Some(settings) => Some(Arc::new(Verifier::new(settings).map_err(|err| {
                ConfigError::Invalid {
                    key: "verification".into(),
                    message: err.to_string(),
                }
            })?)),
            None => None,
        };
        let remotes = config
            .remote_bundles
            .iter()
            .map(|remote| {
                RemoteSource::new(
                    remote,
                    &config.persist_dir,
                    verifier.clone(),
                    config.bundle_limits,
                )
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        for remote in &remotes {
            remote.prepare().await?;
        }
        let self_test = config.self_test;
        let bundle_limits = config.bundle_limits;
        let mut bundles = config.bundles.clone();
        bundles.extend(remotes.iter().map(|r| r.path().to_path_buf()));
        let metrics = Arc::new(Metrics::new());
        let pdp_metrics = metrics.clone();
        let persist = config.data_writes.persist_file.clone();
        let pdp = tokio::task::spawn_blocking(move || {
            let pdp = DecisionPoint::new(bundles, options)
                .with_verifier(verifier)
                .with_self_test(self_test)
                .with_size_limits(bundle_limits)
                .with_metrics(pdp_metrics)
                .with_persisted_pushes(persist)
                .map_err(ServerError::Pushed)?;
            pdp.reload().map(|_| pdp).map_err(ServerError::Load)
        })
        .await
        .map_err(|err| ServerError::Serve(std::io::Error::other(err)))??;
        let pdp = Arc::new(pdp);
        let listener = match &config.server.tls {
            None => ApiListener::Plain(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            Some(tls) => {
                let store = CertStore::load(&tls.cert_file, &tls.key_file)?;
                let rustls = match &tls.client_ca_file {
                    Some(ca_file) => server_config_with_clients(
                        store.clone(),
                        &ClientAuth {
                            ca_file: ca_file.clone(),
                            required: tls.require_client_certificate,
                        },
                    )?,
                    None => server_config(store.clone()),
                };
                ApiListener::Tls(TlsListener::bind(addr, rustls).await?, watch_certs(store)?)
            }
        };
        let (auth, token_watch) = auth_settings(config, &pdp, &metrics)?;
        let decision_log = if config.decision_logs.enabled {
            Some(DecisionLogger::start(
                &config.decision_logs,
                metrics.decision_log().clone(),
            )?)
        } else {
            None
        };
        let state = AppState::new(AppParts {
            decision_log,
            allow_writes: config.data_writes.enabled,
            ready_after_first_push: config.data_writes.ready_after_first_push,
            pdp: pdp.clone(),
            limits: Arc::new(config.limits.clone()),
            default_decision: Arc::new(DataPath::parse(&config.default_decision)),
            shutting_down: Arc::new(AtomicBool::new(false)),
            remotes: Arc::new(remotes),
            decisions: Arc::new(DecisionCache::new(
                "data",
                &config.cache.settings(),
                Some(metrics.clone()),
            )),
            verdicts: Arc::new(DecisionCache::new(
                "admission",
                &config.cache.settings(),
                Some(metrics.clone()),
            )),
            metrics,
            admission: config.admission.enabled.then(|| {
                crate::api::admission::settings(
                    &config.admission.kinds,
                    &config.admission.exempt_namespaces,
                )
            }),
        });
        let admission = if config.admission.enabled {
            let cert = config
                .admission
                .cert_file
                .as_deref()
                .unwrap_or(Path::new(""));
            let key = config
                .admission
                .key_file
                .as_deref()
                .unwrap_or(Path::new(""));
            let store = CertStore::load(cert, key)?;
            let listener =
                TlsListener::bind(config.admission_addr()?, server_config(store.clone())).await?;
            Some((listener, watch_certs(store)?))
        } else {
            None
        };
        // Watching starts before the server is returned, so no change made
        // after bind() can be missed.
        let watch = if config.watch.enabled {
            let debounce = std::time::Duration::from_millis(config.watch.debounce_ms);
            Some(watch_bundles(state.pdp.clone(), &config.bundles, debounce)?)
        } else {
            None
        };
        let pollers = state
            .remotes
            .iter()
            .map(|remote| PollerHandle(remote.clone().spawn(state.pdp.clone())))
            .collect();
        Ok(Server {
            listener,
            state,
            auth,
            _token_watch: token_watch,
            watch,
            pollers,
            admission,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        match &self.listener {
            ApiListener::Plain(listener) => listener.local_addr(),
            ApiListener::Tls(listener, _) => axum::serve::Listener::local_addr(listener),
        }
        .expect("a bound listener has a local address")
    }

    /// The admission listener's address, when it is enabled.
    pub fn admission_addr(&self) -> Option<SocketAddr> {
        self.admission.as_ref().map(|(listener, _)| {
            axum::serve::Listener::local_addr(listener).expect("a bound listener has an address")
        })
    }

    /// The shared state (the decision point, limits).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then stop accepting, mark the
    /// service not ready and let in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // The bundle watch and pollers end when shutdown begins, and the
        // decision point activates nothing after it.
        let reloaders = (self.watch, self.pollers);
        let pdp = self.state.pdp.clone();
        let flag = self.state.shutting_down.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let metrics = self.state.metrics.clone();
        let max_in_flight = self.state.limits.max_in_flight;
        let harden = |router| hardened(router, max_in_flight, &metrics);
        // Every header block must arrive within the deadline.
        let header_deadline =
            std::time::Duration::from_millis(self.state.limits.header_read_timeout_ms);
        let admission = self.admission.map(|(listener, cert_watch)| {
            let router = harden(api::admission::router(self.state.clone()));
            let serve = axum::serve(
                HeaderDeadline::new(listener, header_deadline),
                router.into_make_service_with_connect_info::<api::ClientAddr>(),
            )
            .with_graceful_shutdown(stopped());
            (serve, cert_watch)
        });
        let decision_log = self.state.decision_log.clone();
        let mut router = api::router(self.state);
        if let Some(auth) = self.auth {
            router = router.layer(axum::middleware::from_fn_with_state(
                auth,
                crate::auth::guard,
            ));
        }
        let router = harden(router);
        type Serving = std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;
        let (api, _api_cert_watch): (Serving, _) = match self.listener {
            ApiListener::Plain(listener) => {
                let listener = HeaderDeadline::new(listener, header_deadline).tap_io(|tcp| {
                    if let Err(err) = tcp.get_ref().set_nodelay(true) {
                        tracing::debug!(error = %err, "could not set TCP_NODELAY");
                    }
                });
                let serve = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(stopped());
                (Box::pin(serve.into_future()), None)
            }
            ApiListener::Tls(listener, watch) => {
                let serve = axum::serve(
                    HeaderDeadline::new(listener, header_deadline),
                    router.into_make_service_with_connect_info::<api::ClientAddr>(),
                )
                .with_graceful_shutdown(stopped());
                (Box::pin(serve.into_future()), Some(watch))
            }
        };
        tokio::spawn(async move {
            shutdown.await;
            flag.store(true, Ordering::SeqCst);
            pdp.close();
            drop(reloaders);
            tracing::info!("shutdown requested; draining in-flight requests");
            let _ = stop_tx.send(true);
        });
        let served = match admission {
            Some((admission, _cert_watch)) => {
                let (api, admission) = tokio::join!(api, admission);
                api.and(admission).map_err(ServerError::Serve)
            }
            None => api.await.map_err(ServerError::Serve),
        };
        // Every request has been answered: write out what they logged.
        if let Some(log) = decision_log {
            log.shutdown().await;
        }
        served
    }
}

/// `router` with its own in-flight limit and, outermost, panics caught,
/// answered 500 and counted.
fn hardened(router: axum::Router, max_in_flight: usize, metrics: &Arc<Metrics>) -> axum::Router {
    let in_flight = InFlight::new(max_in_flight, metrics.clone());
    let metrics = metrics.clone();
    router
        .layer(axum::middleware::from_fn_with_state(
            in_flight,
            limit_in_flight,
        ))
        .layer(CatchPanicLayer::custom(move |panic| {
            panic_response(&metrics, panic)
        }))
}

/// The API's authentication and authorization from the configuration (none
/// when nothing is configured), and the watch that reloads the token file.
fn auth_settings(
    config: &Config,
    pdp: &Arc<DecisionPoint>,
    metrics: &Arc<Metrics>,
) -> Result<(Option<Arc<Auth>>, Option<FileWatch>), ServerError> {
    let tokens = match &config.auth.tokens_file {
        Some(path) => Some(TokenStore::load(path)?),
        None => None,
    };
    let watch = match &tokens {
        Some(store) => {
            let reloading = store.clone();
            let watch = watch_files(&[store.path()], move || match reloading.reload() {
                Ok(()) => tracing::info!("API tokens reloaded"),
                Err(err) => tracing::warn!(error = %err, "API token reload failed; keeping the current tokens"),
            })
            .map_err(|err| ServerError::Tls(TlsError::Listen(err.to_string())))?;
            Some(watch)
        }
        None => None,
    };
    let auth = Auth {
        tokens,
        require_client_certificate: config
            .server
            .tls
            .as_ref()
            .is_some_and(|tls| tls.require_client_certificate),
        policy: config.auth.authz_policy.as_deref().map(DataPath::parse),
        open_health: config.auth.open_health,
        open_metrics: config.auth.open_metrics,
        pdp: pdp.clone(),
        metrics: metrics.clone(),
    };
    Ok((auth.active().then(|| Arc::new(auth)), watch))
}

fn panic_response(metrics: &Metrics, panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    metrics.panicked();
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_ERROR,
        "internal error while handling the request",
    )
    .into_response()
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_and_counted() {
        let metrics = Arc::new(Metrics::new());
        let router = axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        );
        let app = hardened(router, 8, &metrics);
        for _ in 0..2 {
            let request = axum::http::Request::get("/boom")
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let bytes = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["code"], "internal_error");
        }
        let page = String::from_utf8(metrics.render()).unwrap();
        assert!(page.contains("portcullis_handler_panics_total 2"), "{page}");
    }
}
