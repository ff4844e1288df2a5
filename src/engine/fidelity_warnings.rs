//! Warnings, at load, for what a module writes that Portcullis evaluates
//! as OPA does but where an author is likely surprised, or where the
//! answer can differ from OPA's in a way no rewrite removes
//! (docs/opa-compatibility.md lists each):
//!
//! - arithmetic on a non-integer literal: OPA computes with 64-bit
//!   mantissas and prints the shortest decimal (`0.1 + 0.2` is `0.3`),
//!   regorus with 64-bit floats (`0.30000000000000004`);
//! - `%` with a non-integer literal: undefined in OPA, an error here;
//! - a number literal not written as its value prints (`1.0`, `2.50`,
//!   `1e9`): OPA keeps the text in `json.marshal` and `sprintf`, Portcullis
//!   writes the value (`1`, `2.5`, `1000000000`);
//! - `yaml.unmarshal`: OPA reads YAML 1.1 (`yes`, `on`, `y` are booleans),
//!   regorus YAML 1.2 (they are strings);
//! - an ordering comparison with an object or set literal: OPA orders
//!   objects before sets, regorus's operators sets before objects.
//!
//! The warning for a negation that fails open on a missing input field
//! comes from [`super::negation`], which sees the rewrite.

use regorus::unstable::{ArithOp, BoolOp, Expr, Module};

use super::error::PolicyError;
use super::expr_walk::{each_expr, location_of, text_of};

/// The warnings for `modules`, in order.
pub fn find(modules: &[&Module]) -> Vec<PolicyError> {
    let mut warnings = Vec::new();
    for module in modules {
        for rule in &module.policy {
            each_expr(rule, &mut |expr| {
                if let Some(message) = warning(expr) {
                    warnings.push(PolicyError {
                        message,
                        location: Some(location_of(expr)),
                    });
                }
            });
        }
    }
    warnings
}

fn warning(expr: &Expr) -> Option<String> {
    match expr {
        Expr::ArithExpr { op, lhs, rhs, .. } => {
            let fraction = [lhs, rhs].into_iter().find(|e| non_integer_literal(e))?;
            let text = text_of(fraction);
            Some(if matches!(op, ArithOp::Mod) {
                format!(
                    "`{}` takes the remainder of the non-integer {text}: OPA's answer is \
                     undefined, Portcullis raises an error (docs/opa-compatibility.md#arithmetic)",
                    text_of(expr)
                )
            } else {
                format!(
                    "`{}` computes with the non-integer {text}: OPA computes with 64-bit \
                     mantissas (0.1 + 0.2 is 0.3), Portcullis with 64-bit floats \
                     (0.30000000000000004); compare with a tolerance, or scale to integers \
                     (docs/opa-compatibility.md#arithmetic)",
                    text_of(expr)
                )
            })
        }
        Expr::Number { .. } => {
            let text = text_of(expr);
            let value = expr_number_text(expr)?;
            (text != value).then(|| {
                format!(
                    "the number {text} is written as {value} by json.marshal and sprintf, \
                     where OPA keeps the text {text}; write {value} \
                     (docs/opa-compatibility.md#number-text)"
                )
            })
        }
        Expr::Call { fcn, .. } if text_of(fcn) == "yaml.unmarshal" => Some(
            "yaml.unmarshal reads YAML 1.2 (yes, no, on, off, y and n are strings, and only \
             the first document is read by OPA): OPA reads YAML 1.1, where those are booleans \
             (docs/opa-compatibility.md#yaml)"
                .to_string(),
        ),
        Expr::BoolExpr { op, lhs, rhs, .. }
            if !matches!(op, BoolOp::Eq | BoolOp::Ne)
                && [lhs, rhs].iter().any(|e| is_object_or_set_literal(e)) =>
        {
            Some(format!(
                "`{}` orders an object or a set: OPA orders objects before sets, Portcullis's \
                 operators sets before objects (docs/opa-compatibility.md#ordering)",
                text_of(expr)
            ))
        }
        _ => None,
    }
}

fn non_integer_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Number { value, .. } => value.as_number().is_ok_and(|n| !n.is_integer()),
        _ => false,
    }
}

/// How Portcullis writes a number literal's value.
fn expr_number_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Number { value, .. } => serde_json::to_string(value).ok(),
        _ => None,
    }
}

fn is_object_or_set_literal(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Object { .. } | Expr::Set { .. } | Expr::ObjectCompr { .. } | Expr::SetCompr { .. }
    )
}
