//! Partial rules whose head element can be undefined while the body holds
//! (`deny contains {"msg": m, "name": input.x.name} if { … }`), which
//! regorus 0.14's interpreter evaluates differently from OPA.
//!
//! OPA skips the one element whose head is undefined. regorus's interpreter
//! sets the whole rule to undefined instead: the elements found before are
//! dropped, and the next one fails with "previous value is not an object".
//! A deny set can lose its denials that way. The VM skips the element like
//! OPA, so the entry points it runs are not affected; the interpreter runs
//! the Rego unit tests, Gatekeeper templates, entry points kept off the VM
//! and ad hoc queries.
//!
//! Such rules are OPA-valid and usually harmless (the element is defined
//! for any object the API server accepts), so they are warnings, not
//! errors: logged at each activation and printed by `portcullis check`,
//! with the rewrite that avoids them (bind the element in the body).

use std::collections::HashSet;

use regorus::unstable::{Expr, Query, Rule, RuleHead};

use super::expr_walk::{literal_exprs, location_of, text_of, visit};
use super::vm_gaps::element_can_be_undefined;
use crate::location::Location;

/// A partial rule's head element that can be undefined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefinedHead {
    /// The rule's reference, as written (`deny`, `violation`, `p[k]`).
    pub rule: String,
    /// The element (a set's member, an object's key or value), as written.
    pub element: String,
    /// Where the element is.
    pub location: Location,
}

impl std::fmt::Display for UndefinedHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Location { file, row, col } = &self.location;
        write!(
            f,
            "{file}:{row}:{col}: `{}` in the head of `{}` can be undefined, and regorus's \
             interpreter then drops the rule's other elements where OPA skips only this one; \
             bind it in the body (`x := …`) and name `x` in the head",
            self.element, self.rule
        )
    }
}

/// The first head element of `rule` that can be undefined, if `rule` is a
/// partial set or object rule with one.
pub fn find(rule: &Rule) -> Option<UndefinedHead> {
    let Rule::Spec { head, bodies, .. } = rule else {
        return None;
    };
    let (refr, elements): (&Expr, Vec<&Expr>) = match head {
        RuleHead::Set { refr, key, .. } => (refr, key.iter().map(|k| k.as_ref()).collect()),
        RuleHead::Compr { refr, assign, .. } => {
            let indexes = bracket_indexes(refr);
            if indexes.is_empty() {
                // A complete rule: an undefined value makes it undefined,
                // as in OPA.
                return None;
            }
            let value = assign.iter().map(|a| a.value.as_ref());
            (refr, indexes.into_iter().chain(value).collect())
        }
        RuleHead::Func { .. } => return None,
    };
    // A reference that every body already uses in a literal outside `not`
    // is defined whenever the body holds: the interpreter fails a body on
    // an undefined operand, `:=` included.
    let used_by_every_body = bodies
        .iter()
        .map(|body| references_used(&body.query))
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap_or_default();
    let known_defined = |expr: &Expr| {
        matches!(expr, Expr::RefDot { .. } | Expr::RefBrack { .. })
            && used_by_every_body.contains(text_of(expr))
    };
    let element = elements
        .into_iter()
        .find(|element| element_can_be_undefined(element, &known_defined))?;
    Some(UndefinedHead {
        rule: text_of(refr).to_string(),
        element: text_of(element).to_string(),
        location: location_of(element),
    })
}

/// The references `query`'s literals use outside `not` and comprehensions,
/// as written.
fn references_used(query: &Query) -> HashSet<String> {
    let mut used = HashSet::new();
    let mut note = |expr: &Expr| {
        visit(expr, &mut |node| {
            if matches!(node, Expr::RefDot { .. } | Expr::RefBrack { .. }) {
                used.insert(text_of(node).to_string());
            }
        })
    };
    for stmt in &query.stmts {
        let (exprs, negated) = literal_exprs(&stmt.literal);
        if !negated {
            exprs.into_iter().for_each(&mut note);
        }
    }
    used
}

/// The bracket indexes of a rule's reference (`k` in `p[k]`, both in
/// `p[a][b]`), outermost last.
fn bracket_indexes(refr: &Expr) -> Vec<&Expr> {
    match refr {
        Expr::RefBrack { refr, index, .. } => {
            let mut indexes = bracket_indexes(refr);
            indexes.push(index);
            indexes
        }
        Expr::RefDot { refr, .. } => bracket_indexes(refr),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The undefined head elements of `module`, as `element@row:col`.
    fn found(module: &str) -> Vec<String> {
        crate::engine::tests::each_rule(module, find)
            .into_iter()
            .map(|h| format!("{}@{}:{}", h.element, h.location.row, h.location.col))
            .collect()
    }

    #[test]
    fn partial_rule_elements_that_can_be_undefined_are_found() {
        let module = r#"package p
import rego.v1
set_member contains input.o[k] if { some k in input.ks }
set_object contains {"msg": k, "name": input.o[k].name} if { some k in input.ks }
object_value[k] := input.o[k] if { some k in input.ks }
used_only_under_not contains input.o[k] if { some k in input.ks; not input.o[k] == 2 }
object_key[input.o[k]] := k if { some k in input.ks }
user_call contains f(k) if { some k in input.ks }
f(k) := 1 if { k == "a" }
"#;
        assert_eq!(
            found(module),
            [
                "input.o[k]@3:21",
                "{\"msg\": k, \"name\": input.o[k].name}@4:21",
                "input.o[k]@5:20",
                "input.o[k]@6:30",
                "input.o[k]@7:12",
                "f(k)@8:20",
            ]
        );
    }

    #[test]
    fn defined_elements_and_complete_rules_are_not_found() {
        let module = r#"package p
import rego.v1
bound contains {"msg": k, "name": name} if { some k in input.ks; name := input.o[k].name }
used_in_the_body contains {"msg": msg, "name": input.o[k].name} if { some k in input.ks; msg := sprintf("%v", [input.o[k].name]) }
message contains sprintf("%v", [k]) if { some k in input.ks }
object_of_bound[k] := v if { some k, v in input.o }
complete := input.o.a
complete_ref.a.b := input.x
function(x) := input.o[x]
"#;
        assert_eq!(found(module), Vec::<String>::new());
    }

    /// Documents the upstream behaviour behind the warning: when regorus's
    /// interpreter skips the undefined element like OPA, this test fails
    /// and the warning can go.
    #[test]
    fn the_interpreter_itself_still_drops_the_other_elements() {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy(
                "p.rego".into(),
                "package p\nimport rego.v1\ns contains input.o[k] if { some k in input.ks }\n"
                    .into(),
            )
            .unwrap();
        engine.set_input(
            regorus::Value::from_json_str(r#"{"ks": ["a", "zz"], "o": {"a": 1}}"#).unwrap(),
        );
        let answer = engine.eval_rule("data.p.s".into()).unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&answer.to_json_str().unwrap()).unwrap();
        assert_ne!(
            answer,
            serde_json::json!([1]),
            "the interpreter now skips the undefined element like OPA: drop undefined_heads"
        );
    }
}
