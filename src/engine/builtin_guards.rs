//! Bounds on the builtins whose result can be far larger than their
//! arguments, so that one call cannot spend gigabytes or seconds where
//! regorus's cooperative time limit cannot interrupt it.
//!
//! `numbers.range(1, 1e9)`, `sprintf("%0999999999d", [1])`, a `replace`
//! or `concat` that multiplies its input: each is one builtin call, and
//! regorus checks its time limit only between steps of evaluation. Two
//! layers keep them bounded:
//! - On the interpreter (every ad-hoc query, and every entry point kept
//!   off the VM), each such builtin is replaced by an extension that
//!   computes the size of the result from the arguments first and fails
//!   with an `eval_builtin_error` over the limit; under it, the result is
//!   regorus's own (the call is handed to its builtin), so answers are
//!   unchanged (an error it raises is placed at the call rather than at the
//!   argument).
//! - The VM calls regorus's builtins directly, so an entry point calling
//!   one of them with arguments that could make the result large (a range
//!   whose bounds are not small literals, a format that is not a literal)
//!   is kept on the interpreter ([`vm_gap`]).

use regorus::unstable::{Expr, Ref, Rule, Source, Span};
use regorus::Value;

use super::expr_walk::{each_call, location_of, text_of};
use super::vm_gaps::{GapKind, VmGap};

/// The builtins bounded here.
pub const GUARDED: [&str; 6] = [
    "numbers.range",
    "numbers.range_step",
    "sprintf",
    "concat",
    "replace",
    "strings.replace_n",
];

/// Bytes one element of a range is counted as.
const RANGE_ELEMENT_BYTES: u64 = 16;

/// Fail when the result of `name(args)`, one of the [`GUARDED`] builtins,
/// would take more than `max_bytes`: a resource limit, raised whatever the
/// strict-builtin-errors mode (a regorus [`regorus::LimitError`]).
pub fn check_size(name: &str, args: &[Value], max_bytes: u64) -> anyhow::Result<()> {
    if !GUARDED.contains(&name) {
        return Ok(());
    }
    match result_size(name, args) {
        Some(size) if size > max_bytes => Err(anyhow::Error::new(
            regorus::LimitError::MemoryLimitExceeded {
                usage: size,
                limit: max_bytes,
            },
        )
        .context(format!(
            "eval_builtin_error: {name}: the result would take about {size} bytes, \
             over the limit of {max_bytes} (limits.max_builtin_result_bytes)"
        ))),
        _ => Ok(()),
    }
}

/// Call builtin `f` as regorus calls its own, from an extension (which
/// has no span or argument expressions of its own): errors name the
/// builtin.
pub(super) fn call_detached(
    name: &str,
    f: super::opa_builtins::Builtin,
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    let span = call_span(name)?;
    let params: Vec<Ref<Expr>> = args
        .iter()
        .map(|_| {
            Ref::new(Expr::Null {
                span: span.clone(),
                value: Value::Null,
                eidx: 0,
            })
        })
        .collect();
    f(&span, &params, args, strict)
}

/// A span naming the builtin, for the errors regorus's builtin raises.
fn call_span(name: &str) -> anyhow::Result<Span> {
    let text = format!("{name}(...)");
    let end = text.len() as u32;
    Ok(Span {
        source: Source::from_contents(format!("<{name}>"), text)?,
        line: 1,
        col: 1,
        start: 0,
        end,
    })
}

/// An upper bound of the bytes the result of `name(args)` takes, computed
/// without building it; `None` when the arguments are not of the types
/// the builtin takes (it then fails or is undefined by itself).
fn result_size(name: &str, args: &[Value]) -> Option<u64> {
    match (name, args) {
        ("numbers.range", [from, to]) => {
            let span = (number(to)? - number(from)?).abs();
            Some(elements_bytes(span))
        }
        ("numbers.range_step", [from, to, step]) => {
            let step = number(step)?;
            if step <= 0.0 {
                return None;
            }
            Some(elements_bytes((number(to)? - number(from)?).abs() / step))
        }
        ("sprintf", [format, values]) => {
            let format = format.as_string().ok()?;
            let values_len = match values {
                Value::Array(items) => items.iter().map(text_len).sum::<u64>(),
                _ => 0,
            };
            Some(format.len() as u64 + format_padding(format) + values_len)
        }
        ("concat", [delimiter, items]) => {
            let delimiter = delimiter.as_string().ok()?.len() as u64;
            let (count, total) = match items {
                Value::Array(items) => (items.len(), items.iter().map(text_len).sum::<u64>()),
                Value::Set(items) => (items.len(), items.iter().map(text_len).sum::<u64>()),
                _ => return None,
            };
            Some(total + delimiter.saturating_mul(count as u64))
        }
        ("replace", [text, old, new]) => {
            let (text, old, new) = (
                text.as_string().ok()?,
                old.as_string().ok()?,
                new.as_string().ok()?,
            );
            Some(replaced_size(text, old, new.len()))
        }
        ("strings.replace_n", [patterns, text]) => {
            let text = text.as_string().ok()?;
            let Value::Object(patterns) = patterns else {
                return None;
            };
            let mut size = text.len() as u64;
            for (old, new) in patterns.iter() {
                let (old, new) = (old.as_string().ok()?, new.as_string().ok()?);
                size = size.saturating_add(replaced_size(text, old, new.len()));
            }
            Some(size)
        }
        _ => None,
    }
}

