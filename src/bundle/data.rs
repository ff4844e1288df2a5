//! Data files: parsing JSON and YAML with positions in errors, and merging a
//! document into the bundle's data tree at a directory path.

use std::path::Path;

use serde_json::{Map, Value};

use super::BundleError;
use crate::location::Location;

/// Parse a `data.json` file.
pub fn parse_json(text: &str, path: &Path) -> Result<Value, BundleError> {
    serde_json::from_str(text).map_err(|err| BundleError::Data {
        location: Location::new(path.display().to_string(), err.line(), err.column()),
        message: err.to_string(),
    })
}

/// Parse a `data.yaml` file.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Value, BundleError> {
    yaml_serde::from_str(text).map_err(|err| {
        let (row, col) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        BundleError::Data {
            location: Location::new(path.display().to_string(), row, col),
            message: err.to_string(),
        }
    })
}

/// Merge `value` into `tree` at `path`. Objects merge key by key; any other
/// collision is a conflict, reported against `file`.
pub fn merge_at(
    tree: &mut Value,
    path: &[String],
    value: Value,
    file: &Path,
) -> Result<(), BundleError> {
    let mut node = tree;
    for (depth, segment) in path.iter().enumerate() {
        let map = as_object(node, &path[..depth], file)?;
        node = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let mut trail = path.to_vec();
    merge_value(node, value, &mut trail, file)
}

fn as_object<'a>(
    node: &'a mut Value,
    at: &[String],
    file: &Path,
) -> Result<&'a mut Map<String, Value>, BundleError> {
    match node {
        Value::Object(map) => Ok(map),
        _ => Err(BundleError::DataConflict {
            file: file.to_path_buf(),
            path: at.join("/"),
        }),
    }
}

fn merge_value(
    into: &mut Value,
    value: Value,
    trail: &mut Vec<String>,
    file: &Path,
) -> Result<(), BundleError> {
    match (into, value) {
        (Value::Object(existing), Value::Object(incoming)) => {
            for (key, child) in incoming {
                trail.push(key.clone());
                match existing.get_mut(&key) {
                    Some(slot) => merge_value(slot, child, trail, file)?,
                    None => {
                        existing.insert(key, child);
                    }
                }
                trail.pop();
            }
            Ok(())
        }
        (slot @ Value::Object(_), incoming) if slot.as_object().is_some_and(Map::is_empty) => {
            *slot = incoming;
            Ok(())
        }
        _ => Err(BundleError::DataConflict {
            file: file.to_path_buf(),
            path: trail.join("/"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_disjoint_objects() {
        let mut tree = json!({"a": {"x": 1}});
        merge_at(&mut tree, &["a".into()], json!({"y": 2}), Path::new("f")).unwrap();
        assert_eq!(tree, json!({"a": {"x": 1, "y": 2}}));
    }

    #[test]
    fn scalar_collision_is_a_conflict() {
        let mut tree = json!({"a": {"x": 1}});
        let err = merge_at(&mut tree, &["a".into()], json!({"x": 2}), Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("a/x"), "{err}");
    }

    #[test]
    fn non_object_document_fills_an_empty_directory_slot() {
        let mut tree = json!({});
        merge_at(&mut tree, &["list".into()], json!([1, 2]), Path::new("f")).unwrap();
        assert_eq!(tree, json!({"list": [1, 2]}));
    }
}
