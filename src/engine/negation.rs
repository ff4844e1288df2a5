//! OPA's reading of `not`: the terms nested in a negated expression are
//! evaluated before the negation, so that an undefined one makes the whole
//! literal undefined, where regorus would make the negation true.
//!
//! OPA's compiler moves them out of the expression (`not f(input.x)` runs
//! as `__local0__ = input.x; not f(__local0__)`). The rewrite binds them
//! with `=`, which fails the body on an undefined value on regorus's VM
//! too (its `:=` does not). regorus evaluates the
//! expression as written, so `not data.teams[input.team]` without a team,
//! `not startswith(input.name, "a")` without a name or `not "admin" in
//! input.roles` without roles are true in regorus and undefined in OPA: a
//! guardrail that fails open. Before a module is compiled, this module
//! rewrites its source the same way OPA does, on the line where the literal
//! is (lines keep their numbers):
//!
//! - a call's arguments that are references, calls or composite values
//!   holding them (operators, `in` and functions included) are moved out;
//! - so are references and calls used as keys inside a reference;
//! - the operands of `==` and `=` stay, unless they are calls or composite
//!   values holding references (OPA rewrites `==` to unification);
//! - a wildcard `_` in a negated expression is unsafe in OPA and is refused.
//!
//! `with` modifiers of the literal are repeated on the moved terms, so they
//! are evaluated under them, as in OPA.

use regorus::unstable::{BoolOp, Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};

use super::error::PolicyError;
use super::expr_walk::{comprehension_parts, location_of};

/// The variables the moved terms are bound to.
const HOISTED_PREFIX: &str = "__portcullis_not_";

/// The text of module `id` to compile: `source`, with its negations
/// rewritten when it has any to rewrite. A module regorus cannot parse is
/// returned as it is (compiling it reports the parse error).
pub fn prepare(id: &str, source: &str, rego_v0: bool) -> Result<Rewritten, Vec<PolicyError>> {
    let unchanged = || Rewritten {
        source: source.to_string(),
        map: None,
        warnings: Vec::new(),
    };
    if !source.contains("not") {
        return Ok(unchanged());
    }
    let mut scratch = regorus::Engine::new();
    scratch.set_policy_length_config(super::policy_length());
    scratch.set_rego_v0(rego_v0);
    if scratch
        .add_policy(id.to_string(), source.to_string())
        .is_err()
    {
        return Ok(unchanged());
    }
    let modules = scratch.get_modules();
    let Some(module) = modules.first() else {
        return Ok(unchanged());
    };
    Ok(rewrite(source, module)?.unwrap_or_else(unchanged))
}

/// An ad-hoc query's text with its negations rewritten as in a module
/// (`not f(input.x)` is undefined without `input.x`), or the query as it
/// is when it has none or does not parse (evaluating it reports the
/// error). The moved terms are bound to variables named with
/// [`is_hoisted`] names, which results must not show.
pub fn prepare_query(query: &str) -> Result<String, Vec<PolicyError>> {
    if !query.contains("not") {
        return Ok(query.to_string());
    }
    let Ok(source) = regorus::Source::from_contents("<query>".to_string(), query.to_string())
    else {
        return Ok(query.to_string());
    };
    let Ok(mut parser) = regorus::unstable::Parser::new(&source) else {
        return Ok(query.to_string());
    };
    let Ok(parsed) = parser.parse_user_query() else {
        return Ok(query.to_string());
    };
    let rules = Rules(["input", "data"].into_iter().map(String::from).collect());
    let (mut edits, mut errors, mut warnings, mut counter) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut found = Found {
        edits: &mut edits,
        errors: &mut errors,
        warnings: &mut warnings,
        counter: &mut counter,
    };
    walk_query(query, &parsed, &rules, &mut found);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(apply(query, &edits).0)
}

/// Whether a variable is one the rewrite introduced.
pub fn is_hoisted(name: &str) -> bool {
    name.starts_with(HOISTED_PREFIX)
}

