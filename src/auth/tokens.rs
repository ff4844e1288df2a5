//! API bearer tokens read from a file and swapped atomically when the file
//! changes. Tokens are kept only as SHA-256 digests, so a lookup compares
//! digests, never the secret itself, and a memory dump shows no tokens.
//!
//! The file: one token per line, either `NAME TOKEN` (the caller is called
//! NAME in the authorization policy and the decision log) or a bare
//! `TOKEN` (called `token-LINE`). Blank lines and `#` comments are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use crate::location::Location;

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `NAME TOKEN` or `TOKEN`.
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
}

type Digests = HashMap<[u8; 32], Arc<str>>;

/// The accepted tokens, replaceable while requests read them.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    current: ArcSwap<Digests>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Parse a token file's text.
fn parse(text: &str, file: &str) -> Result<Digests, TokenError> {
    let mut digests = Digests::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = index + 1;
        let invalid = |message: String| TokenError::Invalid {
            location: Location::new(file, row, raw.find(line).unwrap_or(0) + 1),
            message,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, token) = match fields.as_slice() {
            [token] => (format!("token-{row}"), *token),
            [name, token] => ((*name).to_string(), *token),
            _ => return Err(invalid("expected `NAME TOKEN` or `TOKEN`".into())),
        };
        if token.len() < 16 {
            return Err(invalid(format!(
                "the token for {name} is {} characters; at least 16 are required",
                token.len()
            )));
        }
        if digests
            .insert(digest(token), name.as_str().into())
            .is_some()
        {
            return Err(invalid(format!("the token for {name} is listed twice")));
        }
    }
    Ok(digests)
}

impl TokenStore {
    /// Load `path`; fails on an unreadable or malformed file.
    pub fn load(path: &Path) -> Result<Arc<TokenStore>, TokenError> {
        let store = TokenStore {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(Digests::new()),
        };
        store.reload()?;
        Ok(Arc::new(store))
    }

    /// The file the tokens come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the file again; on error the current tokens stay.
    pub fn reload(&self) -> Result<(), TokenError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| TokenError::Read {
            path: self.path.clone(),
            source,
        })?;
        let digests = parse(&text, &self.path.display().to_string())?;
        self.current.store(Arc::new(digests));
        Ok(())
    }

    /// The caller's name for a presented token, if it is accepted.
    pub fn identify(&self, token: &str) -> Option<Arc<str>> {
        self.current.load().get(&digest(token)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_bare_tokens_are_accepted_and_others_refused() {
        let digests = parse(
            "# API callers\norchestrator 0123456789abcdef0123\n\n  fedcba9876543210fedc\n",
            "tokens",
        )
        .unwrap();
        assert_eq!(
            digests.get(&digest("0123456789abcdef0123")).map(|n| &**n),
            Some("orchestrator")
        );
        assert_eq!(
            digests.get(&digest("fedcba9876543210fedc")).map(|n| &**n),
            Some("token-4")
        );
        assert!(!digests.contains_key(&digest("wrong")));
    }

    #[test]
    fn malformed_lines_are_reported_with_their_position() {
        let err = parse("ok 0123456789abcdef0123\n  a b c\n", "tokens").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tokens:2:3: expected `NAME TOKEN` or `TOKEN`"
        );
        let err = parse("short abc\n", "tokens").unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let err = parse("a 0123456789abcdef0123\nb 0123456789abcdef0123\n", "t").unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }
}
