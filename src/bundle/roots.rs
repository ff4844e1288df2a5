//! Bundle roots: the subtrees of `data` a bundle owns. Data and packages must
//! stay inside them, and no two active bundles may own overlapping ones.

use std::path::Path;

use super::{Bundle, BundleError};
use crate::engine::Value;

/// One root, as path segments (`"teams/quota"` → `["teams", "quota"]`).
/// The empty root owns the whole tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The segments; empty for the whole tree.
    pub segments: Vec<String>,
}

impl Root {
    /// Parse a root as the manifest spells it (`/`-separated, slashes trimmed).
    pub fn parse(text: &str) -> Root {
        Root {
            segments: text
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// The root as text, `/`-separated.
    pub fn as_text(&self) -> String {
        self.segments.join("/")
    }

    /// Whether `path` lies inside this root (equal to it or below it).
    pub fn contains(&self, path: &[String]) -> bool {
        path.len() >= self.segments.len() && self.segments.iter().zip(path).all(|(a, b)| a == b)
    }

    /// Whether `path` is strictly above this root (a proper prefix of it).
    fn is_strictly_below(&self, path: &[String]) -> bool {
        path.len() < self.segments.len() && path.iter().zip(&self.segments).all(|(a, b)| a == b)
    }

    /// Whether two roots overlap: one contains the other.
    pub fn overlaps(&self, other: &Root) -> bool {
        self.contains(&other.segments) || other.contains(&self.segments)
    }
}

/// Whether `path` is inside any of `roots`.
pub fn within_roots(roots: &[Root], path: &[String]) -> bool {
    roots.iter().any(|r| r.contains(path))
}

/// Check that a data value placed at `base` only writes inside `roots`.
///
/// A value placed above a root is allowed when every part of it descends into
/// some root: `{"teams": {"quota": …}}` at the top fits the root `teams/quota`.
pub fn check_data_within(
    roots: &[Root],
    base: &[String],
    value: &Value,
    file: &Path,
) -> Result<(), BundleError> {
    let mut path = base.to_vec();
    check_rec(roots, &mut path, value, file)
}

fn check_rec(
    roots: &[Root],
    path: &mut Vec<String>,
    value: &Value,
    file: &Path,
) -> Result<(), BundleError> {
    if within_roots(roots, path) {
        return Ok(());
    }
    let above_some_root = roots.iter().any(|r| r.is_strictly_below(path));
    match value {
        Value::Object(map) if above_some_root => {
            for (key, child) in map.iter() {
                path.push(super::data::key_text(key));
                check_rec(roots, path, child, file)?;
                path.pop();
            }
            Ok(())
        }
        _ => Err(BundleError::OutsideRoots {
            file: file.to_path_buf(),
            path: path.join("/"),
            roots: roots
                .iter()
                .map(Root::as_text)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Refuse a set of bundles in which two own overlapping roots.
pub fn check_disjoint_roots(bundles: &[Bundle]) -> Result<(), BundleError> {
    for (i, first) in bundles.iter().enumerate() {
        for second in bundles.iter().skip(i + 1) {
            for a in first.roots() {
                for b in second.roots() {
                    if a.overlaps(&b) {
                        return Err(BundleError::OverlappingRoots {
                            first: first.name.clone(),
                            first_root: a.as_text(),
                            second: second.name.clone(),
                            second_root: b.as_text(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(s: &str) -> Vec<String> {
        Root::parse(s).segments
    }

    #[test]
    fn containment_is_by_segment_not_by_prefix_string() {
        let root = Root::parse("team");
        assert!(root.contains(&segs("team")));
        assert!(root.contains(&segs("team/a")));
        assert!(!root.contains(&segs("teams")));
        assert!(!root.contains(&segs("")));
    }

    #[test]
    fn empty_root_contains_everything_and_overlaps_everything() {
        let all = Root::parse("");
        assert!(all.contains(&segs("a/b")));
        assert!(all.overlaps(&Root::parse("x")));
    }

    #[test]
    fn overlap_is_symmetric() {
        let a = Root::parse("a/b");
        let b = Root::parse("a");
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!Root::parse("a/b").overlaps(&Root::parse("a/c")));
    }
}