/// A module's text as compiled, and where its rewritten parts came from.
#[derive(Debug)]
pub struct Rewritten {
    /// The text to compile.
    pub source: String,
    /// `None` when the text is the module as written.
    pub map: Option<SourceMap>,
    /// Negations that fail open when an input field is missing, at the
    /// literal as written.
    pub warnings: Vec<PolicyError>,
}

/// Where each byte of a rewritten module was in the module as written, so
/// that errors point at what the author wrote.
#[derive(Debug)]
pub struct SourceMap {
    original: String,
    /// Copied stretches: (start in the rewritten text, length, start in the
    /// original), in order.
    copied: Vec<(usize, usize, usize)>,
    /// Inserted stretches: (start in the rewritten text, length, the
    /// original offset of the literal they belong to).
    inserted: Vec<(usize, usize, usize)>,
    rewritten: String,
}

impl SourceMap {
    /// The original (line, column) of a (line, column) of the rewritten
    /// text, columns counted as regorus counts them (a tab is four).
    pub fn original_position(&self, line: u32, col: u32) -> (u32, u32) {
        let Some(offset) = offset_at(&self.rewritten, line, col) else {
            return (line, col);
        };
        let original = self
            .copied
            .iter()
            .find(|(start, len, _)| (*start..start + len).contains(&offset))
            .map(|(start, _, from)| from + (offset - start))
            .or_else(|| {
                self.inserted
                    .iter()
                    .find(|(start, len, _)| (*start..start + len).contains(&offset))
                    .map(|(_, _, at)| *at)
            });
        match original {
            Some(offset) => position_at(&self.original, offset),
            None => (line, col),
        }
    }
}

/// The byte offset of (line, column) in `text` (a tab is four columns).
fn offset_at(text: &str, line: u32, col: u32) -> Option<usize> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)? as usize)
        .map(str::len)
        .sum();
    let mut at_col = 1;
    for (at, c) in text[line_start..].char_indices() {
        if at_col >= col || c == '\n' {
            return Some(line_start + at);
        }
        at_col += if c == '\t' { 4 } else { 1 };
    }
    Some(text.len())
}

/// The (line, column) of byte `offset` of `text` (a tab is four columns).
fn position_at(text: &str, offset: usize) -> (u32, u32) {
    let (mut line, mut col) = (1u32, 1u32);
    for (at, c) in text.char_indices() {
        if at >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += if c == '\t' { 4 } else { 1 };
        }
    }
    (line, col)
}