/// A number as a float, approximately when it is a large integer (a size
/// estimate needs no more).
fn number(value: &Value) -> Option<f64> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_f64()
        .or_else(|| n.as_i64().map(|v| v as f64))
        .or_else(|| n.as_u64().map(|v| v as f64))
        .or_else(|| n.format_decimal().parse().ok())
}

fn elements_bytes(span: f64) -> u64 {
    if span.is_finite() {
        ((span + 1.0) as u64).saturating_mul(RANGE_ELEMENT_BYTES)
    } else {
        u64::MAX
    }
}

/// The length of a value when it is a string (what concat and sprintf
/// copy); other values count as short.
fn text_len(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64,
        _ => 32,
    }
}

/// An upper bound of `text` with every `old` replaced by a string of
/// `new_len` bytes (an empty `old` matches before every character and at
/// the end, as Go's strings.Replace does).
fn replaced_size(text: &str, old: &str, new_len: usize) -> u64 {
    let matches = if old.is_empty() {
        text.chars().count() as u64 + 1
    } else {
        memchr::memmem::find_iter(text.as_bytes(), old.as_bytes()).count() as u64
    };
    (text.len() as u64).saturating_add(matches.saturating_mul(new_len as u64))
}

/// The most padding a format's widths and precisions can add: the sum of
/// every number in a `%` directive (Go's `%08.3f`: 8 and 3).
fn format_padding(format: &str) -> u64 {
    let mut total = 0u64;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut number = 0u64;
        while let Some(&next) = chars.peek() {
            match next {
                '0'..='9' => {
                    number = number
                        .saturating_mul(10)
                        .saturating_add(u64::from(next as u8 - b'0'));
                }
                '.' | '+' | '-' | '#' | ' ' => {
                    total = total.saturating_add(number);
                    number = 0;
                }
                _ => break,
            }
            chars.next();
        }
        total = total.saturating_add(number);
        chars.next();
    }
    total
}

/// A call in `rule` whose result regorus's VM could not bound: a guarded
/// builtin whose size-deciding arguments are not literals small enough
/// (a `numbers.range` over input, a format that is not a literal string,
/// a delimiter or replacement that is not a short literal). The entry
/// points reaching it stay on the interpreter, where [`register`] bounds
/// the call.
pub fn vm_gap(rule: &Rule) -> Option<VmGap> {
    let mut found = None;
    each_call(rule, &mut |call| {
        let Expr::Call { fcn, params, .. } = call else {
            return;
        };
        if found.is_some() {
            return;
        }
        let name = text_of(fcn);
        if !GUARDED.contains(&name) || literal_call_is_bounded(name, params, VM_LITERAL_BYTES) {
            return;
        }
        found = Some(VmGap {
            variable: name.to_string(),
            location: location_of(fcn),
            kind: GapKind::UnboundedBuiltin(name.to_string()),
        });
    });
    found
}

/// The largest result a call with literal arguments may have and stay on
/// the VM (a larger one is bounded on the interpreter, by the configured
/// limit).
const VM_LITERAL_BYTES: u64 = 1 << 20;

/// The longest literal (a delimiter, a replacement) that keeps a call on
/// the VM: what it multiplies is bounded by the request body.
const SHORT_LITERAL: usize = 16;

