//! Builtins that answer as OPA's do, where regorus's differ or are missing.
//!
//! Each is a plain function of regorus's builtin signature, so that one
//! implementation serves both engines: the interpreter calls it as an
//! extension (extensions shadow builtins of the same name), and a VM
//! program has its resolved builtin table patched to call it
//! ([`patch_program`]). Builtins regorus lacks altogether (`crypto.*`,
//! `io.jwt.*`) are
//! extensions only, so an entry point calling one stays on the interpreter
//! (the VM does not compile a call of a builtin it does not know).
//!
//! The corpus in `tests/fidelity` checks each against OPA's answers.

mod crypto;
mod gofmt;
mod json;
mod jwt;
mod numbers;
mod order;
mod semver;
mod text;
mod time;

use anyhow::{bail, Result};
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

/// regorus's builtin signature: the call's span and argument expressions
/// (for error positions), the argument values, and whether builtin errors
/// are strict.
pub type Builtin = fn(&Span, &[Ref<Expr>], &[Value], bool) -> Result<Value>;

/// Builtins regorus has, answered here as OPA answers them.
pub const OVERRIDES: [(&str, Builtin, u8); 15] = [
    ("sum", numbers::sum, 1),
    ("product", numbers::product, 1),
    ("sort", order::sort, 1),
    ("max", order::max, 1),
    ("min", order::min, 1),
    ("sprintf", gofmt_sprintf, 2),
    ("upper", text::upper, 1),
    ("lower", text::lower, 1),
    ("count", text::count, 1),
    ("urlquery.decode", text::urlquery_decode, 1),
    ("urlquery.decode_object", text::urlquery_decode_object, 1),
    ("time.add_date", time::add_date, 4),
    ("semver.is_valid", semver::is_valid, 1),
    ("json.marshal", json::marshal, 1),
    ("json.match_schema", json::match_schema, 2),
];

/// Builtins regorus does not have.
pub const ADDED: [(&str, Builtin, u8); 23] = [
    ("io.jwt.decode", jwt::decode, 1),
    ("io.jwt.decode_verify", jwt::decode_verify, 2),
    ("io.jwt.verify_hs256", jwt::verify_hs256, 2),
    ("io.jwt.verify_hs384", jwt::verify_hs384, 2),
    ("io.jwt.verify_hs512", jwt::verify_hs512, 2),
    ("io.jwt.verify_rs256", jwt::verify_rs256, 2),
    ("io.jwt.verify_rs384", jwt::verify_rs384, 2),
    ("io.jwt.verify_rs512", jwt::verify_rs512, 2),
    ("io.jwt.verify_ps256", jwt::verify_ps256, 2),
    ("io.jwt.verify_ps384", jwt::verify_ps384, 2),
    ("io.jwt.verify_ps512", jwt::verify_ps512, 2),
    ("io.jwt.verify_es256", jwt::verify_es256, 2),
    ("io.jwt.verify_es384", jwt::verify_es384, 2),
    ("io.jwt.verify_eddsa", jwt::verify_eddsa, 2),
    ("crypto.md5", crypto::md5, 1),
    ("crypto.sha1", crypto::sha1, 1),
    ("crypto.sha256", crypto::sha256, 1),
    ("crypto.hmac.md5", crypto::hmac_md5, 2),
    ("crypto.hmac.sha1", crypto::hmac_sha1, 2),
    ("crypto.hmac.sha256", crypto::hmac_sha256, 2),
    ("crypto.hmac.sha512", crypto::hmac_sha512, 2),
    ("crypto.hmac.equal", crypto::hmac_equal, 2),
    ("crypto.sha512", crypto::sha512, 1),
];

/// The implementation of builtin `name`: OPA's where regorus's differs or
/// is missing, regorus's otherwise.
pub fn implementation(name: &str) -> Option<(Builtin, u8)> {
    OVERRIDES
        .iter()
        .chain(ADDED.iter())
        .find(|(n, _, _)| *n == name)
        .map(|(_, f, arity)| (*f, *arity))
        .or_else(|| regorus::unstable::BUILTINS.get(name).copied())
}

/// Whether `name` is a builtin Portcullis adds to regorus's.
pub fn is_added(name: &str) -> bool {
    ADDED.iter().any(|(n, _, _)| *n == name)
}

