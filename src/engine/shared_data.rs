//! Bundle data converted into engine values, reusing the values of the
//! revision being replaced wherever they are equal.
//!
//! A reload builds the new snapshot while the old one keeps serving, so
//! without sharing both copies of the data are resident at once, and a
//! bundle with 10 MB of JSON data (about 45 MB as engine values) would
//! roughly double the data's memory on every reload. Engine values are
//! reference-counted and never mutated in place once shared, so an equal
//! subtree of the previous revision can be used as is: data that did not
//! change costs nothing, and data that changed costs only the changed
//! subtrees (and the objects on the path to them).
//!
//! `data.json` files are parsed straight into engine values
//! ([`parse_json`]), with no JSON tree in between (a JSON tree of 10 MB of
//! data is about 95 MB). YAML files and documents pushed through the API,
//! which arrive as JSON trees, are read by the same reader ([`convert`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use regorus::Rc;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::Value as Json;

use super::Value;

/// Parse JSON `text` straight into an engine value, taking every subtree
/// that equals the one at the same place in `previous` from `previous`.
///
/// No JSON tree is built on the way, so parsing a data file costs its
/// engine values and nothing more: a part equal to `previous` is dropped as
/// soon as it is read, and only changed parts stay. Object keys and short
/// strings are shared within the document (see [`StringTable`]), and objects
/// are stored compact.
pub fn parse_json(text: &str, previous: Option<&Value>) -> Result<Value, serde_json::Error> {
    parse(serde_json::Deserializer::from_str(text), previous)
}

/// [`parse_json`], reading the text from `reader` as it goes, so that it
/// is never held whole (give it a buffered reader).
pub fn parse_json_from(
    reader: impl std::io::Read,
    previous: Option<&Value>,
) -> Result<Value, serde_json::Error> {
    parse(serde_json::Deserializer::from_reader(reader), previous)
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    mut parser: serde_json::Deserializer<R>,
    previous: Option<&Value>,
) -> Result<Value, serde_json::Error> {
    let mut strings = StringTable::default();
    let value = Sharing {
        previous,
        strings: &mut strings,
    }
    .deserialize(&mut parser)?;
    parser.end()?;
    Ok(value)
}

/// The distinct short strings of one parse, keys and values, so that a
/// string repeated throughout a document (a schema's field names, a role
/// such as `"member"`, an environment class) is one allocation. Bounded:
/// once it holds [`StringTable::CAPACITY`] strings, strings that are new to
/// it (by then mostly names that occur once, such as member or team names)
/// are not added, so the table stays small while a large document is read.
#[derive(Default)]
struct StringTable {
    strings: HashSet<Rc<str>>,
}

impl StringTable {
    const CAPACITY: usize = 4096;
    /// Longer strings are seldom repeated whole; they are not looked up.
    const LONGEST: usize = 64;

    fn get(&mut self, text: &str) -> Rc<str> {
        if text.len() > Self::LONGEST {
            return Rc::from(text);
        }
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let string: Rc<str> = Rc::from(text);
        if self.strings.len() < Self::CAPACITY {
            self.strings.insert(string.clone());
        }
        string
    }
}

/// Reads an object key straight into a shared string, with no copy of its
/// own first (a reader hands keys over in a scratch buffer).
struct Key<'t>(&'t mut StringTable);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Value, E> {
        Ok(Value::String(self.0.get(key)))
    }
}

/// Reads one JSON value into an engine value, sharing with `previous`.
struct Sharing<'p, 't> {
    previous: Option<&'p Value>,
    strings: &'t mut StringTable,
}

