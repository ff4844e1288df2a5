//! String builtins with Go's semantics: per-character case mapping
//! (`strings.ToUpper`), counts in characters, and `net/url`'s query
//! decoding, which fails on a malformed escape.

use anyhow::{bail, Result};
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

use super::{string_arg, type_name};

/// Go's `unicode.ToUpper` of every character: one character for one (the
/// simple mapping), so `ß` and `ﬁ` stay as they are.
pub fn upper(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let s = string_arg("upper", &args[0], 1)?;
    Ok(Value::from(s.chars().map(simple_upper).collect::<String>()))
}

/// Go's `unicode.ToLower` of every character: `Σ` is `σ` wherever it is
/// (no final form), and `İ` is `i`.
pub fn lower(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let s = string_arg("lower", &args[0], 1)?;
    Ok(Value::from(s.chars().map(simple_lower).collect::<String>()))
}

fn simple_upper(c: char) -> char {
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        // A special casing (ß → SS): Go's simple mapping keeps the
        // character.
        _ => c,
    }
}

fn simple_lower(c: char) -> char {
    if c == 'İ' {
        return 'i';
    }
    let mut mapped = c.to_lowercase();
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

/// `count`: elements of a collection, characters of a string.
pub fn count(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.len(),
        Value::Set(items) => items.len(),
        Value::Object(fields) => fields.len(),
        other => bail!(
            "count: operand 1 must be one of {{array, object, set, string}} but got {}",
            type_name(other)
        ),
    };
    Ok(Value::from(n as u64))
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits is an error.
fn query_unescape(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) if hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) => {
                        out.push(byte);
                        i += 3;
                    }
                    _ => {
                        let shown: String = s[i..].chars().take(3).collect();
                        bail!("invalid URL escape {shown:?}");
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `urlquery.decode`.
pub fn urlquery_decode(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let s = string_arg("urlquery.decode", &args[0], 1)?;
    Ok(Value::from(query_unescape(s)?))
}

/// `urlquery.decode_object`: Go's `url.ParseQuery`, every key to the list
/// of its values in order; a malformed escape or a `;` fails it.
pub fn urlquery_decode_object(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let s = string_arg("urlquery.decode_object", &args[0], 1)?;
    let mut object = Value::new_object();
    for pair in s.split('&') {
        if pair.is_empty() {
            continue;
        }
        if pair.contains(';') {
            bail!("invalid semicolon separator in query");
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = Value::from(query_unescape(key)?);
        let value = Value::from(query_unescape(value)?);
        let map = object.as_object_mut()?;
        match map.get_mut(&key) {
            Some(list) => list.as_array_mut()?.push(value),
            None => {
                map.insert(key, Value::from(vec![value]));
            }
        }
    }
    Ok(object)
}