/// `source` rewritten so that regorus reads its negations as OPA does, or
/// `None` when it has nothing to rewrite; errors for what OPA refuses.
fn rewrite(source: &str, module: &Module) -> Result<Option<Rewritten>, Vec<PolicyError>> {
    let mut edits = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut counter = 0usize;
    let rules = Rules::of(module);
    let mut found = Found {
        edits: &mut edits,
        errors: &mut errors,
        warnings: &mut warnings,
        counter: &mut counter,
    };
    for rule in &module.policy {
        for query in rule_queries(rule) {
            walk_query(source, query, &rules, &mut found);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if edits.is_empty() {
        return Ok(None);
    }
    edits.sort_by_key(|edit: &Edit| edit.start);
    let (out, copied, inserted) = apply(source, &edits);
    Ok(Some(Rewritten {
        warnings,
        map: Some(SourceMap {
            original: source.to_string(),
            copied,
            inserted,
            rewritten: out.clone(),
        }),
        source: out,
    }))
}

/// Stretches of text: (start in the rewritten text, length, offset in the
/// original).
type Stretches = Vec<(usize, usize, usize)>;

/// `source` with `edits` (in order) applied, and which stretches of the
/// result were copied from where and which were inserted.
fn apply(source: &str, edits: &[Edit]) -> (String, Stretches, Stretches) {
    let mut out = String::with_capacity(source.len() + 64 * edits.len());
    let mut copied = Vec::new();
    let mut inserted = Vec::new();
    let mut copy = |out: &mut String, from: usize, to: usize| {
        copied.push((out.len(), to - from, from));
        out.push_str(&source[from..to]);
    };
    let mut done = 0;
    for edit in edits {
        copy(&mut out, done, edit.start);
        for segment in &edit.text {
            match segment {
                Segment::Copied(from, to) => copy(&mut out, *from, *to),
                Segment::Inserted(text) => {
                    inserted.push((out.len(), text.len(), edit.start));
                    out.push_str(text);
                }
            }
        }
        done = edit.end;
    }
    copy(&mut out, done, source.len());
    (out, copied, inserted)
}

/// What the walk over a module collects.
struct Found<'a> {
    edits: &'a mut Vec<Edit>,
    errors: &'a mut Vec<PolicyError>,
    warnings: &'a mut Vec<PolicyError>,
    counter: &'a mut usize,
}

/// A piece of a rewritten literal.
enum Segment {
    /// `source[from..to]`.
    Copied(usize, usize),
    /// New text.
    Inserted(String),
}

/// The names that are references when used as variables: `input`, `data`
/// and the rules of the module's package.
struct Rules(std::collections::HashSet<String>);

impl Rules {
    fn of(module: &Module) -> Rules {
        let mut names: std::collections::HashSet<String> =
            ["input", "data"].into_iter().map(String::from).collect();
        for rule in &module.policy {
            let refr = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. }
                    | RuleHead::Set { refr, .. }
                    | RuleHead::Func { refr, .. } => refr,
                },
                Rule::Default { refr, .. } => refr,
            };
            let mut root = refr.as_ref();
            while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = root {
                root = refr;
            }
            if let Expr::Var { span, .. } = root {
                names.insert(span.text().to_string());
            }
        }
        Rules(names)
    }

    fn names_a_reference(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// Replace `source[start..end]` with `text`.
struct Edit {
    start: usize,
    end: usize,
    text: Vec<Segment>,
}

/// The queries directly in a rule: its bodies (with their `else`s).
fn rule_queries(rule: &Rule) -> Vec<&Query> {
    let mut queries = Vec::new();
    let mut exprs: Vec<&Expr> = Vec::new();
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    exprs.push(refr);
                    exprs.extend(assign.iter().map(|a| a.value.as_ref()));
                }
                RuleHead::Set { refr, key, .. } => {
                    exprs.push(refr);
                    exprs.extend(key.iter().map(|k| k.as_ref()));
                }
                RuleHead::Func { assign, .. } => {
                    exprs.extend(assign.iter().map(|a| a.value.as_ref()));
                }
            }
            for body in bodies {
                exprs.extend(body.assign.iter().map(|a| a.value.as_ref()));
                queries.push(body.query.as_ref());
            }
        }
        Rule::Default { value, .. } => exprs.push(value),
    }
    for expr in exprs {
        comprehension_queries(expr, &mut queries);
    }
    queries
}

/// The queries of the comprehensions in `expr` (outermost ones: their own
/// nested queries are walked with them).
fn comprehension_queries<'a>(expr: &'a Expr, out: &mut Vec<&'a Query>) {
    super::expr_walk::visit(expr, &mut |node| {
        if let Some((elements, query)) = comprehension_parts(node) {
            out.push(query);
            for element in elements {
                comprehension_queries(element, out);
            }
        }
    });
}

