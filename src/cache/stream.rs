//! Cache keys straight from request bytes: a canonical 128-bit hash of the
//! parts of a JSON document a policy reads, computed while scanning the
//! bytes, without building engine values. A cache hit then costs one scan of
//! the body instead of converting it (the admission webhook's hot path).
//!
//! Canonical as in [`super::key`]: object keys in any order, numbers by
//! value (`1`, `1.0` and `1e0` are one number). Where a read path stops
//! early (a missing key, a value that is not an object) the kind of value
//! found is hashed, so inputs that differ in why a path is undefined get
//! different keys. A document with a repeated object key in a read part is
//! not hashed at all (which of the two values wins is the parser's choice,
//! so it is never cached).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use xxhash_rust::xxh3::{xxh3_128_with_seed, Xxh3};

use crate::engine::input::KeyText;
#[cfg(test)]
use crate::engine::reads::InputReads;
use crate::engine::reads::ReadTree;

/// Fields to take out of a document while it is scanned: string values at
/// fixed paths (an AdmissionReview's uid and kind, say), each into a slot.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    slot: Option<usize>,
    /// Sorted by key.
    children: Vec<(String, Captures)>,
    slots: usize,
}

impl Captures {
    /// Capture the string at each path, into the slot of its position.
    pub fn new(paths: &[&[&str]]) -> Captures {
        let mut root = Captures {
            slots: paths.len(),
            ..Captures::default()
        };
        for (slot, path) in paths.iter().enumerate() {
            let mut node = &mut root;
            for segment in *path {
                let at = match node
                    .children
                    .binary_search_by(|(k, _)| k.as_str().cmp(segment))
                {
                    Ok(at) => at,
                    Err(at) => {
                        node.children
                            .insert(at, (segment.to_string(), Captures::default()));
                        at
                    }
                };
                node = &mut node.children[at].1;
            }
            node.slot = Some(slot);
        }
        root
    }

    fn child(&self, key: &str) -> Option<&Captures> {
        self.children
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| &self.children[at].1)
    }
}

/// What one scan found.
#[derive(Debug)]
pub struct Scan {
    /// The hash of the read parts; `None` when a read part repeats an
    /// object key, or when nothing was to be hashed.
    pub hash: Option<u128>,
    /// The captured strings, by slot (`None`: absent or not a string).
    pub captured: Vec<Option<String>>,
}

