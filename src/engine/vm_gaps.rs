//! Rules that regorus's bytecode VM would answer differently from OPA,
//! found by static analysis at activation, so that entry points reaching
//! them stay on the interpreter.
//!
//! regorus 0.14's VM compiles `x := <expr>` without failing the body when
//! `<expr>` is undefined (`=`, `some … in`, loop indexes and function
//! arguments do fail it). OPA and regorus's interpreter fail the body at
//! that assignment. The two still agree whenever some later literal that
//! fails on an undefined operand uses `x`. They differ when nothing does:
//! - `x := input.missing` with `x` unused: the VM's body succeeds;
//! - `not f(x)`: `not` over an undefined `x` succeeds;
//! - `x` used only inside a comprehension (`count([1 | x == 1]) == 0`).
//!
//! The analysis: a variable bound by `:=` to an expression that can be
//! undefined (anything but a constant or a comprehension) is *guarded*
//! when, outside comprehensions and `not`, it is used
//! - by a literal that is not itself a `:=` (a condition, a comparison, a
//!   call, `=`, the collection or pattern of `some … in`),
//! - by the rule's head, where an undefined value makes the rule's value
//!   undefined or adds no element: a complete rule's or a function's value,
//!   a partial set's element, a set comprehension's term (array and object
//!   comprehensions on the VM keep an undefined element), or
//! - by the right-hand side of a `:=` that binds a guarded variable.
//!
//! A binding none of whose variables is guarded is a gap. The analysis is
//! conservative: a gap may be harmless, but a guarded binding is not a gap.
//!
//! A reference indexed by an `every` variable outside `not` is a gap of
//! its own ([`super::every_index`]): the VM iterates it instead of looking
//! the variable up.
//!
//! So is a reference to part of a rule tree (`p` or `data.pkg` where a
//! rule `p.q[k]` exists), which the VM reads as the deeper rule's value;
//! [`super::reads`] finds those, since it resolves references to rules.
//!
//! So is an array comprehension's term, or an object comprehension's key or
//! value, that can be undefined once the body holds (a reference, or a call
//! of a function that is not a builtin): the VM keeps the undefined element
//! (`count([t[x] | some x in xs])` counts the misses too), where OPA skips
//! it.

use std::collections::HashSet;

use regorus::unstable::{AssignOp, Expr, Literal, Query, Rule, RuleBody, RuleHead, BUILTINS};

use super::every_index;
use super::expr_walk::{location_of, text_of, variables_in, visit};
use crate::location::Location;

/// A place in a rule that the VM would answer differently from OPA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmGap {
    /// The variable: the one bound (the first, for a destructuring
    /// pattern), or the `every` variable used as an index.
    pub variable: String,
    /// Where the binding or the reference is.
    pub location: Location,
    /// Which of the VM's differences it is.
    pub kind: GapKind,
}

/// The VM's differences from OPA that [`find`] looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapKind {
    /// `x := <expr>` that nothing fails on when `<expr>` is undefined.
    UnfailedBinding,
    /// A reference (as written) indexed by an `every` variable.
    EveryIndex(String),
    /// An array comprehension's term, or an object comprehension's key or
    /// value (as written), that can be undefined.
    UndefinedElement(String),
    /// A reference to part of the rule tree under the named deeper rule
    /// (found by [`super::reads`], which resolves references to rules).
    RuleTreePrefix(String),
    /// A call of a builtin whose result size the VM cannot bound
    /// ([`super::builtin_guards`]).
    UnboundedBuiltin(String),
}

impl std::fmt::Display for VmGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Location { file, row, col } = &self.location;
        match &self.kind {
            GapKind::UnfailedBinding => write!(
                f,
                "{file}:{row}:{col}: `{} := …` is not used by a literal that fails when it is undefined",
                self.variable
            ),
            GapKind::UndefinedElement(element) => write!(
                f,
                "{file}:{row}:{col}: `{element}` can be undefined, and the VM keeps an undefined element in an array or object comprehension"
            ),
            GapKind::UnboundedBuiltin(name) => write!(
                f,
                "{file}:{row}:{col}: `{name}` with arguments that are not short literals: its result is bounded on the interpreter only"
            ),
            GapKind::RuleTreePrefix(deeper) => write!(
                f,
                "{file}:{row}:{col}: `{}` is part of the rule tree under `data.{deeper}`, which the VM reads as that rule's value",
                if self.variable.is_empty() { "data".to_string() } else { format!("data.{}", self.variable) }
            ),
            GapKind::EveryIndex(reference) => write!(
                f,
                "{file}:{row}:{col}: `{reference}` is indexed by the `every` variable `{}`, which the VM iterates instead of looking up",
                self.variable
            ),
        }
    }
}

