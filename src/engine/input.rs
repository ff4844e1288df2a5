//! Turning a JSON input into the engine's value type, keeping only the parts
//! the policies read ([`super::reads`]): subtrees that are read come across
//! whole, objects on the way to them keep only the keys that lead there,
//! everything else is skipped by the parser and never allocated.
//!
//! Evaluating the pruned input gives the same answer as the whole one,
//! because every `input` reference of the entry point's rules lies inside a
//! read subtree (that is what the analysis guarantees, over-approximating
//! wherever it cannot tell).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

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

/// The `input` member of a request body, as [`read_input_member`] found
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMember {
    /// Its read parts; `None` when the body has no `input` key or it is
    /// null.
    pub value: Option<Value>,
    /// Where its JSON text is in the body, when the parse could tell (the
    /// keys around it were read without unescaping); `None` otherwise and
    /// when there is no input.
    pub text: Option<Range<usize>>,
}

/// The read parts of the `input` field of an OPA request body
/// (`{"input": …}`; other top-level keys are skipped) and where its text
/// is. The position costs no second pass: it comes from where
/// the parser found the keys, checked against the punctuation around them.
pub fn read_input_member(bytes: &[u8], tree: &ReadTree) -> Result<InputMember, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let (value, located) = deserializer.deserialize_map(InputField { tree, body: bytes })?;
    deserializer.end()?;
    let text = match located {
        _ if value.is_none() => None,
        Located::Span(span) => Some(span),
        // The last member ends before the body's closing brace.
        Located::From(start) => {
            let close = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
            close
                .filter(|&at| bytes[at] == b'}')
                .map(|at| trim_end(bytes, at))
                .filter(|&end| end > start)
                .map(|end| start..end)
        }
        Located::Nowhere => None,
    };
    Ok(InputMember { value, text })
}

/// Where the `input` member's text is, as far as the keys tell.
enum Located {
    /// Unknown.
    Nowhere,
    /// It starts here and runs to the next key, which has not come yet.
    From(usize),
    /// Here.
    Span(Range<usize>),
}

/// The end of the text before `at`, without the whitespace before it.
fn trim_end(bytes: &[u8], mut at: usize) -> usize {
    while at > 0 && bytes[at - 1].is_ascii_whitespace() {
        at -= 1;
    }
    at
}

/// The body object, looking for its `input` key.
struct InputField<'t, 'b> {
    tree: &'t ReadTree,
    body: &'b [u8],
}

impl InputField<'_, '_> {
    /// Where a key the parser handed over without copying (so a slice of
    /// the body) starts.
    fn offset_of(&self, key: &KeyText<'_>) -> Option<usize> {
        let Cow::Borrowed(key) = &key.0 else {
            return None;
        };
        let offset = (key.as_ptr() as usize).checked_sub(self.body.as_ptr() as usize)?;
        (offset + key.len() <= self.body.len()).then_some(offset)
    }

    /// Where the value of the key at `key_at` (`len` bytes) starts: past
    /// its closing quote, the colon and whitespace.
    fn value_start(&self, key_at: usize, len: usize) -> Option<usize> {
        let mut at = key_at + len;
        (*self.body.get(at)? == b'"').then_some(())?;
        at += 1;
        while self.body.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        (*self.body.get(at)? == b':').then_some(())?;
        at += 1;
        while self.body.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        Some(at)
    }

    /// Where the value before the key at `key_at` ends: before its opening
    /// quote, the comma and whitespace.
    fn end_before_key(&self, key_at: usize) -> Option<usize> {
        let quote = key_at.checked_sub(1)?;
        (self.body[quote] == b'"').then_some(())?;
        let comma = trim_end(self.body, quote).checked_sub(1)?;
        (self.body[comma] == b',').then_some(())?;
        Some(trim_end(self.body, comma))
    }
}

