//! OPA's order of values for `sort`, `max` and `min`: null, booleans,
//! numbers, strings, arrays, objects, then sets. regorus orders sets
//! before objects; within each type both order alike (element by element,
//! objects key by key).

use std::cmp::Ordering;

use anyhow::Result;
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

use super::collection_items;

/// OPA's comparison of two values.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    fn is_set_or_object(v: &Value) -> Option<u8> {
        match v {
            Value::Object(_) => Some(0),
            Value::Set(_) => Some(1),
            _ => None,
        }
    }
    match (is_set_or_object(a), is_set_or_object(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        _ => match (a, b) {
            (Value::Array(x), Value::Array(y)) => compare_all(x.iter(), y.iter()),
            (Value::Set(x), Value::Set(y)) => compare_all(x.iter(), y.iter()),
            (Value::Object(x), Value::Object(y)) => {
                let mut left = x.iter();
                let mut right = y.iter();
                loop {
                    match (left.next(), right.next()) {
                        (None, None) => return Ordering::Equal,
                        (None, Some(_)) => return Ordering::Less,
                        (Some(_), None) => return Ordering::Greater,
                        (Some((ka, va)), Some((kb, vb))) => {
                            let order = compare(ka, kb).then_with(|| compare(va, vb));
                            if order != Ordering::Equal {
                                return order;
                            }
                        }
                    }
                }
            }
            _ => a.cmp(b),
        },
    }
}

fn compare_all<'a>(
    mut left: impl Iterator<Item = &'a Value>,
    mut right: impl Iterator<Item = &'a Value>,
) -> Ordering {
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => {
                let order = compare(a, b);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// `sort`.
pub fn sort(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let mut items: Vec<Value> = collection_items("sort", &args[0])?
        .into_iter()
        .cloned()
        .collect();
    items.sort_by(compare);
    Ok(Value::from(items))
}

/// `max`: undefined for an empty collection.
pub fn max(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let items = collection_items("max", &args[0])?;
    Ok(items
        .into_iter()
        .max_by(|a, b| compare(a, b))
        .cloned()
        .unwrap_or(Value::Undefined))
}

/// `min`: undefined for an empty collection.
pub fn min(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let items = collection_items("min", &args[0])?;
    Ok(items
        .into_iter()
        .min_by(|a, b| compare(a, b))
        .cloned()
        .unwrap_or(Value::Undefined))
}
