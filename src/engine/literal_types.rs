//! The type errors OPA finds when it compiles, for what is written
//! literally: a builtin called with a literal argument of the wrong type
//! (`startswith(1, "a")`, `object.get(null, "a", 1)`, `count(5)`), and a
//! reference into a literal that cannot be there (`{"a": 1}.b`, `[1, 2][5]`).
//!
//! OPA refuses such a module (`rego_type_error`); regorus compiles it and
//! the call is undefined at evaluation (OPA's default, non-strict builtin
//! errors), so the module would go live with a rule that never fires. The
//! argument types are OPA's own declarations, recorded from `opa
//! capabilities` into `builtin_signatures.json`
//! (`scripts/builtin-signatures.py`). Arguments that are not literals are
//! not checked: OPA's checker infers types through variables and rules,
//! this one only reads literals.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regorus::unstable::{Expr, Module, Rule, RuleHead};
use regorus::Value;
use serde_json::Value as Json;

use super::error::PolicyError;
use super::expr_walk::{each_expr, location_of, text_of};

/// OPA's declared argument types, by builtin name.
fn signatures() -> &'static HashMap<String, Vec<Json>> {
    static TABLE: OnceLock<HashMap<String, Vec<Json>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("builtin_signatures.json")).unwrap_or_default()
    })
}

/// Whether OPA (1.9) has a builtin function of this name.
pub fn is_opa_builtin(name: &str) -> bool {
    signatures().contains_key(name)
}

/// The type of a literal, as far as it is written literally.
#[derive(Debug)]
enum Ty {
    Unknown,
    Null,
    Boolean,
    Number,
    String,
    Array(Vec<Ty>),
    Set(Vec<Ty>),
    Object(Vec<(Ty, Ty)>),
}

impl Ty {
    fn of(expr: &Expr) -> Ty {
        match expr {
            Expr::String { .. } | Expr::RawString { .. } => Ty::String,
            Expr::Number { .. } => Ty::Number,
            Expr::Bool { .. } => Ty::Boolean,
            Expr::Null { .. } => Ty::Null,
            Expr::Array { items, .. } => Ty::Array(items.iter().map(|i| Ty::of(i)).collect()),
            Expr::Set { items, .. } => Ty::Set(items.iter().map(|i| Ty::of(i)).collect()),
            Expr::Object { fields, .. } => Ty::Object(
                fields
                    .iter()
                    .map(|(_, k, v)| (Ty::of(k), Ty::of(v)))
                    .collect(),
            ),
            _ => Ty::Unknown,
        }
    }

    /// OPA's name of the type, for messages.
    fn name(&self) -> &'static str {
        match self {
            Ty::Unknown => "any",
            Ty::Null => "null",
            Ty::Boolean => "boolean",
            Ty::Number => "number",
            Ty::String => "string",
            Ty::Array(_) => "array",
            Ty::Set(_) => "set",
            Ty::Object(_) => "object",
        }
    }

    /// Whether a value of this type can be passed where `declared` is
    /// expected (OPA's type JSON).
    fn fits(&self, declared: &Json) -> bool {
        if matches!(self, Ty::Unknown) {
            return true;
        }
        let kind = declared.get("type").and_then(Json::as_str).unwrap_or("any");
        match kind {
            "any" => match declared.get("of").and_then(Json::as_array) {
                Some(alternatives) => alternatives.iter().any(|alt| self.fits(alt)),
                None => true,
            },
            "null" => matches!(self, Ty::Null),
            "boolean" => matches!(self, Ty::Boolean),
            "number" => matches!(self, Ty::Number),
            "string" => matches!(self, Ty::String),
            "array" => {
                let Ty::Array(items) = self else {
                    return false;
                };
                let fixed = declared.get("static").and_then(Json::as_array);
                let rest = declared.get("dynamic");
                items.iter().enumerate().all(|(i, item)| {
                    match fixed.and_then(|f| f.get(i)).or(rest) {
                        Some(element) => item.fits(element),
                        None => false,
                    }
                })
            }
            "set" => {
                let Ty::Set(items) = self else {
                    return false;
                };
                match declared.get("of") {
                    Some(element) => items.iter().all(|item| item.fits(element)),
                    None => true,
                }
            }
            "object" => {
                let Ty::Object(fields) = self else {
                    return false;
                };
                match declared.get("dynamic") {
                    Some(dynamic) => fields.iter().all(|(k, v)| {
                        dynamic.get("key").is_none_or(|key| k.fits(key))
                            && dynamic.get("value").is_none_or(|value| v.fits(value))
                    }),
                    None => true,
                }
            }
            _ => true,
        }
    }
}

