//! Declared variables that are never used: OPA refuses `some x` when
//! nothing else in the query uses `x`, and `every k, v in …` when the body
//! uses neither (`rego_compile_error: declared var x unused`). regorus
//! accepts both; an unused `every` variable usually means the body checks
//! something else than the author meant.

use std::collections::HashSet;

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

use super::error::PolicyError;
use super::expr_walk::{comprehension_parts, each_expr, query_nodes};
use crate::location::Location;

/// The unused declarations in `modules`.
pub fn find(modules: &[&Module]) -> Vec<PolicyError> {
    let mut errors = Vec::new();
    for module in modules {
        for rule in &module.policy {
            let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let mut head_uses = HashSet::new();
            if let RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } = head {
                names_in(refr, &mut head_uses);
            }
            if let RuleHead::Set { key: Some(key), .. } = head {
                names_in(key, &mut head_uses);
            }
            for body in bodies {
                check_query(&body.query, &head_uses, &mut errors);
            }
            // Queries of comprehensions anywhere in the rule.
            each_expr(rule, &mut |expr| {
                if let Some((_, query)) = comprehension_parts(expr) {
                    check_query(query, &HashSet::new(), &mut errors);
                }
            });
        }
    }
    errors
}

fn names_in(expr: &Expr, out: &mut HashSet<String>) {
    super::expr_walk::visit(expr, &mut |node| {
        if let Expr::Var { span, .. } = node {
            out.insert(span.text().to_string());
        }
    });
}

/// The variable names used anywhere in `query` (nested queries included).
fn uses_in(query: &Query) -> HashSet<String> {
    let mut uses = HashSet::new();
    query_nodes(query, &mut |expr| {
        if let Expr::Var { span, .. } = expr {
            uses.insert(span.text().to_string());
        }
    });
    uses
}

fn check_query(query: &Query, outer_uses: &HashSet<String>, errors: &mut Vec<PolicyError>) {
    let uses = uses_in(query);
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                for var in vars {
                    let name = var.text();
                    if name != "_" && !uses.contains(name) && !outer_uses.contains(name) {
                        errors.push(unused(name, var));
                    }
                }
            }
            Literal::Every {
                key, value, query, ..
            } => {
                let body_uses = uses_in(query);
                for var in key.iter().chain([value]) {
                    let name = var.text();
                    if name != "_" && !body_uses.contains(name) {
                        errors.push(unused(name, var));
                    }
                }
            }
            _ => {}
        }
    }
}

fn unused(name: &str, at: &regorus::unstable::Span) -> PolicyError {
    PolicyError {
        message: format!(
            "rego_compile_error: declared var {name} unused (OPA refuses it; use it, or \
             declare `_` instead)"
        ),
        location: Some(Location::new(
            at.source.file().clone(),
            at.line as usize,
            at.col as usize,
        )),
    }
}