/// The first gap in `rule`, if it has one.
pub fn find(rule: &Rule) -> Option<VmGap> {
    unfailed_binding(rule)
        .or_else(|| super::builtin_guards::vm_gap(rule))
        .or_else(|| {
            every_index::find(rule)
                .into_iter()
                .find(|found| !found.negated)
                .map(|found| VmGap {
                    variable: found.variable,
                    location: found.location,
                    kind: GapKind::EveryIndex(found.reference),
                })
        })
}

/// The first `:=` binding in `rule` that the VM would not fail.
fn unfailed_binding(rule: &Rule) -> Option<VmGap> {
    let Rule::Spec { head, bodies, .. } = rule else {
        return None;
    };
    // The head's reference and value (a partial set's element). A value
    // comes out undefined, as in OPA, for an undefined binding when it is a
    // complete rule's or a function's value (else values included) or a
    // partial set's element (skipped); so it guards the bindings it uses. A
    // partial object's key and value do not: the VM may keep an undefined
    // one.
    let (refr, value, value_guards): (Option<&Expr>, Option<&Expr>, bool) = match head {
        RuleHead::Compr { refr, assign, .. } => (
            Some(refr),
            assign.as_ref().map(|a| a.value.as_ref()),
            matches!(refr.as_ref(), Expr::Var { .. }),
        ),
        RuleHead::Set { refr, key, .. } => (Some(refr), key.as_deref(), true),
        RuleHead::Func { assign, .. } => (None, assign.as_ref().map(|a| a.value.as_ref()), true),
    };
    // Comprehensions in the head or an else value have bodies of their own.
    let mut head_and_else = refr
        .into_iter()
        .chain(value)
        .chain(bodies.iter().filter_map(else_value));
    if let Some(gap) = head_and_else.find_map(nested_gap) {
        return Some(gap);
    }
    bodies.iter().find_map(|body| {
        let uses: Vec<&Expr> = if value_guards {
            value.into_iter().chain(else_value(body)).collect()
        } else {
            Vec::new()
        };
        query_gap(&body.query, &uses)
    })
}

/// The value an `else` body yields, if it is one.
fn else_value(body: &RuleBody) -> Option<&Expr> {
    body.assign.as_ref().map(|a| a.value.as_ref())
}

/// One `:=` literal of a query.
struct Binding<'a> {
    variables: Vec<String>,
    value: &'a Expr,
    location: Location,
}