fn walk_query(source: &str, query: &Query, rules: &Rules, found: &mut Found<'_>) {
    for stmt in &query.stmts {
        // Nested queries first: comprehensions anywhere in the literal and
        // `every` bodies.
        let mut nested = Vec::new();
        for expr in super::expr_walk::literal_exprs(&stmt.literal).0 {
            comprehension_queries(expr, &mut nested);
        }
        for modifier in &stmt.with_mods {
            comprehension_queries(&modifier.r#as, &mut nested);
        }
        if let Literal::Every { query, .. } = &stmt.literal {
            nested.push(query);
        }
        for query in nested {
            walk_query(source, query, rules, found);
        }
        if let Literal::NotExpr { expr, .. } = &stmt.literal {
            negated(source, stmt, expr, rules, found);
        }
    }
}

/// Plan the rewrite of one negated literal.
fn negated(source: &str, stmt: &LiteralStmt, expr: &Expr, rules: &Rules, found: &mut Found<'_>) {
    let mut wildcard = None;
    super::expr_walk::visit(expr, &mut |node| {
        if let Expr::Var { span, .. } = node {
            if span.text() == "_" && wildcard.is_none() {
                wildcard = Some(location_of(node));
            }
        }
    });
    if let Some(location) = wildcard {
        found.errors.push(PolicyError {
            message: "rego_unsafe_var_error: var _ is unsafe (a wildcard under `not` is \
                      unsafe in OPA; bind it before the negation, e.g. `some i` and `xs[i]`)"
                .to_string(),
            location: Some(location),
        });
        return;
    }
    let mut moved: Vec<&Expr> = Vec::new();
    movable_terms(expr, true, rules, &mut moved);
    if moved.is_empty() {
        return;
    }
    let Some((lit_start, lit_end)) = literal_range(source, stmt) else {
        return;
    };
    let ranges: Vec<(usize, usize)> = moved.iter().filter_map(|t| range_of(source, t)).collect();
    if ranges.len() != moved.len()
        || ranges
            .iter()
            .any(|&(start, end)| start < lit_start || end > lit_end || start >= end)
    {
        return;
    }
    let (with_range, stmt_end) = match (stmt.with_mods.first(), stmt.with_mods.last()) {
        (Some(first), Some(last)) => {
            let start = first.span.start as usize;
            let end = last.span.end as usize;
            match source.get(start..end) {
                Some(text) if text.starts_with("with") && start >= lit_end => {
                    (Some((start, end)), end)
                }
                _ => return,
            }
        }
        _ => (None, lit_end),
    };
    let with_segments = || -> Vec<Segment> {
        with_range
            .map(|(from, to)| vec![Segment::Inserted(" ".into()), Segment::Copied(from, to)])
            .unwrap_or_default()
    };
    if found
        .edits
        .iter()
        .any(|edit| edit.start < stmt_end && lit_start < edit.end)
    {
        // A negation inside a comprehension inside this one was rewritten
        // already; rewriting both would overlap.
        return;
    }
    let braceless = preceded_by_if(source, lit_start);
    let mut text = Vec::new();
    if braceless {
        text.push(Segment::Inserted("{ ".into()));
    }
    let mut names = Vec::new();
    for &(start, end) in &ranges {
        let name = format!("{HOISTED_PREFIX}{}", found.counter);
        *found.counter += 1;
        text.push(Segment::Inserted(format!("{name} = ")));
        text.push(Segment::Copied(start, end));
        text.extend(with_segments());
        text.push(Segment::Inserted("; ".into()));
        names.push((start, end, name));
    }
    names.sort_by_key(|(start, _, _)| *start);
    let mut at = lit_start;
    for (start, end, name) in names {
        text.push(Segment::Copied(at, start));
        text.push(Segment::Inserted(name));
        at = end;
    }
    text.push(Segment::Copied(at, lit_end));
    text.extend(with_segments());
    if braceless {
        text.push(Segment::Inserted(" }".into()));
    }
    found.edits.push(Edit {
        start: lit_start,
        end: stmt_end,
        text,
    });
    if let Some(read) = moved.iter().find(|term| reads_input(term)) {
        found.warnings.push(PolicyError {
            message: format!(
                "`{}` is undefined, not true, when `{}` is missing (as in OPA), so this \
                 literal never holds then: a rule that denies through it fails open; read the \
                 field with object.get(input, …, default) or through a rule with a default \
                 (docs/opa-compatibility.md#negation)",
                source[lit_start..lit_end].trim(),
                super::expr_walk::text_of(read),
            ),
            location: Some(location_of(expr)),
        });
    }
}

/// Whether `term` reads a field of `input` (which a request may leave
/// out); `input` itself, as in `object.get(input, k, d)`, is not flagged.
fn reads_input(term: &Expr) -> bool {
    let mut found = false;
    super::expr_walk::visit(term, &mut |node| {
        if let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = node {
            let mut root = refr.as_ref();
            while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = root {
                root = refr;
            }
            found |= matches!(root, Expr::Var { span, .. } if span.text() == "input");
        }
    });
    found
}

/// The terms of a negated `expr` that OPA evaluates before the negation
/// (outermost ones), added to `out`. `top` is true for the negated
/// expression itself.
fn movable_terms<'a>(expr: &'a Expr, top: bool, rules: &Rules, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Call { params, .. } => {
            if !top {
                out.push(expr);
                return;
            }
            for param in params {
                argument(param, rules, out);
            }
        }
        Expr::BoolExpr {
            op: BoolOp::Eq,
            lhs,
            rhs,
            ..
        }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            for operand in [lhs, rhs] {
                operand_of_unification(operand, rules, out);
            }
        }
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. } => {
            if !top {
                out.push(expr);
                return;
            }
            argument(lhs, rules, out);
            argument(rhs, rules, out);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if !top {
                out.push(expr);
                return;
            }
            for part in key.iter().chain([value, collection]) {
                argument(part, rules, out);
            }
        }
        Expr::RefDot { .. } | Expr::RefBrack { .. } => dynamic_keys(expr, rules, out),
        Expr::UnaryExpr { expr: inner, .. } => argument(inner, rules, out),
        _ => {}
    }
}