/// Register, as extensions of `engine`'s interpreter, OPA's builtins and
/// the size-bounded ones ([`super::builtin_guards`]). With `strict` off
/// (OPA's default) a call that fails is undefined; a resource limit
/// (a result over `max_bytes`) fails the evaluation in every mode.
pub fn register(engine: &mut regorus::Engine, max_bytes: u64, strict: bool) -> Result<()> {
    let names = super::builtin_guards::GUARDED
        .iter()
        .chain(OVERRIDES.iter().map(|(name, _, _)| name))
        .chain(ADDED.iter().map(|(name, _, _)| name));
    let mut done = std::collections::HashSet::new();
    for &name in names {
        if !done.insert(name) {
            continue;
        }
        let Some((f, arity)) = implementation(name) else {
            bail!("no builtin {name}");
        };
        let extension = move |args: Vec<Value>| -> Result<Value> {
            let strict = strict || super::strict_scope::active();
            super::builtin_guards::check_size(name, &args, max_bytes)?;
            match super::builtin_guards::call_detached(name, f, &args, strict) {
                Err(err) if !strict && err.downcast_ref::<regorus::LimitError>().is_none() => {
                    Ok(Value::Undefined)
                }
                result => result,
            }
        };
        engine.add_extension(name.to_string(), arity, Box::new(extension))?;
    }
    Ok(())
}

/// Point a compiled VM program's builtin calls at OPA's implementations.
pub fn patch_program(program: &mut regorus::rvm::program::Program) {
    for (index, info) in program.builtin_info_table.iter().enumerate() {
        if let Some((_, f, arity)) = OVERRIDES.iter().find(|(n, _, _)| *n == info.name) {
            if let Some(slot) = program.resolved_builtins.get_mut(index) {
                *slot = (*f, *arity);
            }
        }
    }
}

fn gofmt_sprintf(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> Result<Value> {
    let [format, values] = args else {
        bail!("sprintf: expected 2 arguments");
    };
    let format = string_arg("sprintf", format, 1)?;
    let Value::Array(values) = values else {
        bail!(
            "sprintf: operand 2 must be array but got {}",
            type_name(values)
        );
    };
    match gofmt::sprintf(format, values.as_slice()) {
        Ok(text) => Ok(Value::from(text)),
        // A resource limit, not a builtin error: raised in every mode.
        Err(over) => Err(
            anyhow::Error::new(regorus::LimitError::MemoryLimitExceeded {
                usage: over.requested,
                limit: over.limit,
            })
            .context(over.to_string()),
        ),
    }
}

/// OPA's name of a value's type, for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// The elements of an array or set argument (the only argument of
/// `sort`, `sum`, …).
pub(crate) fn collection_items<'a>(builtin: &str, value: &'a Value) -> Result<Vec<&'a Value>> {
    match value {
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Set(items) => Ok(items.iter().collect()),
        other => bail!(
            "{builtin}: operand 1 must be one of {{array, set}} but got {}",
            type_name(other)
        ),
    }
}

/// Argument `position` (from 1) of `builtin` as a string.
pub(crate) fn string_arg<'a>(builtin: &str, value: &'a Value, position: usize) -> Result<&'a str> {
    match value {
        Value::String(s) => Ok(s.as_ref()),
        other => bail!(
            "{builtin}: operand {position} must be string but got {}",
            type_name(other)
        ),
    }
}

/// Argument `position` (from 1) of `builtin` as a 64-bit integer.
pub(crate) fn int_arg(builtin: &str, value: &Value, position: usize) -> Result<i64> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None => bail!("{builtin}: operand {position} must be an integer"),
        },
        other => bail!(
            "{builtin}: operand {position} must be number but got {}",
            type_name(other)
        ),
    }
}

/// A value as OPA writes it in Rego (what `sprintf` prints for values that
/// are neither numbers nor strings): sets as `{1, 2}` (`set()` when empty),
/// strings quoted.
pub(crate) fn rego_text(value: &Value) -> String {
    let mut out = String::new();
    write_rego(value, &mut out);
    out
}

fn write_rego(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_rego(item, out);
            }
            out.push(']');
        }
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_rego(item, out);
            }
            out.push('}');
        }
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_rego(key, out);
                out.push_str(": ");
                write_rego(item, out);
            }
            out.push('}');
        }
        Value::Undefined => out.push_str("undefined"),
        other => out.push_str(&other.to_json_str().unwrap_or_default()),
    }
}