/// Whether the arguments that decide the size of `name`'s result are
/// literals that keep it within `max_bytes` (times the input it copies).
fn literal_call_is_bounded(name: &str, params: &[Ref<Expr>], max_bytes: u64) -> bool {
    let literal = |expr: &Expr| -> Option<Value> {
        match expr {
            Expr::String { value, .. }
            | Expr::RawString { value, .. }
            | Expr::Number { value, .. } => Some(value.clone()),
            _ => None,
        }
    };
    let short = |expr: &Expr| {
        literal(expr)
            .and_then(|v| v.as_string().ok().map(|s| s.len()))
            .is_some_and(|len| len <= SHORT_LITERAL)
    };
    match (name, params) {
        // A range up to the size of a collection that exists already
        // (`numbers.range(1, count(parts))`) is no larger than it.
        ("numbers.range", [from, to]) if is_count(from) || is_count(to) => {
            (literal(from).is_some() || is_count(from)) && (literal(to).is_some() || is_count(to))
        }
        ("numbers.range", [from, to]) => match (literal(from), literal(to)) {
            (Some(from), Some(to)) => {
                result_size(name, &[from, to]).is_some_and(|size| size <= max_bytes)
            }
            _ => false,
        },
        ("numbers.range_step", [from, to, step]) => {
            match (literal(from), literal(to), literal(step)) {
                (Some(from), Some(to), Some(step)) => {
                    result_size(name, &[from, to, step]).is_some_and(|size| size <= max_bytes)
                }
                _ => false,
            }
        }
        ("sprintf", [format, _]) => literal(format)
            .and_then(|f| f.as_string().ok().map(|f| format_padding(f) <= max_bytes))
            .unwrap_or(false),
        ("concat", [delimiter, _]) => short(delimiter),
        ("replace", [_, old, new]) => {
            short(new)
                && literal(old)
                    .and_then(|o| o.as_string().ok().map(|o| !o.is_empty()))
                    .unwrap_or(false)
        }
        _ => false,
    }
}

