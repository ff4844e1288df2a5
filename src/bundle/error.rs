//! Errors raised while reading a bundle. Each says which file and, where a
//! parser knows it, which line and column.

use std::path::PathBuf;

use crate::location::Location;

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A `.tar.gz` bundle that cannot be read.
    #[error("{path}: {message}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file or the whole bundle is larger than the configured limits.
    #[error("{path}: {message}")]
    TooLarge {
        /// The file, or the archive.
        path: PathBuf,
        /// Which limit, and the size.
        message: String,
    },
    /// The bundle's signature does not verify.
    #[error("{bundle}: {source}")]
    Signature {
        /// The bundle.
        bundle: PathBuf,
        /// Which check failed, for which file.
        #[source]
        source: super::signing::SignatureError,
    },
    /// A bundle path that is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The `.manifest` is not valid.
    #[error("{location}: invalid manifest: {message}")]
    Manifest {
        /// Where in the manifest.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A data file is not valid JSON or YAML.
    #[error("{location}: invalid data file: {message}")]
    Data {
        /// Where in the data file.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// A data file writes a path that no manifest root covers.
    #[error("{file}: data path {path} is outside the bundle's roots [{roots}]")]
    OutsideRoots {
        /// The data file.
        file: PathBuf,
        /// The offending path, `/`-separated.
        path: String,
        /// The declared roots, comma-separated.
        roots: String,
    },
    /// Two data files, or a data file and itself, set the same path differently.
    #[error("{file}: data at {path} conflicts with data loaded from another file")]
    DataConflict {
        /// The file that was being merged.
        file: PathBuf,
        /// The conflicting path, `/`-separated.
        path: String,
    },
    /// Two bundles claim overlapping roots.
    #[error(
        "bundles {first} and {second} have overlapping roots: {first} owns \"{first_root}\", {second} owns \"{second_root}\""
    )]
    OverlappingRoots {
        /// One bundle's name.
        first: String,
        /// Its root.
        first_root: String,
        /// The other bundle's name.
        second: String,
        /// Its root.
        second_root: String,
    },
}

impl BundleError {
    /// The file position of the problem, when there is one.
    pub fn location(&self) -> Option<Location> {
        match self {
            BundleError::Manifest { location, .. } | BundleError::Data { location, .. } => {
                Some(location.clone())
            }
            BundleError::Io { path, .. }
            | BundleError::NotADirectory { path }
            | BundleError::Archive { path, .. }
            | BundleError::TooLarge { path, .. }
            | BundleError::Signature { bundle: path, .. }
            | BundleError::OutsideRoots { file: path, .. }
            | BundleError::DataConflict { file: path, .. } => {
                Some(Location::new(path.display().to_string(), 0, 0))
            }
            BundleError::OverlappingRoots { .. } => None,
        }
    }
}
