//! `sprintf` as OPA computes it: Go's `fmt.Sprintf` over the values
//! converted as OPA converts them.
//!
//! OPA hands Go an integer as `int` (`*big.Int` beyond 64 bits), any other
//! number as `float64`, a string as `string`, and every other value as
//! the string of its Rego text (`[1, "a"]`, `true`, `null`). Go's rules
//! then apply: `%v` of a float is `%g` with the shortest digits (`1e+09`),
//! a verb that does not fit its argument prints `%!d(float64=4.5)`, a
//! missing argument `%!s(MISSING)` and surplus ones `%!(EXTRA string=b)`;
//! none of these is an error. regorus formats after Rust's rules and fails
//! on the mismatches.
//!
//! A number that is a whole float in the engine (`2 * 1.5`) is printed as
//! an integer, as OPA prints the result of arithmetic; a JSON `1e9` that
//! OPA would keep as a float is then printed `1000000000`, not `1e+09`
//! (docs/opa-compatibility.md).

use regorus::Value;

/// The largest padding or precision honoured; beyond, the call fails as a
/// resource limit rather than building a gigabyte of spaces.
const MAX_PADDING: usize = 1 << 24;

/// One argument as Go sees it.
enum Arg {
    Int(i128),
    Big(String),
    Float(f64),
    Str(String),
}

