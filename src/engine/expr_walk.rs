//! A walk over a Rego expression's sub-expressions that stays in the
//! expression's own scope: comprehensions are visited but not entered
//! (their variables are their own), and a call's function position is not
//! visited (it names a function, not a variable). Also where an expression
//! starts, for locations.

use std::collections::HashSet;

use regorus::unstable::{AssignOp, Expr, Literal, Query, Rule, RuleHead, Span};

use crate::location::Location;

/// An expression as written. regorus 0.14's spans are not all consistent:
/// a reference's span has the column of its `[`, and an object literal's
/// span starts its text at its last key: the text is therefore cut from
/// where [`start_of`] says the expression starts (a byte offset, so that a
/// line with non-ASCII text before the expression reads right) to where
/// its span ends.
pub(super) fn text_of(expr: &Expr) -> &str {
    let span = expr.span();
    let contents = span.source.contents();
    let start = start_offset(contents, expr).unwrap_or(span.start as usize);
    match contents.get(start..span.end as usize) {
        Some(text) if start <= span.end as usize => text,
        _ => span.text(),
    }
}

/// The byte offset in `source` where `expr` starts. regorus's span of a
/// string starts after its quote, an object literal's at its last key and
/// a reference's at its last `.` or `[`.
pub(super) fn start_offset(source: &str, expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Object { fields, .. } if !fields.is_empty() => {
            let key_start = start_offset(source, &fields[0].1)?;
            let before = source.get(..key_start)?.trim_end();
            Some(before.strip_suffix('{')?.len())
        }
        Expr::String { span, .. } | Expr::RawString { span, .. } => {
            let start = span.start as usize;
            let quoted = start > 0 && matches!(source.as_bytes().get(start - 1), Some(b'"' | b'`'));
            Some(if quoted { start - 1 } else { start })
        }
        Expr::RefBrack { refr, .. } | Expr::RefDot { refr, .. } => start_offset(source, refr),
        Expr::Call { fcn, .. } => start_offset(source, fcn),
        Expr::BinExpr { lhs, .. }
        | Expr::BoolExpr { lhs, .. }
        | Expr::ArithExpr { lhs, .. }
        | Expr::AssignExpr { lhs, .. } => start_offset(source, lhs),
        other => Some(other.span().start as usize),
    }
}

/// Add the variables `expr` names in its own scope to `out`.
pub(super) fn variables_in(expr: &Expr, out: &mut impl Extend<String>) {
    visit(expr, &mut |node| {
        if let Expr::Var { span, .. } = node {
            out.extend([span.text().to_string()]);
        }
    });
}

/// A comprehension's elements (its term, or its key and value) and its
/// query, which [`visit`] does not enter; `None` for other expressions.
pub(super) fn comprehension_parts(expr: &Expr) -> Option<(Vec<&Expr>, &Query)> {
    match expr {
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            Some((vec![term], query))
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => Some((vec![key, value], query)),
        _ => None,
    }
}

/// The expressions a literal evaluates in its own scope, and whether they
/// are under `not`: an expression's, a `some … in`'s key, value and
/// collection, an `every`'s domain (its body is a query of its own).
pub(super) fn literal_exprs(literal: &Literal) -> (Vec<&Expr>, bool) {
    match literal {
        Literal::Expr { expr, .. } => (vec![expr], false),
        Literal::NotExpr { expr, .. } => (vec![expr], true),
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => (
            key.iter()
                .map(|k| k.as_ref())
                .chain([value.as_ref(), collection.as_ref()])
                .collect(),
            false,
        ),
        Literal::Every { domain, .. } => (vec![domain], false),
        Literal::SomeVars { .. } => (Vec::new(), false),
    }
}

/// Where an expression starts, as a [`Location`].
pub(super) fn location_of(expr: &Expr) -> Location {
    let start = start_of(expr);
    Location::new(
        start.source.file().clone(),
        start.line as usize,
        start.col as usize,
    )
}

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

/// The names a query declares as its own variables, with those of every
/// query inside it (comprehensions, `every` bodies) added to `out`: `x :=`,
/// `some x`, `some k, v in`, `every k, v in`. Such a name shadows a rule
/// of the package where it is declared.
pub(super) fn declared_in_query(query: &Query, out: &mut HashSet<String>) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                out.extend(vars.iter().map(|v| v.text().to_string()));
            }
            Literal::SomeIn { key, value, .. } => {
                for declared in key.iter().map(|k| k.as_ref()).chain([value.as_ref()]) {
                    variables_in(declared, out);
                }
            }
            Literal::Every {
                key, value, query, ..
            } => {
                out.extend(key.iter().chain([value]).map(|v| v.text().to_string()));
                declared_in_query(query, out);
            }
            Literal::Expr { .. } | Literal::NotExpr { .. } => {}
        }
        let (exprs, _) = literal_exprs(&stmt.literal);
        for expr in exprs {
            declared_in_expr(expr, out);
        }
    }
}

/// [`declared_in_query`] for the `:=` and comprehensions inside `expr`.
pub(super) fn declared_in_expr(expr: &Expr, out: &mut HashSet<String>) {
    visit(expr, &mut |node| {
        if let Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            ..
        } = node
        {
            variables_in(lhs, out);
        }
        if let Some((_, query)) = comprehension_parts(node) {
            declared_in_query(query, out);
        }
    });
}

/// Call `f` on every call (an [`Expr::Call`]) in `rule`, in its head, its
/// bodies, comprehensions and `every` bodies included.
pub(super) fn each_call(rule: &Rule, f: &mut impl FnMut(&Expr)) {
    each_expr(rule, &mut |node| {
        if matches!(node, Expr::Call { .. }) {
            f(node);
        }
    });
}

/// Call `f` on every expression in `rule` and inside it: its head, its
/// bodies, `with` values, comprehensions and `every` bodies included.
pub(super) fn each_expr(rule: &Rule, f: &mut impl FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    expr_nodes(refr, f);
                    if let Some(assign) = assign {
                        expr_nodes(&assign.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    expr_nodes(refr, f);
                    if let Some(key) = key {
                        expr_nodes(key, f);
                    }
                }
                RuleHead::Func { assign, .. } => {
                    if let Some(assign) = assign {
                        expr_nodes(&assign.value, f);
                    }
                }
            }
            for body in bodies {
                if let Some(assign) = &body.assign {
                    expr_nodes(&assign.value, f);
                }
                query_nodes(&body.query, f);
            }
        }
        Rule::Default { value, .. } => expr_nodes(value, f),
    }
}

pub(super) fn query_nodes(query: &Query, f: &mut impl FnMut(&Expr)) {
    for stmt in &query.stmts {
        for modifier in &stmt.with_mods {
            // The target is what is replaced, not evaluated.
            expr_nodes(&modifier.r#as, f);
        }
        for expr in literal_exprs(&stmt.literal).0 {
            expr_nodes(expr, f);
        }
        if let Literal::Every { query, .. } = &stmt.literal {
            query_nodes(query, f);
        }
    }
}

/// `expr` and every expression in it, in comprehensions too.
fn expr_nodes(expr: &Expr, f: &mut impl FnMut(&Expr)) {
    visit(expr, &mut |node| {
        f(node);
        if let Some((elements, query)) = comprehension_parts(node) {
            for element in elements {
                expr_nodes(element, f);
            }
            query_nodes(query, f);
        }
    });
}