/// An argument of a call: moved when it is a reference, a call, or a
/// composite value that holds one.
fn argument<'a>(arg: &'a Expr, rules: &Rules, out: &mut Vec<&'a Expr>) {
    if holds_reference_or_call(arg, rules) {
        out.push(arg);
    }
}

/// An operand of `==` or `=`: a reference stays (its dynamic keys move),
/// a call or a composite value holding references moves.
fn operand_of_unification<'a>(operand: &'a Expr, rules: &Rules, out: &mut Vec<&'a Expr>) {
    match operand {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => dynamic_keys(operand, rules, out),
        Expr::Var { .. } => {}
        _ => argument(operand, rules, out),
    }
}

/// The keys of a reference that are references or calls themselves.
fn dynamic_keys<'a>(expr: &'a Expr, rules: &Rules, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::RefDot { refr, .. } => dynamic_keys(refr, rules, out),
        Expr::RefBrack { refr, index, .. } => {
            dynamic_keys(refr, rules, out);
            if holds_reference_or_call(index, rules) {
                out.push(index);
            }
        }
        Expr::Call { .. } => out.push(expr),
        _ => {}
    }
}

/// Whether evaluating `expr` reads a reference or calls a function (a
/// literal or a local variable does neither; comprehensions are their own
/// scope and always defined). A variable is a reference in OPA when it
/// names `input`, `data` or a rule of the package.
fn holds_reference_or_call(expr: &Expr, rules: &Rules) -> bool {
    let mut found = false;
    super::expr_walk::visit(expr, &mut |node| {
        if let Expr::Var { span, .. } = node {
            found |= rules.names_a_reference(span.text());
        }
        if matches!(
            node,
            Expr::RefDot { .. }
                | Expr::RefBrack { .. }
                | Expr::Call { .. }
                | Expr::ArithExpr { .. }
                | Expr::BinExpr { .. }
                | Expr::BoolExpr { .. }
                | Expr::Membership { .. }
        ) {
            found = true;
        }
    });
    found
}

/// Where an expression's text is in `source`, as byte offsets.
fn range_of(source: &str, expr: &Expr) -> Option<(usize, usize)> {
    let start = super::expr_walk::start_offset(source, expr)?;
    let end = end_byte(source, expr);
    (start < end
        && end <= source.len()
        && source.is_char_boundary(start)
        && source.is_char_boundary(end))
    .then_some((start, end))
}