/// The type errors in `modules`, each at the argument or reference.
pub fn find(modules: &[&Module]) -> Vec<PolicyError> {
    let functions = function_names(modules);
    let mut errors = Vec::new();
    for module in modules {
        for rule in &module.policy {
            each_expr(rule, &mut |expr| {
                if let Some(error) = call_error(expr, &functions) {
                    errors.push(error);
                }
                if let Some(error) = literal_ref_error(expr) {
                    errors.push(error);
                }
            });
        }
    }
    errors
}

/// The names the modules define as functions (they shadow builtins).
fn function_names(modules: &[&Module]) -> HashSet<String> {
    let mut names = HashSet::new();
    for module in modules {
        for rule in &module.policy {
            if let Rule::Spec {
                head: RuleHead::Func { refr, .. },
                ..
            } = rule.as_ref()
            {
                names.insert(text_of(refr).to_string());
            }
        }
    }
    names
}

fn call_error(expr: &Expr, functions: &HashSet<String>) -> Option<PolicyError> {
    let Expr::Call { fcn, params, .. } = expr else {
        return None;
    };
    let name = text_of(fcn);
    if functions.contains(name) {
        return None;
    }
    let declared = signatures().get(name)?;
    if declared.len() != params.len() {
        return None;
    }
    params
        .iter()
        .zip(declared)
        .enumerate()
        .find_map(|(i, (param, want))| {
            let have = Ty::of(param);
            (!have.fits(want)).then(|| PolicyError {
                message: format!(
                    "rego_type_error: {name}: invalid argument(s): argument {} is a literal {}, \
                     which {name} does not take (OPA refuses this at compile time; pass a value \
                     of the type it declares)",
                    i + 1,
                    have.name()
                ),
                location: Some(location_of(param)),
            })
        })
}

/// A reference into a literal object or array at a key it does not have.
fn literal_ref_error(expr: &Expr) -> Option<PolicyError> {
    let missing = match expr {
        Expr::RefDot { refr, field, .. } => match refr.as_ref() {
            Expr::Object { fields, .. } => {
                let key = Value::from(field.1.as_string().ok()?.as_ref());
                let keys: Vec<Value> = fields
                    .iter()
                    .map(|(_, k, _)| literal_value(k))
                    .collect::<Option<_>>()?;
                !keys.contains(&key)
            }
            _ => false,
        },
        Expr::RefBrack { refr, index, .. } => {
            let written = text_of(index);
            let index = literal_value(index)?;
            match refr.as_ref() {
                // OPA indexes an array by an integer written as one.
                Expr::Array { items, .. } => match &index {
                    Value::Number(n) => {
                        let position = n.as_i64().filter(|_| is_integer_literal(written));
                        !position.is_some_and(|i| i >= 0 && (i as usize) < items.len())
                    }
                    _ => true,
                },
                Expr::Object { fields, .. } => {
                    let keys: Vec<Value> = fields
                        .iter()
                        .map(|(_, k, _)| literal_value(k))
                        .collect::<Option<_>>()?;
                    !keys.contains(&index)
                }
                _ => false,
            }
        }
        _ => false,
    };
    missing.then(|| PolicyError {
        message: format!(
            "rego_type_error: undefined ref: `{}` reads a key the literal does not have \
             (OPA refuses this at compile time)",
            text_of(expr)
        ),
        location: Some(location_of(expr)),
    })
}

/// Whether a number literal is written as an integer (`1`, not `1.0`).
fn is_integer_literal(text: &str) -> bool {
    let digits = text.trim().strip_prefix('-').unwrap_or(text.trim());
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The value of a scalar literal.
fn literal_value(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.clone()),
        _ => None,
    }
}