/// The first gap in `query`, or in a comprehension or `every` inside it;
/// `head_uses` are the expressions that yield the query's bindings.
fn query_gap(query: &Query, head_uses: &[&Expr]) -> Option<VmGap> {
    let mut bindings = Vec::new();
    let mut guarded = HashSet::new();
    for expr in head_uses {
        variables_in(expr, &mut guarded);
    }
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::Expr { expr, .. } => match expr.as_ref() {
                Expr::AssignExpr {
                    op: AssignOp::ColEq,
                    lhs,
                    rhs,
                    ..
                } => {
                    let mut variables = Vec::new();
                    pattern_variables(lhs, &mut variables);
                    let span = &stmt.span;
                    bindings.push(Binding {
                        variables,
                        value: rhs,
                        location: Location::new(
                            span.source.file().clone(),
                            span.line as usize,
                            span.col as usize,
                        ),
                    });
                }
                other => variables_in(other, &mut guarded),
            },
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                for expr in key.iter().chain([value, collection]) {
                    variables_in(expr, &mut guarded);
                }
            }
            Literal::NotExpr { .. } | Literal::SomeVars { .. } | Literal::Every { .. } => {}
        }
    }
    // A guarded binding guards what its value uses, to a fixed point.
    let mut done = vec![false; bindings.len()];
    loop {
        let mut changed = false;
        for (binding, done) in bindings.iter().zip(done.iter_mut()) {
            if !*done && binding.variables.iter().any(|v| guarded.contains(v)) {
                *done = true;
                changed = true;
                variables_in(binding.value, &mut guarded);
            }
        }
        if !changed {
            break;
        }
    }
    let gap = bindings
        .iter()
        .zip(&done)
        .find(|(binding, done)| !**done && can_be_undefined(binding.value))
        .map(|(binding, _)| VmGap {
            // `_ := <expr>` binds nothing, and nothing can guard it.
            variable: binding
                .variables
                .first()
                .map_or("_", String::as_str)
                .to_string(),
            location: binding.location.clone(),
            kind: GapKind::UnfailedBinding,
        });
    gap.or_else(|| {
        query.stmts.iter().find_map(|stmt| match &stmt.literal {
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => nested_gap(expr),
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => key
                .iter()
                .chain([value, collection])
                .find_map(|e| nested_gap(e)),
            Literal::Every { domain, query, .. } => {
                nested_gap(domain).or_else(|| query_gap(query, &[]))
            }
            Literal::SomeVars { .. } => None,
        })
    })
}

/// The first gap in a comprehension inside `expr`.
fn nested_gap(expr: &Expr) -> Option<VmGap> {
    let mut found = None;
    visit(expr, &mut |node| {
        if found.is_some() {
            return;
        }
        // A set comprehension skips an undefined element; array and
        // object comprehensions on the VM keep it.
        found = match node {
            Expr::SetCompr { term, query, .. } => {
                query_gap(query, &[term]).or_else(|| nested_gap(term))
            }
            Expr::ArrayCompr { term, query, .. } => undefined_element(term)
                .or_else(|| query_gap(query, &[]))
                .or_else(|| nested_gap(term)),
            Expr::ObjectCompr {
                key, value, query, ..
            } => undefined_element(key)
                .or_else(|| undefined_element(value))
                .or_else(|| query_gap(query, &[]))
                .or_else(|| nested_gap(key))
                .or_else(|| nested_gap(value)),
            _ => None,
        };
    });
    found
}

/// A gap when `element`, an array comprehension's term or an object
/// comprehension's key or value, can be undefined where its body holds.
fn undefined_element(element: &Expr) -> Option<VmGap> {
    element_can_be_undefined(element, &|_| false).then(|| VmGap {
        variable: String::new(),
        location: location_of(element),
        kind: GapKind::UndefinedElement(text_of(element).to_string()),
    })
}

/// Whether a comprehension's element can be undefined once its body
/// holds. Variables are defined there (a `:=` binding that may not be is
/// the binding analysis's business); references and calls of functions
/// other than builtins may not be, unless `known_defined` says so.
pub(super) fn element_can_be_undefined(expr: &Expr, known_defined: &dyn Fn(&Expr) -> bool) -> bool {
    let maybe = |e: &Expr| element_can_be_undefined(e, known_defined);
    if known_defined(expr) {
        return false;
    }
    match expr {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::Var { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => false,
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().any(|i| maybe(i)),
        Expr::Object { fields, .. } => fields.iter().any(|(_, k, v)| maybe(k) || maybe(v)),
        Expr::Call { fcn, params, .. } => {
            !BUILTINS.contains_key(text_of(fcn)) || params.iter().any(|p| maybe(p))
        }
        Expr::UnaryExpr { expr, .. } => maybe(expr),
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. } => maybe(lhs) || maybe(rhs),
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => key.as_ref().is_some_and(|k| maybe(k)) || maybe(value) || maybe(collection),
        _ => true,
    }
}

/// Whether `expr` can evaluate to undefined: anything but a constant or a
/// comprehension (which is empty, not undefined, when nothing matches).
fn can_be_undefined(expr: &Expr) -> bool {
    match expr {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => false,
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().any(|item| can_be_undefined(item))
        }
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, key, value)| can_be_undefined(key) || can_be_undefined(value)),
        _ => true,
    }
}