/// Where an expression ends: a binary expression where its right operand
/// does, a string after its closing quote.
fn end_byte(source: &str, expr: &Expr) -> usize {
    match expr {
        Expr::BinExpr { rhs, .. }
        | Expr::BoolExpr { rhs, .. }
        | Expr::ArithExpr { rhs, .. }
        | Expr::AssignExpr { rhs, .. } => end_byte(source, rhs),
        Expr::Membership { collection, .. } => end_byte(source, collection),
        Expr::String { span, .. } | Expr::RawString { span, .. } => {
            let end = span.end as usize;
            let quoted = matches!(source.as_bytes().get(end), Some(b'"' | b'`'));
            if quoted {
                end + 1
            } else {
                end
            }
        }
        other => other.span().end as usize,
    }
}

/// The text of a literal without its `with` modifiers: from `not` to the
/// end of the negated expression.
fn literal_range(source: &str, stmt: &LiteralStmt) -> Option<(usize, usize)> {
    let Literal::NotExpr { span, expr } = &stmt.literal else {
        return None;
    };
    let start = span.start as usize;
    let end = end_byte(source, expr);
    source
        .get(start..end)?
        .starts_with("not")
        .then_some((start, end))
}

/// Whether the text before `at` ends with the keyword `if` (a body written
/// without braces, which must get them to hold more than one literal).
fn preceded_by_if(source: &str, at: usize) -> bool {
    let before = source[..at].trim_end();
    before.ends_with("if")
        && before[..before.len() - 2]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(source: &str) -> String {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("t.rego".to_string(), source.to_string())
            .unwrap();
        let modules = engine.get_modules();
        match rewrite(source, &modules[0]).unwrap() {
            Some(rewritten) => rewritten.source,
            None => source.to_string(),
        }
    }

    #[test]
    fn call_arguments_move_out_of_the_negation() {
        assert_eq!(
            rewritten("package t\nx if not f(input.a)\nf(_) := true\n"),
            "package t\nx if { __portcullis_not_0 = input.a; not f(__portcullis_not_0) }\nf(_) := true\n"
        );
    }

    #[test]
    fn a_dynamic_key_moves_and_a_plain_reference_stays() {
        assert_eq!(
            rewritten("package t\nx if {\n\tnot data.q[input.team]\n\tnot input.usage\n}\n"),
            "package t\nx if {\n\t__portcullis_not_0 = input.team; not data.q[__portcullis_not_0]\n\tnot input.usage\n}\n"
        );
    }

    #[test]
    fn equality_keeps_reference_operands() {
        let source = "package t\nx if not input.x == 1\n";
        assert_eq!(rewritten(source), source);
        assert_eq!(
            rewritten("package t\nx if not count(input.xs) == 0\n"),
            "package t\nx if { __portcullis_not_0 = count(input.xs); not __portcullis_not_0 == 0 }\n"
        );
    }

    #[test]
    fn with_modifiers_apply_to_the_moved_terms() {
        assert_eq!(
            rewritten("package t\nx if not f(input.a) with input as {}\nf(_) := true\n"),
            "package t\nx if { __portcullis_not_0 = input.a with input as {}; not f(__portcullis_not_0) with input as {} }\nf(_) := true\n"
        );
    }

    #[test]
    fn a_wildcard_under_not_is_refused_where_it_is() {
        let source = "package t\nx if {\n  not startswith(input.xs[_], \"b\")\n}\n";
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("t.rego".to_string(), source.to_string())
            .unwrap();
        let errors = rewrite(source, &engine.get_modules()[0]).unwrap_err();
        assert!(errors[0].message.contains("var _ is unsafe"), "{errors:?}");
        let location = errors[0].location.as_ref().unwrap();
        assert_eq!((location.row, location.col), (3, 27));
    }
}