impl Arg {
    fn of(value: &Value) -> Arg {
        match value {
            Value::Number(number) => match number.as_i64() {
                Some(n) => Arg::Int(i128::from(n)),
                // A whole number beyond 64 bits: a float when the engine
                // holds it as one (it then has an f64 value; a big integer
                // wider than 53 bits has none).
                None if number.is_integer() => match number.as_f64() {
                    Some(f) => Arg::Float(f),
                    None => Arg::Big(number.format_decimal()),
                },
                None => Arg::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Arg::Str(s.to_string()),
            other => Arg::Str(super::rego_text(other)),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Arg::Int(_) => "int",
            Arg::Big(_) => "*big.Int",
            Arg::Float(_) => "float64",
            Arg::Str(_) => "string",
        }
    }

    /// `%v` of the argument, for the error forms.
    fn plain(&self) -> String {
        match self {
            Arg::Int(n) => n.to_string(),
            Arg::Big(digits) => digits.clone(),
            Arg::Float(f) => format_g(*f, None, false),
            Arg::Str(s) => s.clone(),
        }
    }
}

/// The flags, width and precision of one verb.
#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// A width or precision beyond [`MAX_PADDING`].
#[derive(Debug, thiserror::Error)]
#[error("sprintf: a width or precision of {requested} is over the limit of {limit}")]
pub struct PaddingTooLarge {
    /// What the format asked for.
    pub requested: u64,
    /// [`MAX_PADDING`].
    pub limit: u64,
}

/// Go's `fmt.Sprintf(format, args...)`, or an error when a width or a
/// precision is beyond [`MAX_PADDING`].
pub fn sprintf(format: &str, values: &[Value]) -> Result<String, PaddingTooLarge> {
    let args: Vec<Arg> = values.iter().map(Arg::of).collect();
    let mut out = String::with_capacity(format.len() + 16);
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number_or_star(&mut chars, &args, &mut next, &mut out)?;
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision =
                Some(number_or_star(&mut chars, &args, &mut next, &mut out)?.unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(verb, &spec, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|arg| format!("{}={}", arg.type_name(), arg.plain()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}

/// A width or precision: digits, or `*` taking an integer argument.
fn number_or_star(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Arg],
    next: &mut usize,
    out: &mut String,
) -> Result<Option<usize>, PaddingTooLarge> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let value = match args.get(*next) {
            Some(Arg::Int(n)) if (0..=MAX_PADDING as i128).contains(n) => Some(*n as usize),
            _ => {
                out.push_str("%!(BADWIDTH)");
                None
            }
        };
        *next += 1;
        return Ok(value);
    }
    let mut digits = String::new();
    while let Some(&c) = chars.peek() {
        if !c.is_ascii_digit() {
            break;
        }
        digits.push(c);
        chars.next();
    }
    if digits.is_empty() {
        return Ok(None);
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_PADDING as u64 => Ok(Some(n as usize)),
        other => Err(PaddingTooLarge {
            requested: other.unwrap_or(u64::MAX),
            limit: MAX_PADDING as u64,
        }),
    }
}

fn bad_verb(verb: char, arg: &Arg) -> String {
    format!("%!{verb}({}={})", arg.type_name(), arg.plain())
}

fn format_one(verb: char, spec: &Spec, arg: &Arg) -> String {
    match arg {
        Arg::Int(n) => format_int(verb, spec, *n).unwrap_or_else(|| bad_verb(verb, arg)),
        Arg::Big(digits) => match verb {
            'v' | 'd' => pad_number(
                spec,
                digits.starts_with('-'),
                digits.trim_start_matches('-'),
            ),
            _ => bad_verb(verb, arg),
        },
        Arg::Float(f) => format_float(verb, spec, *f).unwrap_or_else(|| bad_verb(verb, arg)),
        Arg::Str(s) => format_str(verb, spec, s).unwrap_or_else(|| bad_verb(verb, arg)),
    }
}

fn format_int(verb: char, spec: &Spec, n: i128) -> Option<String> {
    let negative = n < 0;
    let magnitude = n.unsigned_abs();
    let (digits, prefix) = match verb {
        'v' | 'd' => (magnitude.to_string(), ""),
        'b' => (format!("{magnitude:b}"), if spec.sharp { "0b" } else { "" }),
        'o' => (format!("{magnitude:o}"), if spec.sharp { "0" } else { "" }),
        'O' => (format!("{magnitude:o}"), "0o"),
        'x' => (format!("{magnitude:x}"), if spec.sharp { "0x" } else { "" }),
        'X' => (format!("{magnitude:X}"), if spec.sharp { "0X" } else { "" }),
        'c' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return Some(pad(spec, &c.to_string()));
        }
        'q' => {
            let c = u32::try_from(n)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            return Some(pad(spec, &format!("'{}'", escape_char(c, '\''))));
        }
        'U' => {
            return Some(pad(spec, &format!("U+{magnitude:04X}")));
        }
        _ => return None,
    };
    let digits = match spec.precision {
        Some(0) if magnitude == 0 => String::new(),
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    let body = format!("{prefix}{digits}");
    if spec.precision.is_some() {
        let unzeroed = Spec {
            zero: false,
            ..*spec
        };
        return Some(pad_number(&unzeroed, negative, &body));
    }
    Some(pad_number(spec, negative, &body))
}

fn format_float(verb: char, spec: &Spec, f: f64) -> Option<String> {
    let negative = f.is_sign_negative() && f != 0.0;
    let magnitude = f.abs();
    let body = match verb {
        'v' | 'g' => format_g(magnitude, spec.precision, false),
        'G' => format_g(magnitude, spec.precision, true),
        'e' => format_e(magnitude, spec.precision.unwrap_or(6), false),
        'E' => format_e(magnitude, spec.precision.unwrap_or(6), true),
        'f' | 'F' => format!("{magnitude:.*}", spec.precision.unwrap_or(6)),
        _ => return None,
    };
    Some(pad_number(spec, negative, &body))
}

/// Go's `%e`: `d.dddde±XX`.
fn format_e(f: f64, precision: usize, upper: bool) -> String {
    let text = format!("{f:.precision$e}");
    go_exponent(&text, upper)
}

/// Rust's `1.5e3` / `1.5e-7` as Go's `1.5e+03` / `1.5e-07`.
fn go_exponent(text: &str, upper: bool) -> String {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{digits:0>2}")
}

/// Go's `%g` (and `%v` of a float): the shortest digits that read back as
/// the same float (or `precision` significant digits), in exponent form
/// when the exponent is below -4 or at least the precision (6 for the
/// shortest form).
fn format_g(f: f64, precision: Option<usize>, upper: bool) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    let scientific = match precision {
        // Rust's `{:e}` prints the shortest round-tripping digits.
        None => format!("{f:e}"),
        Some(p) => format!("{f:.*e}", p.max(1) - 1),
    };
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Trailing zeros of the precision form are not printed by %g.
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let eprec = match precision {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    if exponent < -4 || exponent >= eprec {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.to_string()
        };
        return go_exponent(&format!("{mantissa}e{exponent}"), upper);
    }
    if exponent < 0 {
        return format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize));
    }
    let point = (exponent + 1) as usize;
    if digits.len() <= point {
        format!("{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{}.{}", &digits[..point], &digits[point..])
    }
}

