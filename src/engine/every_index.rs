//! References indexed by an `every` variable (`every k, v in xs { t[k] }`),
//! which regorus 0.14 evaluates differently from OPA.
//!
//! regorus's static analysis does not count an `every`'s key and value as
//! bound inside its body. A reference indexed by one of them is taken for
//! an iteration that binds the variable afresh:
//! - on the VM, `t[k]` holds when *any* element of `t` does, so
//!   `every k, _ in xs { allowed[k] }` is true whatever `xs` holds;
//! - under `not`, on the VM and on the interpreter alike, `not t[k]` holds
//!   only when `t` has no element at all.
//!
//! The interpreter answers the first case like OPA, so entry points
//! reaching it stay off the VM ([`super::vm_gaps`]). Nothing in regorus
//! answers the second like OPA, so a policy containing it is refused when
//! it is compiled, with the place and the rewrite that avoids it.

use regorus::unstable::{Expr, Literal, Query, Rule, RuleHead};

use super::expr_walk::{comprehension_parts, location_of, text_of, variables_in, visit};
use super::PolicyError;
use crate::location::Location;

/// One reference indexed by an `every` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EveryIndex {
    /// The `every` variable.
    pub variable: String,
    /// The reference, as written.
    pub reference: String,
    /// Where the reference is.
    pub location: Location,
    /// Whether it is under `not` (where no regorus engine answers like OPA).
    pub negated: bool,
}

impl EveryIndex {
    /// The compile error for a negated occurrence.
    pub fn to_policy_error(&self) -> PolicyError {
        PolicyError {
            message: format!(
                "`not {reference}` inside `every`: regorus takes the `every` variable `{variable}` \
                 for unbound here and would answer differently from OPA; \
                 test it in a function instead (`not f({variable})`)",
                reference = self.reference,
                variable = self.variable,
            ),
            location: Some(self.location.clone()),
        }
    }
}

/// Every reference in `rule` indexed by a variable of an enclosing `every`.
pub fn find(rule: &Rule) -> Vec<EveryIndex> {
    let mut found = Vec::new();
    let Rule::Spec { head, bodies, .. } = rule else {
        return found;
    };
    // `every` appears only in queries: rule bodies and comprehensions,
    // which may sit in the head or an else value too.
    let head_exprs: Vec<&Expr> = match head {
        RuleHead::Compr { refr, assign, .. } => std::iter::once(refr.as_ref())
            .chain(assign.iter().map(|a| a.value.as_ref()))
            .collect(),
        RuleHead::Set { refr, key, .. } => std::iter::once(refr.as_ref())
            .chain(key.as_deref())
            .collect(),
        RuleHead::Func { assign, .. } => assign.iter().map(|a| a.value.as_ref()).collect(),
    };
    for expr in head_exprs {
        walk_expr(expr, &[], false, &mut found);
    }
    for body in bodies {
        if let Some(assign) = &body.assign {
            walk_expr(&assign.value, &[], false, &mut found);
        }
        walk_query(&body.query, &[], false, &mut found);
    }
    found
}

/// Walk `query` with `every_vars` in scope.
fn walk_query(query: &Query, every_vars: &[String], negated: bool, out: &mut Vec<EveryIndex>) {
    let mut in_scope = every_vars.to_vec();
    for stmt in &query.stmts {
        for modifier in &stmt.with_mods {
            walk_expr(&modifier.r#as, &in_scope, negated, out);
        }
        match &stmt.literal {
            Literal::Expr { expr, .. } => walk_expr(expr, &in_scope, negated, out),
            Literal::NotExpr { expr, .. } => walk_expr(expr, &in_scope, true, out),
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                walk_expr(collection, &in_scope, negated, out);
                // `some k in …` declares `k` afresh from here on.
                for pattern in key.iter().chain([value]) {
                    let mut declared = Vec::new();
                    variables_in(pattern, &mut declared);
                    in_scope.retain(|v| !declared.contains(v));
                }
            }
            Literal::SomeVars { vars, .. } => {
                in_scope.retain(|v| !vars.iter().any(|s| s.text() == v));
            }
            Literal::Every {
                key,
                value,
                domain,
                query,
                ..
            } => {
                walk_expr(domain, &in_scope, negated, out);
                let mut inner = in_scope.clone();
                for var in key.iter().chain([value]) {
                    let name = var.text();
                    if name != "_" && !inner.iter().any(|v| v == name) {
                        inner.push(name.to_string());
                    }
                }
                walk_query(query, &inner, negated, out);
            }
        }
    }
}

