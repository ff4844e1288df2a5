//! Cache keys: a 128-bit hash of the parts of an input a policy reads, in a
//! canonical form (object keys in sorted order, numbers by value, so `1`,
//! `1.0` and `1e0` are one number and key order in the request body does
//! not matter).
//!
//! For every read path the subtree found there is hashed; where the path
//! stops early (a missing key, or a value that is not an object) the depth
//! and the kind of value found are hashed instead, so inputs that differ in
//! *why* a path is undefined still get different keys.

use xxhash_rust::xxh3::Xxh3;

use crate::engine::reads::InputReads;
use crate::engine::Value;

/// Hash what `reads` selects of `input`.
pub fn hash_input(input: Option<&Value>, reads: &InputReads) -> u128 {
    let mut hasher = Xxh3::new();
    let Some(input) = input else {
        hasher.update(b"none");
        return hasher.digest128();
    };
    match reads.minimal() {
        None => {
            hasher.update(b"whole");
            hash_value(&mut hasher, input);
        }
        Some(paths) => {
            hasher.update(b"paths");
            for path in &paths {
                hasher.update(b"P");
                hasher.update(&(path.len() as u64).to_le_bytes());
                for segment in path {
                    hash_str(&mut hasher, segment);
                }
                hash_at(&mut hasher, input, path);
            }
        }
    }
    hasher.digest128()
}

fn hash_at(hasher: &mut Xxh3, root: &Value, path: &[String]) {
    let mut node = root;
    for (depth, segment) in path.iter().enumerate() {
        let next = match node {
            Value::Object(fields) => fields.get(&Value::from(segment.as_str())),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => {
                hasher.update(b"stop");
                hasher.update(&(depth as u64).to_le_bytes());
                hasher.update(&[kind_tag(node)]);
                return;
            }
        }
    }
    hasher.update(b"V");
    hash_value(hasher, node);
}

fn kind_tag(value: &Value) -> u8 {
    match value {
        Value::Null => b'n',
        Value::Bool(_) => b'b',
        Value::Number(_) => b'#',
        Value::String(_) => b's',
        Value::Array(_) => b'a',
        Value::Set(_) => b'e',
        Value::Object(_) => b'o',
        Value::Undefined => b'u',
    }
}

fn hash_str(hasher: &mut Xxh3, text: &str) {
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// Feed one value in canonical form.
pub fn hash_value(hasher: &mut Xxh3, value: &Value) {
    hasher.update(&[kind_tag(value)]);
    match value {
        Value::Null | Value::Undefined => {}
        Value::Bool(b) => hasher.update(&[u8::from(*b)]),
        Value::Number(n) => {
            if let Some(i) = n.as_i128() {
                hasher.update(b"i");
                hasher.update(&i.to_le_bytes());
            } else if let Some(f) = n.as_f64() {
                hasher.update(b"f");
                hasher.update(&f.to_bits().to_le_bytes());
            } else {
                hasher.update(b"d");
                hash_str(hasher, &n.format_decimal());
            }
        }
        Value::String(s) => hash_str(hasher, s),
        Value::Array(items) => {
            hasher.update(&(items.len() as u64).to_le_bytes());
            for item in items.iter() {
                hash_value(hasher, item);
            }
        }
        Value::Set(items) => {
            hasher.update(&(items.len() as u64).to_le_bytes());
            for item in items.iter() {
                hash_value(hasher, item);
            }
        }
        Value::Object(fields) => {
            hasher.update(&(fields.len() as u64).to_le_bytes());
            for (key, item) in fields.iter_sorted() {
                hash_value(hasher, key);
                hash_value(hasher, item);
            }
        }
    }
}

/// Roughly how many bytes a value holds (for the cache's weight bound).
pub fn approximate_size(value: &Value) -> usize {
    const NODE: usize = 32;
    NODE + match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(approximate_size).sum(),
        Value::Set(items) => items.iter().map(approximate_size).sum(),
        Value::Object(fields) => fields
            .iter_sorted()
            .map(|(k, v)| approximate_size(k) + approximate_size(v))
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn reads(paths: &[&str]) -> InputReads {
        InputReads::Paths(
            paths
                .iter()
                .map(|p| p.split('.').map(str::to_string).collect())
                .collect::<BTreeSet<_>>(),
        )
    }

    #[test]
    fn key_order_and_number_spelling_do_not_matter() {
        let a = value(r#"{"b": 1, "a": {"y": [1.0, 2], "x": "s"}}"#);
        let b = value(r#"{"a": {"x": "s", "y": [1, 2.0e0]}, "b": 1.00}"#);
        assert_eq!(
            hash_input(Some(&a), &InputReads::Whole),
            hash_input(Some(&b), &InputReads::Whole)
        );
        let c = value(r#"{"a": {"x": "s", "y": [1, 2.5]}, "b": 1}"#);
        assert_ne!(
            hash_input(Some(&a), &InputReads::Whole),
            hash_input(Some(&c), &InputReads::Whole)
        );
    }

    #[test]
    fn only_read_paths_count() {
        let r = reads(&["request.object.spec", "request.kind"]);
        let a = value(
            r#"{"request": {"uid": "1", "kind": "Pod", "object": {"spec": {"x": 1}, "status": 1}}}"#,
        );
        let b = value(
            r#"{"request": {"uid": "2", "kind": "Pod", "object": {"spec": {"x": 1}, "status": 2}}}"#,
        );
        let c = value(
            r#"{"request": {"uid": "1", "kind": "Pod", "object": {"spec": {"x": 2}, "status": 1}}}"#,
        );
        assert_eq!(hash_input(Some(&a), &r), hash_input(Some(&b), &r));
        assert_ne!(hash_input(Some(&a), &r), hash_input(Some(&c), &r));
    }

    #[test]
    fn why_a_path_is_undefined_is_part_of_the_key() {
        let r = reads(&["a.b"]);
        let keys: Vec<u128> = [
            r#"{}"#,
            r#"{"a": null}"#,
            r#"{"a": {}}"#,
            r#"{"a": "text"}"#,
            r#"{"a": {"b": null}}"#,
        ]
        .iter()
        .map(|json| hash_input(Some(&value(json)), &r))
        .collect();
        let distinct: BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        assert_ne!(hash_input(None, &r), keys[0]);
    }

    #[test]
    fn values_that_look_alike_hash_apart() {
        let pairs = [
            (r#"{"a": "1"}"#, r#"{"a": 1}"#),
            (r#"{"a": ["ab", "c"]}"#, r#"{"a": ["a", "bc"]}"#),
            (r#"{"a": [[]]}"#, r#"{"a": [[], []]}"#),
            (r#"{"a": {"k": "v"}}"#, r#"{"a": {"kv": ""}}"#),
            (r#"{"a": null}"#, r#"{"a": false}"#),
            (r#"{"a": 0.1}"#, r#"{"a": 0.10000000000000002}"#),
        ];
        for (x, y) in pairs {
            assert_ne!(
                hash_input(Some(&value(x)), &InputReads::Whole),
                hash_input(Some(&value(y)), &InputReads::Whole),
                "{x} vs {y}"
            );
        }
    }
}
