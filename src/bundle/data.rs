//! Data files: parsing JSON and YAML into engine values with positions in
//! errors, and merging a document into the bundle's data tree at a
//! directory path.

use std::borrow::Cow;
use std::path::Path;

use super::BundleError;
use crate::engine::{shared_data, Value};
use crate::location::Location;

/// Parse a `data.json` file, sharing every part equal to `previous` (the
/// serving revision's value at the file's directory) with it.
pub fn parse_json(text: &str, path: &Path, previous: Option<&Value>) -> Result<Value, BundleError> {
    shared_data::parse_json(text, previous).map_err(|err| BundleError::Data {
        location: Location::new(path.display().to_string(), err.line(), err.column()),
        message: err.to_string(),
    })
}

/// Parse the `data.json` file at `file` as it is read, so that its text is
/// never held whole (a 10 MB file would otherwise add 10 MB to the peak of
/// every load), sharing with `previous` as [`parse_json`] does.
pub fn parse_json_file(
    file: &Path,
    shown: &Path,
    previous: Option<&Value>,
) -> Result<Value, BundleError> {
    let opened = std::fs::File::open(file).map_err(|source| BundleError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    parse_json_reader(opened, shown, previous)
}

/// Parse a `data.json` from `reader` (buffered here) as it is read; errors
/// name the file as `shown`. A failure to read (a corrupt archive, say) is
/// an I/O error, not a data error at the place the reading stopped.
pub fn parse_json_reader(
    reader: impl std::io::Read,
    shown: &Path,
    previous: Option<&Value>,
) -> Result<Value, BundleError> {
    let reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    shared_data::parse_json_from(reader, previous).map_err(|err| {
        if err.is_io() {
            return BundleError::Io {
                path: shown.to_path_buf(),
                source: err.into(),
            };
        }
        BundleError::Data {
            location: Location::new(shown.display().to_string(), err.line(), err.column()),
            message: err.to_string(),
        }
    })
}

/// Parse a `data.yaml` file, sharing with `previous` as [`parse_json`] does.
pub fn parse_yaml(text: &str, path: &Path, previous: Option<&Value>) -> Result<Value, BundleError> {
    let error = |message: String, row: usize, col: usize| BundleError::Data {
        location: Location::new(path.display().to_string(), row, col),
        message,
    };
    let json: serde_json::Value = yaml_serde::from_str(text).map_err(|err| {
        let (row, col) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        error(err.to_string(), row, col)
    })?;
    shared_data::convert(Cow::Owned(json), previous).map_err(|err| error(err.to_string(), 0, 0))
}

/// The value at `path` below `data` (undefined when there is none).
pub fn value_at<'a>(data: &'a Value, path: &[String]) -> &'a Value {
    path.iter()
        .fold(data, |node, segment| &node[&Value::from(segment.as_str())])
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
        let conflict = || conflict(file, &path[..depth]);
        let map = node.as_object_mut().map_err(|_| conflict())?;
        let key = Value::from(segment.as_str());
        if map.get(&key).is_none() {
            map.insert(key.clone(), Value::new_object());
        }
        node = map.get_mut(&key).ok_or_else(conflict)?;
    }
    let mut trail = path.to_vec();
    merge_value(node, value, &mut trail, file)
}

/// An object key as a path segment: a string as it is, any other key as
/// Rego prints it (data read from JSON and YAML only has string keys).
pub(super) fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => text.to_string(),
        other => other.to_string(),
    }
}

fn conflict(file: &Path, at: &[String]) -> BundleError {
    BundleError::DataConflict {
        file: file.to_path_buf(),
        path: at.join("/"),
    }
}

fn merge_value(
    into: &mut Value,
    value: Value,
    trail: &mut Vec<String>,
    file: &Path,
) -> Result<(), BundleError> {
    if into.as_object().is_ok_and(|fields| fields.is_empty()) {
        *into = value;
        return Ok(());
    }
    match (into, &value) {
        (Value::Object(_), Value::Object(incoming)) if incoming.is_empty() => Ok(()),
        (existing @ Value::Object(_), Value::Object(incoming)) => {
            let existing = existing
                .as_object_mut()
                .map_err(|_| conflict(file, trail))?;
            for (key, child) in incoming.iter() {
                trail.push(key_text(key));
                match existing.get_mut(key) {
                    Some(slot) => merge_value(slot, child.clone(), trail, file)?,
                    None => {
                        existing.insert(key.clone(), child.clone());
                    }
                }
                trail.pop();
            }
            Ok(())
        }
        _ => Err(conflict(file, trail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(json: serde_json::Value) -> Value {
        Value::from(json)
    }

    #[test]
    fn merges_disjoint_objects() {
        let mut tree = value(json!({"a": {"x": 1}}));
        merge_at(
            &mut tree,
            &["a".into()],
            value(json!({"y": 2})),
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(tree, value(json!({"a": {"x": 1, "y": 2}})));
    }

    #[test]
    fn scalar_collision_is_a_conflict() {
        let mut tree = value(json!({"a": {"x": 1}}));
        let err = merge_at(
            &mut tree,
            &["a".into()],
            value(json!({"x": 2})),
            Path::new("f"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("a/x"), "{err}");
    }

    #[test]
    fn non_object_document_fills_an_empty_directory_slot() {
        let mut tree = value(json!({}));
        merge_at(
            &mut tree,
            &["list".into()],
            value(json!([1, 2])),
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(tree, value(json!({"list": [1, 2]})));
    }

    #[test]
    fn a_nested_directory_is_created_and_a_scalar_in_the_way_is_a_conflict() {
        let mut tree = value(json!({"a": 1}));
        merge_at(
            &mut tree,
            &["b".into(), "c".into()],
            value(json!({"d": true})),
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(tree, value(json!({"a": 1, "b": {"c": {"d": true}}})));
        let err = merge_at(
            &mut tree,
            &["a".into(), "x".into()],
            value(json!({})),
            Path::new("f"),
        )
        .unwrap_err();
        assert!(err.to_string().contains('a'), "{err}");
    }

    #[test]
    fn yaml_and_json_read_the_same_document() {
        let from_json = parse_json(r#"{"a": [1, "x"], "b": {"c": null}}"#, Path::new("j"), None);
        let from_yaml = parse_yaml("a: [1, x]\nb:\n  c: null\n", Path::new("y"), None);
        assert_eq!(from_json.unwrap(), from_yaml.unwrap());
    }
}
