//! TLS for the admission listener and, when configured, the decision API
//! (rustls, TLS 1.2 and 1.3, optional client certificates): the serving
//! certificate lives in an `ArcSwap` that handshakes read without a lock and
//! a file watch replaces when cert-manager rotates the files, so a rotation
//! needs no restart and drops no connection. Handshakes run in their own
//! tasks so one slow client never holds up accepting the next.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::file_watch::{watch_files, FileWatch};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The files do not hold a usable certificate chain and key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The listener could not be bound or watched.
    #[error("{0}")]
    Listen(String),
}

/// The serving certificate, replaceable while handshakes read it.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl CertStore {
    /// Load the certificate chain and key; fails clearly on a missing,
    /// unreadable, expired or unusable file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, TlsError> {
        let key = read_certified_key(cert_path, key_path)?;
        Ok(Arc::new(CertStore {
            current: ArcSwap::from_pointee(key),
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
        }))
    }

    /// Re-read the files; on failure the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read_certified_key(&self.cert_path, &self.key_path)?;
        self.current.store(Arc::new(key));
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let cert_pem = read(cert_path)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|err| invalid(cert_path, format!("not a PEM certificate chain: {err}")))?;
    if certs.is_empty() {
        return Err(invalid(cert_path, "no certificate in the file".into()));
    }
    check_validity(cert_path, &certs[0])?;
    let key_pem = read(key_path)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|err| invalid(key_path, format!("not a PEM private key: {err}")))?
        .ok_or_else(|| invalid(key_path, "no private key in the file".into()))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|err| invalid(key_path, format!("unsupported private key: {err}")))?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|err| {
        invalid(
            key_path,
            format!("the key does not match the certificate: {err}"),
        )
    })?;
    Ok(certified)
}

/// Refuse a leaf certificate that is expired or not yet valid.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<(), TlsError> {
    let invalid = |message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|err| invalid(format!("cannot parse the certificate: {err}")))?;
    let validity = cert.validity();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if now > validity.not_after.timestamp() {
        return Err(invalid(format!(
            "the certificate expired at {}",
            validity.not_after
        )));
    }
    if now < validity.not_before.timestamp() {
        return Err(invalid(format!(
            "the certificate is not valid before {}",
            validity.not_before
        )));
    }
    Ok(())
}

/// A rustls server configuration serving from `store` (TLS 1.2+, HTTP/1.1).
pub fn server_config(store: Arc<CertStore>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Client certificate checking for mTLS.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca_file: PathBuf,
    /// Refuse handshakes without a client certificate (otherwise one is
    /// optional, and callers may authenticate with a token instead).
    pub required: bool,
}

/// A rustls server configuration serving from `store` that verifies client
/// certificates against `client.ca_file`.
pub fn server_config_with_clients(
    store: Arc<CertStore>,
    client: &ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let invalid = |message: String| TlsError::Invalid {
        path: client.ca_file.clone(),
        message,
    };
    let pem = std::fs::read(&client.ca_file).map_err(|source| TlsError::Read {
        path: client.ca_file.clone(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|err| invalid(format!("cannot parse a certificate: {err}")))?;
        roots
            .add(cert)
            .map_err(|err| invalid(format!("not a usable CA certificate: {err}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CA certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    );
    let builder = if client.required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder
        .build()
        .map_err(|err| invalid(format!("cannot build the client verifier: {err}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The subject common name of the client certificate a connection's
/// handshake verified (none without mTLS or without a certificate).
pub fn client_subject(stream: &TlsStream<TcpStream>) -> Option<Arc<str>> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let common_name = cert.subject().iter_common_name().next()?;
    common_name.as_str().ok().map(Arc::from)
}

/// An accepted, handshaken TLS connection stream for axum.
#[derive(Debug)]
pub struct TlsListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    _accept: AbortOnDrop,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    /// Bind `addr` and start accepting; handshakes run concurrently.
    pub async fn bind(
        addr: SocketAddr,
        config: Arc<ServerConfig>,
    ) -> Result<TlsListener, TlsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|err| TlsError::Listen(format!("cannot listen on {addr}: {err}")))?;
        let local_addr = listener
            .local_addr()
            .map_err(|err| TlsError::Listen(err.to_string()))?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, connections) = mpsc::channel(256);
        let accept = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            connections,
            local_addr,
            _accept: AbortOnDrop(accept),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Reload `store` when its files (or their directories, for symlink swaps)
/// change. A rotation that does not load keeps the current certificate.
pub fn watch_certs(store: Arc<CertStore>) -> Result<FileWatch, TlsError> {
    let paths = [store.cert_path.clone(), store.key_path.clone()];
    let watched: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    watch_files(&watched, move || match store.reload() {
        Ok(()) => tracing::info!("serving certificate reloaded"),
        Err(err) => {
            tracing::warn!(error = %err, "certificate reload failed; keeping the current one")
        }
    })
    .map_err(|err| TlsError::Listen(err.to_string()))
}