impl Sharing<'_, '_> {
    /// `value`, or `previous` when they are equal (as Rego compares
    /// numbers: `1` and `1.0` are the same), for numbers.
    fn scalar(self, value: Value) -> Value {
        match self.previous {
            Some(previous) if *previous == value => previous.clone(),
            _ => value,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Sharing<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Sharing<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(self.scalar(Value::from(value)))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(self.scalar(Value::from(value)))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Value, E> {
        if !value.is_finite() {
            return Err(E::custom(format!("invalid non-finite number {value}")));
        }
        Ok(self.scalar(Value::from(value)))
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(match self.previous {
            Some(previous @ Value::String(old)) if **old == *value => previous.clone(),
            _ => Value::String(self.strings.get(value)),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let old_items = match self.previous {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        };
        let mut values = Vec::with_capacity(items.size_hint().unwrap_or(0));
        let mut all_reused = old_items.is_some();
        loop {
            let old = old_items.and_then(|old| old.get(values.len()));
            let seed = Sharing {
                previous: old,
                strings: &mut *self.strings,
            };
            let Some(value) = items.next_element_seed(seed)? else {
                break;
            };
            all_reused &= old.is_some_and(|old| reused(&value, old));
            values.push(value);
        }
        Ok(match (self.previous, old_items) {
            (Some(previous), Some(old)) if all_reused && old.len() == values.len() => {
                previous.clone()
            }
            _ => Value::from(values),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Value, A::Error> {
        let old_fields = match self.previous {
            Some(Value::Object(fields)) => Some(fields),
            _ => None,
        };
        let mut object = BTreeMap::new();
        let mut all_reused = old_fields.is_some();
        while let Some(key) = fields.next_key_seed(Key(&mut *self.strings))? {
            let old = old_fields.and_then(|old| old.get(&key));
            let value = fields.next_value_seed(Sharing {
                previous: old,
                strings: &mut *self.strings,
            })?;
            all_reused &= old.is_some_and(|old| reused(&value, old));
            object.insert(key, value);
        }
        // Every key was in the previous object with its value reused, and
        // there are as many: the same object (a repeated key counts once).
        Ok(match (self.previous, old_fields) {
            (Some(previous), Some(old)) if all_reused && old.len() == object.len() => {
                previous.clone()
            }
            _ => Value::from(object),
        })
    }
}

/// `json` (a YAML file's or a pushed document's tree) as an engine value,
/// read by the same sharing reader as [`parse_json`]: a JSON tree is a
/// serde deserializer of its own. An owned document is consumed as it is
/// read, so its memory is freed part by part.
pub fn convert(json: Cow<'_, Json>, previous: Option<&Value>) -> Result<Value, serde_json::Error> {
    let mut strings = StringTable::default();
    let reader = Sharing {
        previous,
        strings: &mut strings,
    };
    match json {
        Cow::Owned(json) => reader.deserialize(json),
        Cow::Borrowed(json) => reader.deserialize(json),
    }
}

/// Whether `value` is `previous` itself: the same allocation for the
/// reference-counted kinds, an equal value for the rest (they are copies
/// whatever happens).
pub(crate) fn reused(value: &Value, previous: &Value) -> bool {
    match (value, previous) {
        (Value::Object(a), Value::Object(b)) => regorus::Rc::ptr_eq(a, b),
        (Value::Array(a), Value::Array(b)) => regorus::Rc::ptr_eq(a, b),
        (Value::Set(a), Value::Set(b)) => regorus::Rc::ptr_eq(a, b),
        (Value::String(a), Value::String(b)) => regorus::Rc::ptr_eq(a, b),
        (Value::Null, Value::Null) => true,
        (Value::Bool(_) | Value::Number(_), _) => value == previous,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// The test document, with the payments team's cpu quota as given.
    fn document(payments_cpu: u32) -> Json {
        json!({
            "teams": {
                "payments": {"members": {"ana": "lead"}, "quota": {"cpu": payments_cpu}},
                "search": {"members": {"bo": "member"}, "quota": {"cpu": 32}}
            },
            "classes": ["dev", "prod"],
            "flag": true
        })
    }

    fn old() -> Value {
        convert(Cow::Owned(document(64)), None).unwrap()
    }

    #[test]
    fn unchanged_data_is_the_previous_value_itself() {
        let old = old();
        let again = document(64);
        let new = convert(Cow::Borrowed(&again), Some(&old)).unwrap();
        assert_eq!(new, old);
        assert!(reused(&new, &old));
    }

    #[test]
    fn a_change_copies_only_its_path_and_shares_the_rest() {
        let old = old();
        let changed = document(128);
        let new = convert(Cow::Owned(changed.clone()), Some(&old)).unwrap();
        assert_eq!(new, Value::deserialize(&changed).unwrap());
        assert!(!reused(&new, &old));
        assert!(!reused(
            &new["teams"]["payments"]["quota"],
            &old["teams"]["payments"]["quota"]
        ));
        assert!(reused(
            &new["teams"]["payments"]["members"],
            &old["teams"]["payments"]["members"]
        ));
        assert!(reused(&new["teams"]["search"], &old["teams"]["search"]));
        assert!(reused(&new["classes"], &old["classes"]));
    }

    #[test]
    fn added_removed_and_retyped_fields_are_converted_afresh() {
        let old = old();
        for changed in [
            json!({"teams": {}, "classes": ["dev", "prod"], "flag": true, "extra": 1}),
            json!({"classes": ["dev"], "flag": "true"}),
            json!({"teams": [1, 2], "classes": {"dev": 1}, "flag": null}),
            json!([1, 2, 3]),
            json!({"classes": ["dev", "prod", "staging"], "flag": 1.5}),
        ] {
            let expected = Value::deserialize(&changed).unwrap();
            let borrowed = convert(Cow::Borrowed(&changed), Some(&old)).unwrap();
            assert_eq!(borrowed, expected, "{changed}");
            let owned = convert(Cow::Owned(changed.clone()), Some(&old)).unwrap();
            assert_eq!(owned, expected, "{changed}");
        }
    }

    /// `text` parsed as the engine itself parses JSON.
    fn engine_parse(text: &str) -> Value {
        Value::from_json_str(text).unwrap()
    }

    #[test]
    fn parsing_reads_what_the_engine_reads() {
        for text in [
            r#"{"a": 1, "b": [true, false, null], "c": {"d": "e"}}"#,
            r#"[1, -2, 2.5, 1e3, 18446744073709551615, -9223372036854775808, 0.1]"#,
            r#"{"esc\"aped": "t\u00e9xt\n", "": "", "unicode": "hé"}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"  "just a string"  "#,
            "{}",
            "[]",
            "null",
            "123456789012345678901234567890",
        ] {
            assert_eq!(
                parse_json(text, None).unwrap(),
                engine_parse(text),
                "{text}"
            );
            let from_reader = parse_json_from(text.as_bytes(), None).unwrap();
            assert_eq!(from_reader, engine_parse(text), "{text}");
        }
    }

    #[test]
    fn malformed_text_is_an_error_with_its_position() {
        for text in ["{\n  \"a\": [1,\n  2 }", "{\"a\": 1} trailing", "[1, 2,]"] {
            let err = parse_json(text, None).unwrap_err();
            let expected = serde_json::from_str::<Json>(text).unwrap_err();
            assert_eq!(
                (err.line(), err.column()),
                (expected.line(), expected.column())
            );
            let err = parse_json_from(text.as_bytes(), None).unwrap_err();
            assert_eq!(
                (err.line(), err.column()),
                (expected.line(), expected.column())
            );
            assert!(err.line() > 0 && err.column() > 0, "{err}");
        }
        let err = parse_json("{\n  \"a\": [1,\n  2 }", None).unwrap_err();
        assert_eq!((err.line(), err.column()), (3, 5), "{err}");
        assert!(
            parse_json(&"[".repeat(200), None).is_err(),
            "nesting is bounded"
        );
    }

    #[test]
    fn parsing_unchanged_text_gives_the_previous_value_itself() {
        let text = document(64).to_string();
        let old = parse_json(&text, None).unwrap();
        let new = parse_json(&text, Some(&old)).unwrap();
        assert!(reused(&new, &old));
        let new = parse_json_from(text.as_bytes(), Some(&old)).unwrap();
        assert!(reused(&new, &old));
        // Whitespace and key order are not the document.
        let reordered = r#"{ "flag": true, "classes": ["dev", "prod"],
            "teams": {"search": {"quota": {"cpu": 32}, "members": {"bo": "member"}},
                      "payments": {"members": {"ana": "lead"}, "quota": {"cpu": 64}}}}"#;
        assert!(reused(&parse_json(reordered, Some(&old)).unwrap(), &old));
    }

    #[test]
    fn parsing_a_change_copies_only_its_path_and_shares_the_rest() {
        let old = parse_json(&document(64).to_string(), None).unwrap();
        let changed = document(128).to_string();
        let new = parse_json(&changed, Some(&old)).unwrap();
        assert_eq!(new, engine_parse(&changed));
        assert!(!reused(&new, &old));
        let from_reader = parse_json_from(changed.as_bytes(), Some(&old)).unwrap();
        assert!(reused(
            &from_reader["teams"]["search"],
            &old["teams"]["search"]
        ));
        let payments = |v: &Value| v["teams"]["payments"].clone();
        assert!(!reused(&payments(&new)["quota"], &payments(&old)["quota"]));
        assert!(reused(
            &payments(&new)["members"],
            &payments(&old)["members"]
        ));
        assert!(reused(&new["teams"]["search"], &old["teams"]["search"]));
        assert!(reused(&new["classes"], &old["classes"]));
    }

    #[test]
    fn parsing_added_removed_retyped_and_repeated_fields_is_exact() {
        let old = parse_json(&document(64).to_string(), None).unwrap();
        for changed in [
            r#"{"teams": {}, "classes": ["dev", "prod"], "flag": true, "extra": 1}"#,
            r#"{"classes": ["dev"], "flag": "true"}"#,
            r#"{"teams": [1, 2], "classes": {"dev": 1}, "flag": null}"#,
            "[1, 2, 3]",
            r#"{"classes": ["dev", "prod", "staging"], "flag": 1.5}"#,
            r#"{"classes": ["dev", "prod"], "classes": ["dev", "prod"], "flag": true}"#,
            r#"{"flag": false, "flag": true, "classes": ["dev", "prod"], "teams": 1}"#,
        ] {
            let new = parse_json(changed, Some(&old)).unwrap();
            assert_eq!(new, engine_parse(changed), "{changed}");
            assert!(!reused(&new, &old), "{changed}");
        }
    }

    #[test]
    fn repeated_strings_are_one_allocation_and_many_strings_still_parse() {
        let long = "x".repeat(StringTable::LONGEST + 1);
        let text = format!(r#"[{{"role": "dev"}}, {{"role": "dev"}}, "dev", "{long}", "{long}"]"#);
        let value = parse_json(&text, None).unwrap();
        assert_eq!(value, engine_parse(&text));
        let key = |item: &Value| match item {
            Value::Object(fields) => fields.iter().next().unwrap().0.clone(),
            other => panic!("not an object: {other}"),
        };
        assert!(reused(&key(&value[0]), &key(&value[1])));
        assert!(reused(&value[0]["role"], &value[1]["role"]));
        assert!(reused(&value[0]["role"], &value[2]));
        assert!(
            !reused(&value[3], &value[4]),
            "long strings are not looked up"
        );
        // More distinct keys than the table keeps: every one is still read.
        let many: serde_json::Map<String, Json> = (0..StringTable::CAPACITY + 100)
            .map(|i| (format!("key-{i}"), Json::from(i)))
            .collect();
        let text = Json::Object(many).to_string();
        assert_eq!(parse_json(&text, None).unwrap(), engine_parse(&text));
    }

    #[test]
    fn numbers_compare_by_value() {
        let numbers = |a: i64| json!({"a": a, "b": 2.5, "c": 18446744073709551615u64});
        let old = convert(Cow::Owned(numbers(1)), None).unwrap();
        let new = convert(Cow::Owned(numbers(1)), Some(&old)).unwrap();
        assert!(reused(&new, &old));
        let new = convert(Cow::Owned(numbers(2)), Some(&old)).unwrap();
        assert_eq!(new["a"], Value::from(2));
        assert!(!reused(&new, &old));
    }
}
