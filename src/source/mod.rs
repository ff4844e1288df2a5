//! Where bundles come from and when they change: local directories and
//! archives watched with notify (debounced), and bundles polled from HTTP(S)
//! bundle servers and persisted. Reloads run off the request path.

mod http;
mod watch;

use std::path::PathBuf;

pub use http::{RemoteSource, RemoteStatus};
pub use watch::{watch_bundles, WatchHandle};

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The operating system refused a watch.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
    /// A file the source needs could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bundle server could not be used.
    #[error("remote bundle {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}
