//! The variables an ad-hoc query binds in its own body, in order of first
//! appearance: what OPA reports as a result row's bindings. regorus reports
//! only the variables of the query's outermost scope, so a variable that
//! appears only inside a reference (`i` in `data.servers[i].name`) would be
//! missing; the query API asks for these explicitly.
//!
//! Variables of comprehensions, `every` bodies and negated expressions are
//! local to them and are not bindings of the query; `_`, `input` and
//! `data` are never variables.

use regorus::unstable::{Expr, Literal, Parser};
use regorus::Value;

use super::expr_walk::visit;
use super::PolicyError;

/// Parse `query` and list the variables it binds.
pub fn query_variables(query: &str) -> Result<Vec<String>, PolicyError> {
    super::nesting::check(query, "<query>")?;
    let source = regorus::Source::from_contents("<query>".to_string(), query.to_string())
        .map_err(|err| PolicyError::from_regorus(&err))?;
    let mut parser = Parser::new(&source).map_err(|err| PolicyError::from_regorus(&err))?;
    // Queries are Rego v1, as the engine evaluates them.
    parser
        .enable_rego_v1()
        .map_err(|err| PolicyError::from_regorus(&err))?;
    let parsed = parser
        .parse_user_query()
        .map_err(|err| PolicyError::from_regorus(&err))?;
    let mut vars = Vec::new();
    for stmt in &parsed.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars: names, .. } => {
                for name in names {
                    add(&mut vars, name.text());
                }
            }
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(key) = key {
                    walk(key, &mut vars);
                }
                walk(value, &mut vars);
                walk(collection, &mut vars);
            }
            Literal::Expr { expr, .. } => walk(expr, &mut vars),
            Literal::NotExpr { .. } | Literal::Every { .. } => {}
        }
    }
    Ok(vars)
}

fn add(vars: &mut Vec<String>, name: &str) {
    let reserved = matches!(name, "_" | "input" | "data") || name.starts_with("__");
    if !reserved && !vars.iter().any(|v| v == name) {
        vars.push(name.to_string());
    }
}

fn walk(expr: &Expr, vars: &mut Vec<String>) {
    visit(expr, &mut |node| {
        if let Expr::Var {
            value: Value::String(name),
            ..
        } = node
        {
            add(vars, name);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_inside_references_are_found_and_local_ones_are_not() {
        let vars =
            query_variables("data.servers[i].ports[_] = \"p2\"; data.servers[i].name = name")
                .unwrap();
        assert_eq!(vars, vec!["i", "name"]);
        let vars = query_variables(
            "some k, v in input.m; x := [y | y := v[_]]; not z == 1; count(input.a) > n; n := 1",
        )
        .unwrap();
        assert_eq!(
            vars,
            vec!["k", "v", "input", "x", "n"]
                .into_iter()
                .filter(|v| *v != "input")
                .collect::<Vec<_>>()
        );
        assert!(query_variables("x := ").is_err());
    }
}