/// An object key, borrowed from the body when it has no escapes (serde's
/// own `Cow<str>` always copies).
pub(crate) struct KeyText<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<KeyText<'de>, E> {
                Ok(KeyText(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for InputField<'_, '_> {
    type Value = (Option<Value>, Located);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an \"input\" key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut input = None;
        let mut located = Located::Nowhere;
        while let Some(key) = map.next_key::<KeyText<'de>>()? {
            let key_at = self.offset_of(&key);
            if let Located::From(start) = located {
                located = key_at
                    .and_then(|at| self.end_before_key(at))
                    .filter(|&end| end > start)
                    .map_or(Located::Nowhere, |end| Located::Span(start..end));
            }
            if key.0 == "input" {
                // `"input": null` is no input, as in OPA.
                input = Some(map.next_value_seed(Pruned(self.tree))?)
                    .filter(|value| !matches!(value, Value::Null));
                located = key_at
                    .and_then(|at| self.value_start(at, key.0.len()))
                    .map_or(Located::Nowhere, Located::From);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((input, located))
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
        let read_input_field = |body: &[u8]| read_input_member(body, &t).map(|m| m.value);
        let input = read_input_field(br#"{"input": {"x": 1, "y": 2}, "other": [1]}"#).unwrap();
        assert_eq!(input, Some(Value::from_json_str(r#"{"x": 1}"#).unwrap()));
        assert_eq!(read_input_field(br#"{"other": 1}"#).unwrap(), None);
        assert_eq!(read_input_field(br#"{"input": null}"#).unwrap(), None);
        assert!(read_input_field(br#"[1]"#).is_err());
        assert!(read_input_field(br#"{"input": }"#).is_err());
    }

    /// The text `read_input_member` says the input is, or `None`.
    fn located(body: &str) -> Option<&str> {
        let member = read_input_member(body.as_bytes(), &tree(&["x"])).unwrap();
        member.text.map(|span| &body[span])
    }

    #[test]
    fn the_input_text_is_located_wherever_it_is() {
        assert_eq!(located(r#"{"input": {"x": 1}}"#), Some(r#"{"x": 1}"#));
        assert_eq!(
            located(
                " {\n \"a\": [1, \"input\"] ,\n \"input\" :\t[1, {\"y\": \"}\"}] \n, \"z\": {} }\n"
            ),
            Some(r#"[1, {"y": "}"}]"#)
        );
        assert_eq!(located(r#"{"input":"s","b":1}"#), Some(r#""s""#));
        assert_eq!(located(r#"{"b":1,"input":  -2.5e1  }"#), Some("-2.5e1"));
        assert_eq!(
            located(r#"{"input": 1, "input": {"x": 2}}"#),
            Some(r#"{"x": 2}"#),
            "the last input counts, as for the value"
        );
    }

    #[test]
    fn the_input_text_is_located_under_any_layout() {
        // Bodies with the input first, between or last among other
        // members, with whitespace of every JSON kind between every token
        // (a fixed pseudo-random sequence, so failures repeat).
        let inputs = [
            r#"{"x": 1, "s": "a,\"}\" :", "n": [true, null, {"k": []}]}"#,
            r#"[1, "input", {"input": 2}]"#,
            r#""text with \u0022 escapes""#,
            "-12.5e-3",
            "false",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut space = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            [" ", "", "\n", "\t", "\r\n ", ""][(state >> 33) as usize % 6]
        };
        for input in inputs {
            for position in 0..3 {
                for _ in 0..20 {
                    let mut members = vec![
                        format!("\"a\"{}:{}[1,{}2]", space(), space(), space()),
                        format!("\"b\"{}:{}{{\"input\":{}0}}", space(), space(), space()),
                    ];
                    members.insert(position, format!("\"input\"{}:{}{input}", space(), space()));
                    let separator = format!("{},{}", space(), space());
                    let body = format!(
                        "{}{{{}{}{}}}{}",
                        space(),
                        space(),
                        members.join(&separator),
                        space(),
                        space()
                    );
                    let member = read_input_member(body.as_bytes(), &tree(&["x"])).unwrap();
                    let text = &body[member.text.clone().expect("located")];
                    assert_eq!(text, input, "in {body:?}");
                }
            }
        }
    }

    #[test]
    fn the_input_text_is_not_guessed() {
        // No input, or null input: nothing to locate.
        assert_eq!(located(r#"{"b": 1}"#), None);
        assert_eq!(located(r#"{"input": null, "b": 1}"#), None);
        // An escaped key is unescaped by the parser: its place is unknown.
        assert_eq!(located(r#"{"\u0069nput": {"x": 1}}"#), None);
        assert_eq!(located(r#"{"input": {"x": 1}, "\u0062": 2}"#), None);
        // The value is still read in each case.
        let member = read_input_member(br#"{"\u0069nput": {"x": 1}}"#, &tree(&["x"])).unwrap();
        assert_eq!(
            member.value,
            Some(Value::from_json_str(r#"{"x": 1}"#).unwrap())
        );
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
