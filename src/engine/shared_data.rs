//! Bundle data converted into engine values, reusing the values of the
//! revision being replaced wherever they are equal.
//!
//! A reload builds the new snapshot while the old one keeps serving, so
//! without sharing both copies of the data are resident at once, and a
//! bundle with 10 MB of JSON data (a few hundred MB as engine values) would
//! roughly double the process's memory on every reload. Engine values are
//! reference-counted and never mutated in place once shared, so an equal
//! subtree of the previous revision can be used as is: data that did not
//! change costs nothing, and data that changed costs only the changed
//! subtrees (and the objects on the path to them).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value as Json;

use super::Value;

/// `json` as an engine value, taking every subtree that equals the one at
/// the same place in `previous` from `previous`. An owned document is
/// consumed as it is converted, so its memory is freed part by part.
///
/// Objects are walked once: each field is converted against the previous
/// field, and an object all of whose fields came back as the previous ones
/// (and no more of them) is the previous object. Arrays and scalars are
/// compared whole.
pub fn convert(json: Cow<'_, Json>, previous: Option<&Value>) -> Result<Value, serde_json::Error> {
    let Some(previous) = previous else {
        return fresh(json);
    };
    let Value::Object(old_fields) = previous else {
        return Ok(if same(&json, previous) {
            previous.clone()
        } else {
            fresh(json)?
        });
    };
    let mut object = Value::new_object();
    let converted = object
        .as_object_mut()
        .map_err(|err| serde::de::Error::custom(err.to_string()))?;
    let mut all_reused = true;
    let mut add = |key: &str, value: Cow<'_, Json>| {
        let key = Value::from(key);
        let old = old_fields.get(&key);
        let child = convert(value, old)?;
        all_reused &= old.is_some_and(|old| reused(&child, old));
        converted.insert(key, child);
        Ok::<(), serde_json::Error>(())
    };
    let count = match json {
        Cow::Owned(Json::Object(fields)) => {
            let count = fields.len();
            for (key, value) in fields {
                add(&key, Cow::Owned(value))?;
            }
            count
        }
        Cow::Borrowed(Json::Object(fields)) => {
            for (key, value) in fields {
                add(key, Cow::Borrowed(value))?;
            }
            fields.len()
        }
        // Not an object where an object was: nothing below it to share.
        other => return fresh(other),
    };
    Ok(if all_reused && count == old_fields.len() {
        previous.clone()
    } else {
        object
    })
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

/// A document converted with nothing to share.
fn fresh(json: Cow<'_, Json>) -> Result<Value, serde_json::Error> {
    match json {
        Cow::Owned(json) => Value::deserialize(json),
        Cow::Borrowed(json) => Value::deserialize(json),
    }
}

/// Whether `json` and `value` are the same document as Rego compares them
/// (numbers by value, so `1` and `1.0` are the same; JSON has no sets, so
/// an engine set is never the same as anything JSON holds). Used where
/// nothing is shared below: arrays, scalars and the objects inside arrays.
fn same(json: &Json, value: &Value) -> bool {
    match (json, value) {
        (Json::Null, Value::Null) => true,
        (Json::Bool(a), Value::Bool(b)) => a == b,
        (Json::String(a), Value::String(b)) => a.as_str() == &**b,
        (Json::Number(_), Value::Number(_)) => {
            Value::deserialize(json).is_ok_and(|number| number == *value)
        }
        (Json::Array(items), Value::Array(values)) => {
            items.len() == values.len() && items.iter().zip(values.iter()).all(|(a, b)| same(a, b))
        }
        (Json::Object(fields), Value::Object(values)) => {
            fields.len() == values.len()
                && fields.iter().all(|(key, field)| {
                    values
                        .get(&Value::from(key.as_str()))
                        .is_some_and(|value| same(field, value))
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