/// `count(x)`, or `count(x)` plus or minus a number literal.
fn is_count(expr: &Expr) -> bool {
    match expr {
        Expr::Call { fcn, .. } => text_of(fcn) == "count",
        Expr::ArithExpr { lhs, rhs, .. } => {
            (is_count(lhs) && matches!(rhs.as_ref(), Expr::Number { .. }))
                || (is_count(rhs) && matches!(lhs.as_ref(), Expr::Number { .. }))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(max_bytes: u64) -> regorus::Engine {
        let mut engine = regorus::Engine::new();
        super::super::opa_builtins::register(&mut engine, max_bytes, true).unwrap();
        engine
    }

    fn query(engine: &mut regorus::Engine, q: &str) -> Result<Value, String> {
        engine
            .eval_query(q.to_string(), false)
            .map(|r| {
                r.result
                    .first()
                    .map(|row| row.expressions[0].value.clone())
                    .unwrap_or(Value::Undefined)
            })
            .map_err(|err| format!("{err:#}"))
    }

    #[test]
    fn small_results_are_regorus_own() {
        let mut e = engine(1 << 20);
        assert_eq!(
            query(&mut e, "numbers.range(1, 3)").unwrap(),
            Value::from(vec![Value::from(1), Value::from(2), Value::from(3)])
        );
        assert_eq!(
            query(&mut e, "numbers.range_step(0, 10, 5)").unwrap(),
            Value::from(vec![Value::from(0), Value::from(5), Value::from(10)])
        );
        assert_eq!(
            query(&mut e, r#"sprintf("%05d|%s|%v", [42, "a", [1]])"#).unwrap(),
            Value::from("00042|a|[1]")
        );
        assert_eq!(
            query(&mut e, r#"concat(", ", ["a", "b"])"#).unwrap(),
            Value::from("a, b")
        );
        assert_eq!(
            query(&mut e, r#"replace("a.b.c", ".", "::")"#).unwrap(),
            Value::from("a::b::c")
        );
        assert_eq!(
            query(&mut e, r#"strings.replace_n({"a": "x", "b": "y"}, "aabb")"#).unwrap(),
            Value::from("xxyy")
        );
        // Wrong types are regorus's business: its own error, as before.
        let err = query(&mut e, r#"numbers.range("a", 3)"#).unwrap_err();
        assert!(err.contains("expects numeric argument"), "{err}");
    }

    #[test]
    fn under_the_bound_answers_are_the_unguarded_engine_s() {
        let mut guarded = engine(1 << 20);
        let mut plain = engine(u64::MAX);
        for q in [
            "x := numbers.range(1.5, 3)",
            "x := numbers.range(3, 1)",
            "x := numbers.range_step(10, 0, 3)",
            "x := numbers.range_step(0, 10, 0)",
            r#"x := sprintf("%d %v %s %x", [1, {"a": [1]}, "s", 255])"#,
            r#"x := sprintf("%5.2f|%-4d|%q", [3.14159, 7, "q"])"#,
            r#"x := sprintf(1, [])"#,
            r#"x := concat(", ", {"b", "a"})"#,
            r#"x := concat(", ", [1, 2])"#,
            r#"x := replace("aaa", "", "-")"#,
            r#"x := replace(1, "a", "b")"#,
            r#"x := strings.replace_n({"a": "b", "b": "c"}, "ab")"#,
            r#"x := strings.replace_n({"a": 1}, "ab")"#,
            r#"not numbers.range(1.5, 3)"#,
        ] {
            // Values are identical; an error says the same, placed at the
            // call rather than at the argument.
            let last_line = |r: Result<Value, String>| {
                r.map_err(|e| e.lines().last().unwrap_or_default().to_string())
            };
            assert_eq!(
                last_line(query(&mut guarded, q)),
                last_line(query(&mut plain, q)),
                "{q}"
            );
        }
    }

    #[test]
    fn large_results_fail_before_they_are_built() {
        let mut e = engine(4 << 10);
        let long = "x".repeat(500);
        let many: Vec<String> = (0..20).map(|i| format!("\"{i}\"")).collect();
        for q in [
            "count(numbers.range(1, 50000000))".to_string(),
            "count(numbers.range(1, 1e18))".to_string(),
            "numbers.range(-1e30, 1e30)".to_string(),
            "numbers.range_step(1, 1e12, 2)".to_string(),
            r#"sprintf("%0999999999d", [1])"#.to_string(),
            r#"sprintf("%.999999999f", [1])"#.to_string(),
            format!(r#"replace("aaaaaaaaaaaaaaaa", "", "{long}")"#),
            format!(r#"concat("{long}", [{}])"#, many.join(", ")),
            format!(r#"strings.replace_n({{"a": "{long}"}}, "aaaaaaaaaaaaaaaa")"#),
        ] {
            let shown = &q[..40.min(q.len())];
            let err = query(&mut e, &q).expect_err(shown);
            let tail = &err[err.len().saturating_sub(300)..];
            assert!(
                err.contains("limits.max_builtin_result_bytes"),
                "{shown}: {tail}"
            );
        }
    }

    #[test]
    fn format_padding_adds_every_width_and_precision() {
        assert_eq!(format_padding("plain"), 0);
        assert_eq!(format_padding("%d %s"), 0);
        assert_eq!(format_padding("%05d and %8.3f and %-10s"), 5 + 8 + 3 + 10);
        assert_eq!(format_padding("%%"), 0);
        assert_eq!(format_padding("%0999999999999999999999d"), u64::MAX);
    }

    fn gap(source: &str) -> Option<String> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("t.rego".into(), format!("package t\n{source}\n"))
            .unwrap();
        let modules = engine.get_modules();
        let rule = &modules[0].policy[0];
        vm_gap(rule).map(|g| g.to_string())
    }

    #[test]
    fn calls_the_vm_cannot_bound_keep_their_entry_point_off_it() {
        for bounded in [
            "x := numbers.range(1, 10)",
            "x := numbers.range(1, count(input.parts))",
            "x := numbers.range(0, count(input.parts) - 1)",
            r#"x := sprintf("%s has %05d", [input.a, input.b])"#,
            r#"x := concat(", ", input.items)"#,
            r#"x := replace(input.s, ".", "::")"#,
        ] {
            assert_eq!(gap(bounded), None, "{bounded}");
        }
        for unbounded in [
            "x := numbers.range(1, input.n)",
            "x := numbers.range(1, 1e12)",
            "x := numbers.range_step(1, input.n, 2)",
            "x := sprintf(input.format, [1])",
            r#"x := sprintf("%0999999999d", [1])"#,
            "x := concat(input.sep, input.items)",
            r#"x := replace(input.s, "", "x")"#,
            r#"x := strings.replace_n(input.patterns, input.s)"#,
        ] {
            let found = gap(unbounded).unwrap_or_else(|| panic!("{unbounded}: no gap"));
            assert!(found.contains("t.rego:2:"), "{found}");
        }
    }
}
