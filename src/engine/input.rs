//! Turning a JSON input into the engine's value type, keeping only the parts
//! the policies read ([`super::reads`]): subtrees that are read come across
//! whole, objects on the way to them keep only the keys that lead there,
//! everything else is skipped by the parser and never allocated.
//!
//! Evaluating the pruned input gives the same answer as the whole one,
//! because every `input` reference of the entry point's rules lies inside a
//! read subtree (that is what the analysis guarantees, over-approximating
//! wherever it cannot tell).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::reads::ReadTree;
use super::Value;

/// The parts of the JSON document in `bytes` that `tree` selects.
pub fn read_parts(bytes: &[u8], tree: &ReadTree) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Pruned(tree).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The read parts of the `input` field of an OPA request body
/// (`{"input": …}`): `Ok(None)` when the body has no `input` key or it is
/// null. Other top-level keys are skipped.
pub fn read_input_field(bytes: &[u8], tree: &ReadTree) -> Result<Option<Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = deserializer.deserialize_map(InputField(tree))?;
    deserializer.end()?;
    Ok(value)
}

/// The body object, looking for its `input` key.
struct InputField<'t>(&'t ReadTree);

impl<'de> Visitor<'de> for InputField<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an \"input\" key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut input = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "input" {
                // `"input": null` is no input, as in OPA.
                input = Some(map.next_value_seed(Pruned(self.0))?)
                    .filter(|value| !matches!(value, Value::Null));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(input)
    }
}

/// A node: read whole when its tree says so, else only its listed children.
struct Pruned<'t>(&'t ReadTree);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            Value::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    // Where a read path continues below a value that is not an object, the
    // path is undefined whatever the value: it is kept as it is.
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // No static path segment selects into an array: nothing below is read.
        let mut count = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
        }
        Ok(Value::from(vec![Value::Null; count]))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.0.child(&key) {
                Some((_, child)) => {
                    let value = map.next_value_seed(Pruned(child))?;
                    fields.insert(Value::from(key), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::from(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reads::InputReads;
    use std::collections::BTreeSet;

    fn tree(paths: &[&str]) -> ReadTree {
        ReadTree::new(&InputReads::Paths(
            paths
                .iter()
                .map(|p| p.split('.').map(str::to_string).collect())
                .collect::<BTreeSet<_>>(),
        ))
    }

    fn parts(json: &str, paths: &[&str]) -> String {
        read_parts(json.as_bytes(), &tree(paths))
            .unwrap()
            .to_json_str()
            .unwrap()
    }

    #[test]
    fn only_the_read_parts_are_kept() {
        let json = r#"{"request": {"uid": "u", "object": {"metadata": {"name": "p", "managedFields": [1, 2]}, "spec": {"a": [1, {"b": 2}]}, "status": {"x": 1}}}}"#;
        let kept: serde_json::Value = serde_json::from_str(&parts(
            json,
            &["request.object.spec", "request.object.metadata.name"],
        ))
        .unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"request": {"object": {"metadata": {"name": "p"}, "spec": {"a": [1, {"b": 2}]}}}})
        );
    }

    #[test]
    fn the_input_field_of_a_body_is_pruned_and_its_absence_seen() {
        let t = tree(&["x"]);
        let input = read_input_field(br#"{"input": {"x": 1, "y": 2}, "other": [1]}"#, &t).unwrap();
        assert_eq!(input, Some(Value::from_json_str(r#"{"x": 1}"#).unwrap()));
        assert_eq!(read_input_field(br#"{"other": 1}"#, &t).unwrap(), None);
        assert_eq!(read_input_field(br#"{"input": null}"#, &t).unwrap(), None);
        assert!(read_input_field(br#"[1]"#, &t).is_err());
        assert!(read_input_field(br#"{"input": }"#, &t).is_err());
    }

    #[test]
    fn values_where_a_path_cannot_continue_are_kept() {
        let kept = parts(
            r#"{"a": "text", "b": null, "c": 3}"#,
            &["a.x", "b.y", "c.z"],
        );
        let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept, serde_json::json!({"a": "text", "b": null, "c": 3}));
        let whole = read_parts(br#"{"a": [1]}"#, &ReadTree::new(&InputReads::Whole)).unwrap();
        assert_eq!(whole, Value::from_json_str(r#"{"a": [1]}"#).unwrap());
    }
}
