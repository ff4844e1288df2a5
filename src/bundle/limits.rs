//! How much of a bundle is read: the uncompressed size of the whole bundle
//! and of each file. Checked against a file's declared size (an archive
//! member's header, a file's metadata) before any of it is read, and again
//! against the bytes actually read, so a decompression bomb is refused
//! before its memory is spent.

use serde::Deserialize;

/// Size limits for reading one bundle, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SizeLimits {
    /// All of a bundle's files together, uncompressed (in an archive, every
    /// member counts, read or skipped).
    pub max_bundle_bytes: u64,
    /// Any one file of a bundle, uncompressed.
    pub max_file_bytes: u64,
}

impl SizeLimits {
    /// Default for the whole bundle: 32 MiB uncompressed.
    pub const DEFAULT_BUNDLE_BYTES: u64 = 32 << 20;
    /// Default for one file: 16 MiB uncompressed. A data file's values take
    /// several times its text in memory, up to ~25 times for an array of
    /// small numbers (16 MiB of `0,` took 416 MB: RELIABILITY.md), so a
    /// larger file wants a deliberate setting and the memory for it.
    pub const DEFAULT_FILE_BYTES: u64 = 16 << 20;
}

impl Default for SizeLimits {
    fn default() -> Self {
        SizeLimits {
            max_bundle_bytes: Self::DEFAULT_BUNDLE_BYTES,
            max_file_bytes: Self::DEFAULT_FILE_BYTES,
        }
    }
}

/// What is left of a bundle's size budget while its files are read.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: SizeLimits,
    used: u64,
}

/// A file or bundle over its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OverLimit {
    /// One file is larger than `max_file_bytes`.
    File { size: u64, limit: u64 },
    /// The files together are larger than `max_bundle_bytes`.
    Bundle { limit: u64 },
}

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverLimit::File { size, limit } => write!(
                f,
                "file is {size} bytes uncompressed, over the limit of {limit} bytes (max_file_bytes)"
            ),
            OverLimit::Bundle { limit } => write!(
                f,
                "bundle is over the limit of {limit} bytes uncompressed (max_bundle_bytes)"
            ),
        }
    }
}

impl Budget {
    pub(crate) fn new(limits: SizeLimits) -> Budget {
        Budget { limits, used: 0 }
    }

    /// Account for a file of `size` bytes (as declared, or as read).
    pub(crate) fn take(&mut self, size: u64) -> Result<(), OverLimit> {
        if size > self.limits.max_file_bytes {
            return Err(OverLimit::File {
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        self.used = self.used.saturating_add(size);
        if self.used > self.limits.max_bundle_bytes {
            return Err(OverLimit::Bundle {
                limit: self.limits.max_bundle_bytes,
            });
        }
        Ok(())
    }

    /// The most bytes one file may still hold: what to read at most
    /// (one more than allowed, so that an over-long file is seen as such).
    pub(crate) fn read_cap(&self) -> u64 {
        let left = self.limits.max_bundle_bytes.saturating_sub(self.used);
        left.min(self.limits.max_file_bytes).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_the_bundle_are_each_bounded() {
        let mut budget = Budget::new(SizeLimits {
            max_bundle_bytes: 10,
            max_file_bytes: 6,
        });
        assert_eq!(budget.read_cap(), 7);
        assert!(budget.take(6).is_ok());
        assert_eq!(budget.read_cap(), 5);
        assert_eq!(budget.take(7), Err(OverLimit::File { size: 7, limit: 6 }));
        assert_eq!(budget.take(5), Err(OverLimit::Bundle { limit: 10 }));
    }
}
