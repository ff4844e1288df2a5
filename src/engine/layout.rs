//! Two layouts that OPA's parser reads differently from regorus's, made
//! explicit before a module is compiled. Text is only inserted, never a
//! line, so every line keeps its number; only what follows an insertion on
//! its own line moves:
//!
//! - A line inside a body that starts with `(` begins a new expression in
//!   OPA (`spread := input.parameters.minimumReplicaSpread`, then
//!   `(a - b) >= spread` on the next line); regorus reads the parenthesis
//!   as a call of what ends the line before. A `;` is inserted at the end
//!   of that line.
//! - A rule with several bodies (`deny[msg] { … } { … }`) is one rule per
//!   body in OPA; regorus reads the second body as an `else` (refused for
//!   a set rule, a different value for a complete rule or a function). The
//!   head is repeated before each further body.

/// What a character of the source is, for the scan.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// Nothing significant yet (start of file).
    Nothing,
    /// The end of a term: a name, a number, a string, `)` or `]`.
    TermEnd,
    /// A `}` that closed a rule body at the top level.
    BodyClose,
    /// A `}` that closed something else.
    OtherClose,
    /// An operator or punctuation that continues the expression.
    Continues,
    /// `=` or `:=` at the top level: a `{` next is a value, not a body.
    Assign,
}

/// `source` with OPA's layouts made explicit, or `None` when there is
/// nothing to change.
pub fn explicit(source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    // (position, text) insertions, in order.
    let mut inserts: Vec<(usize, String)> = Vec::new();
    // Open brackets: the byte, and for a top-level `{`, whether it opened
    // a rule body.
    let mut open: Vec<(u8, bool)> = Vec::new();
    let mut last = Last::Nothing;
    // Where the last significant token ended, and whether a newline came
    // after it.
    let mut last_end = 0usize;
    let mut newline_since = false;
    // The current top-level statement: where it starts, where its first
    // body opens.
    let mut rule_start: Option<usize> = None;
    let mut first_body: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' => {
                newline_since = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let top = open.is_empty();
        // A new top-level statement starts on a new line after a complete
        // one (not after an operator, `=`, `if`, `else` or a body that an
        // `else` or another body may follow).
        if top && (rule_start.is_none() || (newline_since && starts_statement(last, b, source, i)))
        {
            rule_start = Some(i);
            first_body = None;
        }
        let start = i;
        match b {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                last = Last::TermEnd;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
                i += 1;
                last = Last::TermEnd;
            }
            b'(' => {
                // A `(` that starts a line inside a body, after a term.
                if newline_since
                    && last == Last::TermEnd
                    && open.last().is_some_and(|(byte, _)| *byte == b'{')
                {
                    inserts.push((last_end, ";".to_string()));
                }
                open.push((b, false));
                i += 1;
                last = Last::Continues;
            }
            b'[' => {
                open.push((b, false));
                i += 1;
                last = Last::Continues;
            }
            b'{' => {
                let body = top
                    && match last {
                        Last::Assign => false,
                        Last::Continues => {
                            matches!(word_before(source, start), Some("if" | "else"))
                        }
                        _ => true,
                    };
                if body {
                    if last == Last::BodyClose {
                        // A further body: repeat the head.
                        if let (Some(rule), Some(first)) = (rule_start, first_body) {
                            let head = source[rule..first].trim_end();
                            inserts.push((start, format!("{head} ")));
                        }
                    } else if first_body.is_none() {
                        first_body = Some(start);
                    }
                }
                open.push((b, body));
                i += 1;
                last = Last::Continues;
            }
            b')' | b']' | b'}' => {
                let closed = open.pop();
                i += 1;
                last = match (b, closed) {
                    (b'}', Some((_, true))) => Last::BodyClose,
                    (b'}', _) => Last::OtherClose,
                    _ => Last::TermEnd,
                };
            }
            b'=' if top && bytes.get(i + 1) != Some(&b'=') => {
                i += 1;
                last = Last::Assign;
            }
            b':' if top && bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                last = Last::Assign;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                let word = &source[start..i];
                last = if matches!(
                    word,
                    "if" | "else" | "contains" | "in" | "not" | "some" | "every" | "with" | "as"
                ) {
                    Last::Continues
                } else {
                    Last::TermEnd
                };
            }
            _ => {
                // Operators and punctuation; multi-byte characters only
                // occur in strings and comments.
                i += 1;
                last = Last::Continues;
            }
        }
        last_end = i;
        newline_since = false;
    }
    if inserts.is_empty() {
        return None;
    }
    let mut out = source.to_string();
    for (at, text) in inserts.into_iter().rev() {
        out.insert_str(at, &text);
    }
    Some(out)
}

/// Whether a token at `at` on a new top-level line starts a statement.
fn starts_statement(last: Last, byte: u8, source: &str, at: usize) -> bool {
    match last {
        Last::Continues | Last::Assign | Last::Nothing => false,
        // After a body: `else` and a further body continue the rule.
        Last::BodyClose => byte != b'{' && !source[at..].starts_with("else"),
        Last::TermEnd | Last::OtherClose => true,
    }
}

/// The word that ends right before `at` (skipping spaces).
fn word_before(source: &str, at: usize) -> Option<&str> {
    let before = source[..at].trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    Some(&before[start..]).filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parenthesis_on_a_new_line_starts_an_expression() {
        let source = "package t\nx if {\n\tinput.a\n\t(1 + 2) > 0\n}\n";
        assert_eq!(
            explicit(source).unwrap(),
            "package t\nx if {\n\tinput.a;\n\t(1 + 2) > 0\n}\n"
        );
        // A call's arguments on the next line are not touched.
        assert_eq!(explicit("package t\nx := f(\n\t(1)\n)\n"), None);
    }

    #[test]
    fn further_bodies_repeat_the_head() {
        let source = "package t\ndeny[msg] {\n\tinput.a\n\tmsg := \"a\"\n} {\n\tmsg := \"b\"\n}\n";
        assert_eq!(
            explicit(source).unwrap(),
            "package t\ndeny[msg] {\n\tinput.a\n\tmsg := \"a\"\n} deny[msg] {\n\tmsg := \"b\"\n}\n"
        );
        let complete = "package t\np = {\"a\": 1} {\n\tfalse\n}\n{\n\ttrue\n}\n";
        assert_eq!(
            explicit(complete).unwrap(),
            "package t\np = {\"a\": 1} {\n\tfalse\n}\np = {\"a\": 1} {\n\ttrue\n}\n"
        );
        // `else` is not a further body; nor is a new rule.
        assert_eq!(
            explicit("package t\np = 1 {\n\tfalse\n} else = 2 {\n\ttrue\n}\nq { true }\n"),
            None
        );
    }
}