/// The variables a `:=` pattern binds.
fn pattern_variables(pattern: &Expr, out: &mut Vec<String>) {
    match pattern {
        Expr::Var { span, .. } if span.text() != "_" => out.push(span.text().to_string()),
        Expr::Array { items, .. } => {
            for item in items {
                pattern_variables(item, out);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, _, value) in fields {
                pattern_variables(value, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gaps of every rule of `module`, as `variable@row`.
    fn gaps(module: &str) -> Vec<String> {
        crate::engine::tests::each_rule(module, find)
            .into_iter()
            .map(|gap| format!("{}@{}", gap.variable, gap.location.row))
            .collect()
    }

    #[test]
    fn unguarded_bindings_are_gaps() {
        let module = r#"package p
import rego.v1
unused if { x := input.a }
negated if { x := input.a; not startswith(x, "a") }
in_comprehension if { x := input.a; count([1 | x == 1]) == 0 }
only_assigned if { x := input.a; y := {"k": x}; true }
inside contains n if { some n in [1, 2]; count([1 | m := input.a; true]) > 0 }
destructured if { [a, b] := input.pair; not a }
array_term := [m | some f in ["x", "y"]; m := input[f]]
object_value := {f: m | some f in ["x", "y"]; m := input[f]}
object_rule[f] := m if { some f in ["x", "y"]; m := input[f] }
wildcard if { _ := input.a }
in_every if { every n in [1, 2] { y := input.a[n]; not y == 3 } }
in_else := 1 if { false } else := 2 if { y := input.a; not y }
in_function(k) := 1 if { y := input[k]; not y }
with_modifier := 1 if { y := input.a with input.b as 1; not y }
every_index if { every k, _ in input.m { input.allowed[k] } }
looked_up := [input.t[x] | some x in input.xs]
counted := count([input.o[x].name | some x in input.xs])
object_value_lookup := {k: input.t[k] | some k in input.xs}
object_key_lookup := {input.t[k]: k | some k in input.xs}
user_function := [f(x) | some x in input.xs]
f(x) := 1 if { x == 1 }
nested := [[input.t[y] | some y in input.ys] | some x in input.xs]
"#;
        assert_eq!(
            gaps(module),
            [
                "x@3", "x@4", "x@5", "x@6", "m@7", "a@8", "m@9", "m@10", "m@11", "_@12", "y@13",
                "y@14", "y@15", "y@16", "k@17", "@18", "@19", "@20", "@21", "@22", "@24"
            ],
            "every binding the VM would not fail on"
        );
    }

    #[test]
    fn guarded_and_constant_bindings_are_not_gaps() {
        let module = r#"package p
import rego.v1
compared if { x := input.a; x > 1 }
called if { x := input.a; is_string(x); not startswith(x, "a") }
guard_after if { x := input.a; not is_number(x); x != null }
through_binding if { q := input.quota; limit := q.cpu; limit > 4 }
yielded contains v if { x := input.a; v := {"x": x} }
value := x if { x := input.a }
message contains msg if { x := input.a; not x == 1; msg := sprintf("%v", [x]) }
constant if { x := 1; not x == 2 }
comprehension if { xs := [y | some y in input.ys]; count(xs) == 0 }
iterated if { xs := input.xs; some x in xs; not x }
unified if { x = input.a; not x }
f(a) := b if { b := a.c }
set_term := {m | some f in ["x", "y"]; m := input[f]}
member if { x := input.a; x in {1, 2}; not x == 1 }
else_value := 1 if { false } else := m if { m := input.a }
iterated_term := [x | some x in input.xs]
builtin_term := [sprintf("%v", [x]) | some x in input.xs]
dotted_builtin_term := [regex.match("^a", x) | some x in input.xs]
object_of_variables := {k: v | some k, v in input.m}
set_of_lookups := {input.t[x] | some x in input.xs}
"#;
        assert_eq!(gaps(module), Vec::<String>::new());
    }

    use crate::engine::tests::bundle_with;
    use crate::engine::{DataPath, EngineOptions, PolicySet, Value};

    const GAPS: &str = r#"package p
import rego.v1
unused if { x := input.a }
negated contains n if { some n in [1, 2]; x := input.a; not startswith(x, "a") }
in_comprehension if { x := input.a; count([1 | x == 1]) == 0 }
array_term := [m | some f in ["a", "b"]; m := input[f]]
allowed := {"a": true}
every_index if { every k, _ in input.m { allowed[k] } }
counted := count([allowed[k] | some k in input.ks])
tree.q[k] := 1 if { some k in ["x"] }
tree_prefix := tree
"#;

    const GUARDED: &str = r#"package q
import rego.v1
called contains n if { some n in [1, 2]; x := input.a; is_string(x); not startswith(x, "a") }
guard_after contains n if { some n in [1, 2]; x := input.a; not is_number(x); x != null }
through_binding contains n if { some n in [1, 2]; q := input.quota; limit := q.cpu; limit > 4 }
yielded contains v if { x := input.a; v := {"x": x} }
message contains msg if { x := input.a; not x == 1; msg := sprintf("%v", [x]) }
set_term := {m | some f in ["a", "b"]; m := input[f]}
member contains n if { some n in [1, 2]; x := input.a; x in {3, "b"}; not x == 3 }
allowed := {"a": true}
every_member if { every k, _ in input.m { k in object.keys(allowed) } }
every_through_function if { every k, _ in input.m { not refused(k) } }
refused(k) if { not allowed[k] }
"#;

    fn set() -> PolicySet {
        PolicySet::compile(
            &[bundle_with(
                &[("p.rego", GAPS), ("q.rego", GUARDED)],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap()
    }

    fn input(json: &str) -> Option<Value> {
        Some(Value::from_json_str(json).unwrap())
    }

    #[test]
    fn references_to_part_of_a_rule_tree_stay_on_the_interpreter() {
        let tree = r#"package t
import rego.v1
import data.t.p as imported
p.q[k] := 1 if { some k in ["x", "y"] }
through_the_name := p
through_an_import := imported
the_deeper_rule := p.q
one_key := p.q.x
"#;
        let other = "package u\nimport rego.v1\nthrough_data := data.t\n";
        let set = PolicySet::compile(
            &[bundle_with(
                &[("t.rego", tree), ("u.rego", other)],
                serde_json::json!({}),
            )],
            EngineOptions::default(),
        )
        .unwrap();
        let tree_of_p = serde_json::json!({"q": {"x": 1, "y": 1}});
        for (rule, want) in [
            ("t/through_the_name", tree_of_p.clone()),
            ("t/through_an_import", tree_of_p.clone()),
        ] {
            let path = DataPath::parse(rule);
            assert!(!set.runs_on_vm(&path), "{rule} must not run on the VM");
            let got = set.evaluate(&path, None).unwrap();
            let got: serde_json::Value = serde_json::from_str(&got.to_json_str().unwrap()).unwrap();
            assert_eq!(got, want, "{rule}");
        }
        let through_data = DataPath::parse("u/through_data");
        assert!(!set.runs_on_vm(&through_data));
        let got = set.evaluate(&through_data, None).unwrap();
        let got: serde_json::Value = serde_json::from_str(&got.to_json_str().unwrap()).unwrap();
        assert_eq!(got["p"], tree_of_p);
        for rule in ["t/the_deeper_rule", "t/one_key"] {
            assert!(
                set.runs_on_vm(&DataPath::parse(rule)),
                "{rule} runs on the VM"
            );
        }
        let gap = set
            .vm_gaps()
            .iter()
            .find(|(entry, _)| entry == "data.t.through_the_name")
            .map(|(_, gap)| gap.to_string())
            .unwrap();
        assert!(
            gap.ends_with("t.rego:5:21: `data.t.p` is part of the rule tree under `data.t.p.q`, which the VM reads as that rule's value"),
            "{gap}"
        );
    }

    #[test]
    fn entry_points_with_a_gap_stay_on_the_interpreter_and_answer_like_opa() {
        let set = set();
        for rule in [
            "p/unused",
            "p/negated",
            "p/in_comprehension",
            "p/array_term",
            "p/every_index",
            "p/counted",
        ] {
            let path = DataPath::parse(rule);
            assert!(!set.runs_on_vm(&path), "{rule} must not run on the VM");
            for json in ["{}", r#"{"a": "b"}"#, r#"{"m": {"z": 1}}"#] {
                assert_eq!(
                    set.evaluate(&path, input(json)).unwrap(),
                    set.evaluate_interpreted(&path, input(json)).unwrap(),
                    "{rule} with {json}"
                );
            }
        }
        // With `input.a` undefined, OPA fails each body at the binding.
        let negated = set.evaluate(&DataPath::parse("p/negated"), input("{}"));
        assert_eq!(negated.unwrap(), Value::new_set());
        // Only `a` is allowed: OPA counts one element.
        let counted = set.evaluate(
            &DataPath::parse("p/counted"),
            input(r#"{"ks": ["a", "z"]}"#),
        );
        assert_eq!(counted.unwrap(), Value::from(1));
        // `z` is not allowed: OPA finds the rule undefined.
        let every_index = set.evaluate(
            &DataPath::parse("p/every_index"),
            input(r#"{"m": {"z": 1}}"#),
        );
        assert_eq!(every_index.unwrap(), Value::Undefined);
    }

    #[test]
    fn guarded_entry_points_run_on_the_vm_and_answer_like_the_interpreter() {
        let set = set();
        let rules = [
            "called",
            "guard_after",
            "through_binding",
            "yielded",
            "message",
            "set_term",
            "member",
            "every_member",
            "every_through_function",
        ];
        for rule in rules {
            let path = DataPath::parse(&format!("q/{rule}"));
            assert!(set.runs_on_vm(&path), "q/{rule} should run on the VM");
            for json in [
                "{}",
                r#"{"a": "b"}"#,
                r#"{"a": 3, "quota": {"cpu": 8}}"#,
                r#"{"m": {"a": 1}}"#,
                r#"{"m": {"a": 1, "z": 2}}"#,
            ] {
                let on_vm = set
                    .vm
                    .evaluate(
                        path.as_ref_str(),
                        input(json),
                        std::time::Duration::from_secs(1),
                    )
                    .unwrap();
                assert_eq!(
                    on_vm.unwrap(),
                    set.evaluate_interpreted(&path, input(json)).unwrap(),
                    "q/{rule} with {json}"
                );
            }
        }
        // The rewrites the analyses recommend answer like OPA, not merely
        // alike: only `a` is allowed.
        for rule in ["q/every_member", "q/every_through_function"] {
            let path = DataPath::parse(rule);
            let only_allowed = set.evaluate(&path, input(r#"{"m": {"a": 1}}"#));
            assert_eq!(only_allowed.unwrap(), Value::from(true), "{rule}");
            let one_refused = set.evaluate(&path, input(r#"{"m": {"a": 1, "z": 2}}"#));
            assert_eq!(one_refused.unwrap(), Value::Undefined, "{rule}");
        }
    }

    /// Documents the upstream behaviour the analysis works around: when
    /// regorus's VM fails these bodies like OPA does, this test fails, and
    /// the analysis can go.
    #[test]
    fn the_vm_itself_still_differs_on_the_gaps() {
        let engine_set = PolicySet::compile(
            &[bundle_with(&[("p.rego", GAPS)], serde_json::json!({}))],
            EngineOptions::default(),
        )
        .unwrap();
        for (rule, json) in [
            ("data.p.negated", "{}"),
            ("data.p.every_index", r#"{"m": {"z": 1}}"#),
            ("data.p.counted", r#"{"ks": ["a", "z"]}"#),
            ("data.p.tree_prefix", "{}"),
        ] {
            let mut engine = engine_set.template.clone();
            let path = rule.to_string();
            let programs = super::super::vm::VmPrograms::compile(
                &engine,
                [&path].into_iter(),
                regorus::utils::limits::ExecutionTimerConfig {
                    limit: std::time::Duration::from_secs(1),
                    check_interval: std::num::NonZeroU32::MIN,
                },
                false,
            );
            let on_vm = programs
                .evaluate(&path, input(json), std::time::Duration::from_secs(1))
                .unwrap()
                .unwrap();
            engine.set_input(Value::from_json_str(json).unwrap());
            let interpreted = engine.eval_rule(path.clone()).unwrap();
            assert_ne!(
                on_vm, interpreted,
                "the VM now answers {rule} like OPA: drop that part of vm_gaps"
            );
        }
    }
}