fn format_str(verb: char, spec: &Spec, s: &str) -> Option<String> {
    let text = match verb {
        'v' | 's' => match spec.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        },
        'q' => {
            let mut quoted = String::with_capacity(s.len() + 2);
            quoted.push('"');
            for c in s.chars() {
                quoted.push_str(&escape_char(c, '"'));
            }
            quoted.push('"');
            quoted
        }
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    };
    Some(pad(spec, &text))
}

/// One character as Go's `strconv.Quote` writes it inside `quote`s.
fn escape_char(c: char, quote: char) -> String {
    match c {
        '\u{7}' => "\\a".into(),
        '\u{8}' => "\\b".into(),
        '\u{c}' => "\\f".into(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\u{b}' => "\\v".into(),
        '\\' => "\\\\".into(),
        c if c == quote => format!("\\{c}"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => format!("\\x{:02x}", c as u32),
        c if c.is_control() => {
            if (c as u32) <= 0xFFFF {
                format!("\\u{:04x}", c as u32)
            } else {
                format!("\\U{:08x}", c as u32)
            }
        }
        c => c.to_string(),
    }
}

/// A number's text with its sign, padded as Go pads numbers: zeros after
/// the sign with `0` (not with `-`), else spaces.
fn pad_number(spec: &Spec, negative: bool, body: &str) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let len = sign.chars().count() + body.chars().count();
    match spec.width {
        Some(width) if width > len && spec.zero && !spec.minus => {
            format!("{sign}{}{body}", "0".repeat(width - len))
        }
        _ => pad(spec, &format!("{sign}{body}")),
    }
}

/// `text` padded with spaces to the width, counted in characters.
fn pad(spec: &Spec, text: &str) -> String {
    let len = text.chars().count();
    match spec.width {
        Some(width) if width > len => {
            let fill = " ".repeat(width - len);
            if spec.minus {
                format!("{text}{fill}")
            } else {
                format!("{fill}{text}")
            }
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(format: &str, json: &str) -> String {
        let Value::Array(items) = Value::from_json_str(json).unwrap() else {
            panic!()
        };
        sprintf(format, items.as_slice()).unwrap()
    }

    #[test]
    fn go_forms() {
        assert_eq!(f("%v", "[1e21]"), "1e+21");
        assert_eq!(f("%v", "[1.5e-9]"), "1.5e-09");
        assert_eq!(f("%v", "[0.1]"), "0.1");
        assert_eq!(f("%v", "[0.000001]"), "1e-06");
        assert_eq!(f("%v", "[1234.5678]"), "1234.5678");
        assert_eq!(f("%d", "[4.5]"), "%!d(float64=4.5)");
        assert_eq!(f("%s", "[42]"), "%!s(int=42)");
        assert_eq!(f("%s and %s", r#"["a"]"#), "a and %!s(MISSING)");
        assert_eq!(f("%s", r#"["a", "b"]"#), "a%!(EXTRA string=b)");
        assert_eq!(f("%e", "[1234.5678]"), "1.234568e+03");
        assert_eq!(f("%f", "[3.14159]"), "3.141590");
        assert_eq!(f("%5d|%-5d|%05d", "[42, 42, 42]"), "   42|42   |00042");
        assert_eq!(f("%x %X %o %b", "[255, 255, 8, 5]"), "ff FF 10 101");
        assert_eq!(f("%q", r#"["a\"b"]"#), r#""a\"b""#);
        assert_eq!(f("%v", r#"[[1, "a"]]"#), r#"[1, "a"]"#);
        assert_eq!(f("%t", "[false]"), "%!t(string=false)");
        assert_eq!(f("%-4s|", r#"["é"]"#), "é   |");
        assert_eq!(f("100%%", "[]"), "100%");
        assert!(sprintf("%0999999999d", &[Value::from(1)]).is_err());
    }
}
