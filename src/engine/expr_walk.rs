//! A walk over a Rego expression's sub-expressions that stays in the
//! expression's own scope: comprehensions are visited but not entered
//! (their variables are their own), and a call's function position is not
//! visited (it names a function, not a variable). Also where an expression
//! starts, for locations.

use regorus::unstable::{Expr, Span};

/// The span an expression starts at: for a reference, its root's. regorus
/// 0.14 gives a reference's own span the column of its last `[` or `.`.
pub(super) fn start_of(expr: &Expr) -> &Span {
    match expr {
        Expr::RefBrack { refr, .. } | Expr::RefDot { refr, .. } => start_of(refr),
        Expr::Call { fcn, .. } => start_of(fcn),
        Expr::BinExpr { lhs, .. } | Expr::BoolExpr { lhs, .. } | Expr::ArithExpr { lhs, .. } => {
            start_of(lhs)
        }
        other => other.span(),
    }
}

/// Call `f` on `expr` and on every expression inside it, in the same scope.
pub(super) fn visit<'a>(expr: &'a Expr, f: &mut impl FnMut(&'a Expr)) {
    f(expr);
    match expr {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for item in items {
                visit(item, f);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                visit(key, f);
                visit(value, f);
            }
        }
        Expr::Call { params, .. } => {
            for param in params {
                visit(param, f);
            }
        }
        Expr::UnaryExpr { expr, .. } => visit(expr, f),
        Expr::RefDot { refr, .. } => visit(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            visit(refr, f);
            visit(index, f);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            visit(lhs, f);
            visit(rhs, f);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(key) = key {
                visit(key, f);
            }
            visit(value, f);
            visit(collection, f);
        }
        // Literals and comprehensions.
        _ => {}
    }
}