/// Record the references in `expr` indexed by one of `every_vars`, and walk
/// the comprehensions inside it.
fn walk_expr(expr: &Expr, every_vars: &[String], negated: bool, out: &mut Vec<EveryIndex>) {
    visit(expr, &mut |node| match node {
        Expr::RefBrack { index, .. } => {
            if let Expr::Var { span: var, .. } = index.as_ref() {
                if every_vars.iter().any(|v| v == var.text()) {
                    out.push(EveryIndex {
                        variable: var.text().to_string(),
                        reference: text_of(node).to_string(),
                        location: location_of(node),
                        negated,
                    });
                }
            }
        }
        other => {
            if let Some((elements, query)) = comprehension_parts(other) {
                walk_query(query, every_vars, negated, out);
                for element in elements {
                    walk_expr(element, every_vars, negated, out);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The every-indexed references of `module`, as `reference@row` with a
    /// `!` when negated.
    fn found(module: &str) -> Vec<String> {
        crate::engine::tests::each_rule(module, find)
            .into_iter()
            .map(|f| {
                let mark = if f.negated { "!" } else { "" };
                format!("{mark}{}@{}", f.reference, f.location.row)
            })
            .collect()
    }

    #[test]
    fn references_indexed_by_every_variables_are_found() {
        let module = r#"package p
import rego.v1
t := {"a": 1}
key_index if { every k, v in input.m { t[k] } }
value_index if { every v in input.xs { input.flags[v] == true } }
deeper if { every k, v in input.m { input.deep[k].x == v } }
bound if { every k, v in input.m { y := t[k]; y > 0 } }
in_comprehension if { every k, _ in input.m { count([1 | t[k]]) > 0 } }
nested if { every k, _ in input.m { every w in input.xs { t[k]; w } } }
negated if { every k, _ in input.m { not t[k] } }
negated_call if { every k, _ in input.m { not startswith(t[k], "x") } }
"#;
        assert_eq!(
            found(module),
            [
                "t[k]@4",
                "input.flags[v]@5",
                "input.deep[k]@6",
                "t[k]@7",
                "t[k]@8",
                "t[k]@9",
                "!t[k]@10",
                "!t[k]@11",
            ]
        );
    }

    #[test]
    fn other_indexes_are_not_found() {
        let module = r#"package p
import rego.v1
t := {"a": 1}
outside if { some k in input.xs; t[k] }
field_of_the_variable if { every v in input.objs { t[v.name] } }
call_result if { every k, _ in input.m { t[lower(k)] } }
rebound if { every k, _ in input.m { k2 := k; t[k2] } }
redeclared if { every k, _ in input.m { some k in input.ys; t[k] } }
through_a_function if { every k, _ in input.m { not has(k) } }
has(k) if t[k]
outer_variable if { some k in input.xs; every v in input.ys { t[k]; v } }
"#;
        assert_eq!(found(module), Vec::<String>::new());
    }

    const NEGATED: &str = r#"package p
import rego.v1
t := {"a": 1}
none_known if { every k, _ in input.m { not t[k] } }
"#;

    #[test]
    fn a_negated_every_index_is_refused_where_it_is() {
        use crate::engine::tests::bundle_with;
        use crate::engine::{CompileError, EngineOptions, PolicySet};
        let Err(CompileError::Policies(errors)) = PolicySet::compile(
            &[bundle_with(&[("p.rego", NEGATED)], serde_json::json!({}))],
            EngineOptions::default(),
        ) else {
            panic!("the policy must be refused with policy errors");
        };
        assert_eq!(errors.len(), 1);
        let location = errors[0].location.as_ref().unwrap();
        assert!(location.file.ends_with("p.rego"), "{location}");
        assert_eq!((location.row, location.col), (4, 45));
        assert!(
            errors[0].message.starts_with("`not t[k]` inside `every`"),
            "{}",
            errors[0].message
        );
    }

    /// Documents the upstream behaviour behind the refusal: the
    /// interpreter finds `none_known` undefined for `{"m": {"z": 1}}`, where
    /// OPA finds it true. When this test fails, regorus answers like OPA and
    /// the refusal can go.
    #[test]
    fn the_interpreter_itself_still_misreads_a_negated_every_index() {
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".into(), NEGATED.into()).unwrap();
        engine.set_input(regorus::Value::from_json_str(r#"{"m": {"z": 1}}"#).unwrap());
        let answer = engine.eval_rule("data.p.none_known".into()).unwrap();
        assert_eq!(
            answer,
            regorus::Value::Undefined,
            "the interpreter now answers like OPA: drop the refusal"
        );
    }
}