/// Scan the JSON document in `bytes` once: hash what `tree` selects (when
/// given) and take out what `captures` names.
pub fn scan(
    bytes: &[u8],
    tree: Option<&ReadTree>,
    captures: &Captures,
) -> Result<Scan, serde_json::Error> {
    let state = ScanState {
        duplicate: Cell::new(false),
        captured: std::cell::RefCell::new(vec![None; captures.slots]),
    };
    let read = match tree {
        None => Read::Ignore,
        Some(t) if t.whole => Read::Whole,
        Some(t) => Read::Partial(t),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let hash = Node {
        read,
        capture: Some(captures),
        state: &state,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(Scan {
        hash: (tree.is_some() && !state.duplicate.get()).then_some(hash),
        captured: state.captured.into_inner(),
    })
}

/// Hash what `tree` selects of the JSON document in `bytes`. `Ok(None)` when
/// a read part repeats an object key.
pub fn hash_json(bytes: &[u8], tree: &ReadTree) -> Result<Option<u128>, serde_json::Error> {
    Ok(scan(bytes, Some(tree), &Captures::default())?.hash)
}

// Seeds keep kinds apart: a string "1" never hashes like the number 1.
const NULL: u64 = 1;
const BOOL: u64 = 2;
const INTEGER: u64 = 3;
const FLOAT: u64 = 4;
const STRING: u64 = 5;
const ARRAY: u64 = 6;
const OBJECT: u64 = 7;
const KEY: u64 = 8;
const SELECTED: u64 = 9;
const ABSENT: u64 = 10;

fn scalar(kind: u64, bytes: &[u8]) -> u128 {
    xxh3_128_with_seed(bytes, kind)
}

struct ScanState {
    duplicate: Cell<bool>,
    captured: std::cell::RefCell<Vec<Option<String>>>,
}

/// How a node counts in the hash.
#[derive(Clone, Copy)]
enum Read<'t> {
    /// Not at all (visited only for captures).
    Ignore,
    /// All of it.
    Whole,
    /// Only the listed children.
    Partial(&'t ReadTree),
}

/// A node of the document being scanned.
#[derive(Clone, Copy)]
struct Node<'t> {
    read: Read<'t>,
    capture: Option<&'t Captures>,
    state: &'t ScanState,
}

impl Node<'_> {
    /// The hash of a scalar of `kind` whose canonical bytes are `bytes`.
    fn scalar(&self, kind: u64, bytes: &[u8]) -> u128 {
        match self.read {
            Read::Whole => scalar(kind, bytes),
            // A read path continues below a value that is not an object.
            Read::Partial(_) => scalar(SELECTED, &kind.to_le_bytes()),
            Read::Ignore => 0,
        }
    }

    fn integer(&self, value: i128) -> u128 {
        self.scalar(INTEGER, &value.to_le_bytes())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = u128;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u128, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = u128;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<u128, E> {
        Ok(self.scalar(NULL, &[]))
    }

    fn visit_bool<E>(self, v: bool) -> Result<u128, E> {
        Ok(self.scalar(BOOL, &[u8::from(v)]))
    }

    fn visit_i64<E>(self, v: i64) -> Result<u128, E> {
        Ok(self.integer(i128::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<u128, E> {
        Ok(self.integer(i128::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<u128, E> {
        // Whole numbers hash as integers, whatever their spelling.
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e38 {
            return Ok(self.integer(v as i128));
        }
        Ok(self.scalar(FLOAT, &v.to_bits().to_le_bytes()))
    }

    fn visit_str<E>(self, v: &str) -> Result<u128, E> {
        if let Some(slot) = self.capture.and_then(|c| c.slot) {
            self.state.captured.borrow_mut()[slot] = Some(v.to_string());
        }
        Ok(self.scalar(STRING, v.as_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u128, A::Error> {
        if !matches!(self.read, Read::Whole) {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(self.scalar(ARRAY, &[]));
        }
        let item_node = Node {
            capture: None,
            ..self
        };
        let mut hasher = Xxh3::with_seed(ARRAY);
        let mut count = 0u64;
        while let Some(item) = seq.next_element_seed(item_node)? {
            hasher.update(&item.to_le_bytes());
            count += 1;
        }
        hasher.update(&count.to_le_bytes());
        Ok(hasher.digest128())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u128, A::Error> {
        match self.read {
            Read::Whole => {
                // Order-independent: entries sorted by their key's hash.
                let mut entries: Vec<(u128, u128)> = Vec::new();
                while let Some(key) = map.next_key::<KeyText<'de>>()? {
                    let node = Node {
                        capture: self.capture.and_then(|c| c.child(&key.0)),
                        ..self
                    };
                    let value = map.next_value_seed(node)?;
                    entries.push((scalar(KEY, key.0.as_bytes()), value));
                }
                entries.sort_unstable();
                if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                    self.state.duplicate.set(true);
                }
                let mut hasher = Xxh3::with_seed(OBJECT);
                for (key, value) in &entries {
                    hasher.update(&key.to_le_bytes());
                    hasher.update(&value.to_le_bytes());
                }
                hasher.update(&(entries.len() as u64).to_le_bytes());
                Ok(hasher.digest128())
            }
            Read::Partial(_) | Read::Ignore => {
                let tree = match self.read {
                    Read::Partial(tree) => Some(tree),
                    _ => None,
                };
                let slots = tree.map_or(0, |t| t.children.len());
                let mut selected: Vec<Option<u128>> = vec![None; slots];
                while let Some(key) = map.next_key::<KeyText<'de>>()? {
                    let read_child = tree.and_then(|t| t.child(&key.0));
                    let capture = self.capture.and_then(|c| c.child(&key.0));
                    if read_child.is_none() && capture.is_none() {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let read = match read_child {
                        None => Read::Ignore,
                        Some((_, child)) if child.whole => Read::Whole,
                        Some((_, child)) => Read::Partial(child),
                    };
                    let value = map.next_value_seed(Node {
                        read,
                        capture,
                        state: self.state,
                    })?;
                    if let Some((at, _)) = read_child {
                        if selected[at].replace(value).is_some() {
                            self.state.duplicate.set(true);
                        }
                    }
                }
                if tree.is_none() {
                    return Ok(0);
                }
                let mut hasher = Xxh3::with_seed(SELECTED);
                for value in selected {
                    let value = value.unwrap_or_else(|| scalar(ABSENT, &[]));
                    hasher.update(&value.to_le_bytes());
                }
                Ok(hasher.digest128())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn tree(paths: &[&str]) -> ReadTree {
        ReadTree::new(&InputReads::Paths(
            paths
                .iter()
                .map(|p| p.split('.').map(str::to_string).collect())
                .collect::<BTreeSet<_>>(),
        ))
    }

    fn whole() -> ReadTree {
        ReadTree::new(&InputReads::Whole)
    }

    fn hash(json: &str, tree: &ReadTree) -> Option<u128> {
        hash_json(json.as_bytes(), tree).unwrap()
    }

    #[test]
    fn order_and_number_spelling_do_not_matter() {
        let a = r#"{"b": 1, "a": {"y": [1.0, 2], "x": "s\u0041"}}"#;
        let b = r#"{"a": {"x": "sA", "y": [1, 2.0e0]}, "b": 1.00}"#;
        assert_eq!(hash(a, &whole()), hash(b, &whole()));
        assert_ne!(
            hash(a, &whole()),
            hash(r#"{"a": {"x": "sA", "y": [2, 1]}, "b": 1}"#, &whole())
        );
    }

    #[test]
    fn only_the_read_parts_count() {
        let t = tree(&["request.object.spec", "request.kind"]);
        let a = r#"{"request": {"uid": "1", "kind": "Pod", "object": {"spec": {"x": 1}, "status": 1}}}"#;
        let b = r#"{"request": {"object": {"status": 2, "spec": {"x": 1.0}}, "kind": "Pod", "uid": "2"}}"#;
        let c = r#"{"request": {"uid": "1", "kind": "Pod", "object": {"spec": {"x": 2}, "status": 1}}}"#;
        assert_eq!(hash(a, &t), hash(b, &t));
        assert_ne!(hash(a, &t), hash(c, &t));
    }

    #[test]
    fn why_a_path_is_undefined_is_part_of_the_key() {
        let t = tree(&["a.b"]);
        let keys: Vec<Option<u128>> = [
            "{}",
            r#"{"a": null}"#,
            r#"{"a": {}}"#,
            r#"{"a": "text"}"#,
            r#"{"a": 1}"#,
            r#"{"a": [1]}"#,
            r#"{"a": {"b": null}}"#,
            r#"{"a": {"b": {}}}"#,
            r#"{"a": {"b": []}}"#,
        ]
        .iter()
        .map(|json| hash(json, &t))
        .collect();
        let distinct: BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
    }

    #[test]
    fn look_alikes_hash_apart() {
        let pairs = [
            (r#"{"a": "1"}"#, r#"{"a": 1}"#),
            (r#"{"a": ["ab", "c"]}"#, r#"{"a": ["a", "bc"]}"#),
            (r#"{"a": [[]]}"#, r#"{"a": [[], []]}"#),
            (r#"{"a": {"k": "v"}}"#, r#"{"a": {"kv": ""}}"#),
            (r#"{"a": null}"#, r#"{"a": false}"#),
            (r#"{"a": 0.5}"#, r#"{"a": 0.25}"#),
            (r#"{"a": {}}"#, r#"{"a": []}"#),
            (r#"{"a": 1, "b": 2}"#, r#"{"a": 2, "b": 1}"#),
        ];
        for (x, y) in pairs {
            assert_ne!(hash(x, &whole()), hash(y, &whole()), "{x} vs {y}");
        }
    }

    #[test]
    fn repeated_keys_in_read_parts_are_not_hashed() {
        assert_eq!(hash(r#"{"a": 1, "a": 2}"#, &whole()), None);
        let t = tree(&["a"]);
        assert_eq!(hash(r#"{"a": 1, "a": 2}"#, &t), None);
        assert!(hash(r#"{"a": 1, "z": 1, "z": 2}"#, &t).is_some(), "unread");
    }

    #[test]
    fn captures_come_out_of_the_same_scan_without_touching_the_hash() {
        let captures =
            Captures::new(&[&["request", "uid"], &["request", "kind", "kind"], &["kind"]]);
        let t = tree(&["request.kind"]);
        let a = r#"{"kind": "AdmissionReview", "request": {"uid": "u-1", "kind": {"kind": "Pod"}, "x": 1}}"#;
        let b = r#"{"kind": "AdmissionReview", "request": {"uid": "u-2", "kind": {"kind": "Pod"}, "x": 2}}"#;
        let first = scan(a.as_bytes(), Some(&t), &captures).unwrap();
        let second = scan(b.as_bytes(), Some(&t), &captures).unwrap();
        assert_eq!(
            first.captured,
            [
                Some("u-1".into()),
                Some("Pod".into()),
                Some("AdmissionReview".into())
            ]
        );
        assert_eq!(second.captured[0].as_deref(), Some("u-2"));
        assert_eq!(first.hash, second.hash, "the uid is captured, not hashed");
        assert!(first.hash.is_some());
        let none = scan(a.as_bytes(), None, &captures).unwrap();
        assert_eq!(none.hash, None);
        assert_eq!(none.captured, first.captured);
        let wrong_type = scan(br#"{"request": {"uid": 7}}"#, None, &captures).unwrap();
        assert_eq!(wrong_type.captured[0], None);
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(hash_json(b"{\"a\": tru}", &whole()).is_err());
        assert!(hash_json(b"{} x", &whole()).is_err());
    }
}
