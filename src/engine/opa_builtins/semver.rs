//! `semver.is_valid` as OPA's semver package reads a version: three
//! dot-separated integers (leading zeros allowed), then an optional
//! `-pre.release` and `+build`, each a dot-separated list of
//! `[0-9A-Za-z-]+` identifiers. Anything that is not a string is not a
//! valid version (false, not an error).

use anyhow::Result;
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

/// `semver.is_valid`.
pub fn is_valid(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let valid = match &args[0] {
        Value::String(s) => valid_version(s),
        _ => false,
    };
    Ok(Value::from(valid))
}

fn valid_version(text: &str) -> bool {
    let (rest, build) = match text.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.splitn(3, '.').collect();
    parts.len() == 3
        && parts.iter().all(|part| parses_as_int64(part))
        && pre.is_none_or(valid_identifiers)
        && build.is_none_or(valid_identifiers)
}

/// What Go's `strconv.ParseInt(s, 10, 64)` accepts.
fn parses_as_int64(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

/// An empty list, or dot-separated non-empty `[0-9A-Za-z-]+` identifiers.
fn valid_identifiers(s: &str) -> bool {
    s.is_empty()
        || s.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}
