//! `sum` and `product` over non-integers computed on the decimal values,
//! as OPA's arbitrary-precision arithmetic gives them: `sum([0.1, 0.2])`
//! is `0.3`, not `0.30000000000000004`. Integers keep regorus's exact
//! arithmetic; a decimal too wide for 128 bits falls back to floats.

use anyhow::{bail, Result};
use regorus::unstable::{Expr, Ref, Span, BUILTINS};
use regorus::Value;

use super::collection_items;

/// A number as `mantissa × 10^exponent`, from its shortest decimal text.
fn decimal(value: &Value) -> Option<(i128, i32)> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        return Some((i128::from(i), 0));
    }
    let f = n.as_f64()?;
    // Rust's `{:e}` is the shortest text that reads back as `f`.
    let text = format!("{f:e}");
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    Some((digits, exponent - fraction.len() as i32))
}

fn scale(mantissa: i128, by: i32) -> Option<i128> {
    10i128
        .checked_pow(u32::try_from(by).ok()?)?
        .checked_mul(mantissa)
}

fn to_value(mantissa: i128, exponent: i32) -> Option<Value> {
    if exponent >= 0 {
        let whole = scale(mantissa, exponent)?;
        return Some(Value::from(i64::try_from(whole).ok()?));
    }
    let f: f64 = format!("{mantissa}e{exponent}").parse().ok()?;
    Some(Value::from(f))
}

fn all_integers(items: &[&Value]) -> bool {
    items
        .iter()
        .all(|v| matches!(v, Value::Number(n) if n.is_integer()))
}

fn regorus(
    name: &str,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> Result<Value> {
    match BUILTINS.get(name) {
        Some((f, _)) => f(span, params, args, strict),
        None => bail!("{name} is not available"),
    }
}

/// `sum`.
pub fn sum(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let items = collection_items("sum", &args[0])?;
    if all_integers(&items) {
        return regorus("sum", span, params, args, strict);
    }
    let exact = || -> Option<Value> {
        let parts: Vec<(i128, i32)> = items.iter().map(|v| decimal(v)).collect::<Option<_>>()?;
        let exponent = parts.iter().map(|(_, e)| *e).min()?;
        let mut total: i128 = 0;
        for (mantissa, e) in parts {
            total = total.checked_add(scale(mantissa, e - exponent)?)?;
        }
        to_value(total, exponent)
    };
    match exact() {
        Some(value) => Ok(value),
        None => regorus("sum", span, params, args, strict),
    }
}

/// `product`.
pub fn product(span: &Span, params: &[Ref<Expr>], args: &[Value], strict: bool) -> Result<Value> {
    let items = collection_items("product", &args[0])?;
    if all_integers(&items) {
        return regorus("product", span, params, args, strict);
    }
    let exact = || -> Option<Value> {
        let mut mantissa: i128 = 1;
        let mut exponent: i32 = 0;
        for value in &items {
            let (m, e) = decimal(value)?;
            mantissa = mantissa.checked_mul(m)?;
            exponent = exponent.checked_add(e)?;
        }
        to_value(mantissa, exponent)
    };
    match exact() {
        Some(value) => Ok(value),
        None => regorus("product", span, params, args, strict),
    }
}
