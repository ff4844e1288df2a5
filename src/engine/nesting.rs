//! A guard in front of regorus's parser for Rego text that it would take
//! exponential time to parse.
//!
//! regorus reads `[` and `{` by first trying a comprehension: it parses the
//! first element, finds no `|`, rewinds and parses the element again as an
//! array, set or object member. A collection whose first element is itself
//! a collection is therefore read twice at every level: `[[[…]]]` or
//! `{"a": {"a": {…}}}` twenty levels deep takes about a million times as
//! long as one level (seconds to minutes), and the thread parsing it (a
//! bundle activation, a `/v1/query` or `PUT /v1/policies` request) is
//! stuck there. [`check`] measures that depth before regorus sees the text
//! and refuses it, at the collection that crosses the limit, with the
//! rewrite that avoids it.
//!
//! The measure over-approximates: a rule body's braces count as a level
//! (only for the body's first literal, which is the body's first
//! segment), and parentheses are transparent. Nothing a real policy writes
//! comes near the limit: the shipped library's deepest chain is 10, a
//! Kubernetes-shaped literal in a Rego test.

use crate::location::Location;

use super::PolicyError;

/// How many collections may each open the first element of the one around
/// it. The parser reads the innermost first element 2^N times: at N = 16
/// one such literal takes 38–85 ms to parse in a release build, at N = 20
/// 0.6–1.4 s, at N = 22 2.5–5.5 s (BENCHMARKS.md).
pub const MAX_FIRST_ELEMENT_NESTING: usize = 16;

/// One open delimiter while scanning.
struct Open {
    /// `(`, `[` or `{`.
    kind: char,
    /// For `[` and `{`: how many collections, this one included, are each
    /// in the first element of the one around them.
    depth: usize,
    /// Whether no top-level `,`, `|` or `;` has been seen in it yet.
    in_first_element: bool,
}

/// Refuse `text` (a module or a query, named `file` in the error) when its
/// collections nest deeper than [`MAX_FIRST_ELEMENT_NESTING`] through
/// their first elements.
pub fn check(text: &str, file: &str) -> Result<(), PolicyError> {
    match deepest(text, MAX_FIRST_ELEMENT_NESTING) {
        Ok(_) => Ok(()),
        Err(Crossing { depth, row, col }) => Err(too_deep(file, row, col, depth)),
    }
}

/// The first collection deeper than the limit, and where it opens.
#[derive(Debug)]
struct Crossing {
    depth: usize,
    row: usize,
    col: usize,
}

/// The deepest first-element chain in `text`, or the first collection
/// that takes it past `limit`.
fn deepest(text: &str, limit: usize) -> Result<usize, Crossing> {
    let mut deepest = 0;
    let mut stack: Vec<Open> = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut row, mut col) = (1usize, 0usize);
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '\n' => {
                row += 1;
                col = 0;
            }
            '#' => while chars.next_if(|&n| n != '\n').is_some() {},
            '"' => {
                while let Some(n) = chars.next() {
                    col += 1;
                    match n {
                        '\\' => {
                            chars.next();
                            col += 1;
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for n in chars.by_ref() {
                    col += 1;
                    if n == '\n' {
                        row += 1;
                        col = 0;
                    }
                    if n == '`' {
                        break;
                    }
                }
            }
            '(' => stack.push(Open {
                kind: c,
                depth: 0,
                in_first_element: true,
            }),
            '[' | '{' => {
                let depth = match stack.iter().rev().find(|o| o.kind != '(') {
                    Some(outer) if outer.in_first_element => outer.depth + 1,
                    Some(outer) => outer.depth,
                    None => 1,
                };
                if depth > limit {
                    return Err(Crossing { depth, row, col });
                }
                deepest = deepest.max(depth);
                stack.push(Open {
                    kind: c,
                    depth,
                    in_first_element: true,
                });
            }
            ')' | ']' | '}' => {
                stack.pop();
            }
            ',' | '|' | ';' => {
                if let Some(innermost) = stack.last_mut() {
                    if innermost.kind != '(' {
                        innermost.in_first_element = false;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(deepest)
}

fn too_deep(file: &str, row: usize, col: usize, depth: usize) -> PolicyError {
    PolicyError {
        message: format!(
            "collections nest {depth} deep through their first elements here (at most \
             {MAX_FIRST_ELEMENT_NESTING}: the parser reads each such first element twice, \
             so its time doubles with every level); bind the inner collection to a \
             variable first, or put a scalar element first"
        ),
        location: Some(Location::new(file, row, col)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, levels: usize) -> String {
        format!("x := {}1{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn first_element_chains_up_to_the_limit_pass() {
        let limit = MAX_FIRST_ELEMENT_NESTING;
        for (open, close) in [
            ("[", "]"),
            ("{", "}"),
            ("{\"a\": ", "}"),
            ("[{\"a\": ", "}]"),
        ] {
            let levels = limit / open.matches(['[', '{']).count();
            assert!(check(&nested(open, close, levels), "q").is_ok(), "{open}");
        }
    }

    #[test]
    fn a_chain_past_the_limit_is_refused_where_it_crosses() {
        let text = nested("[", "]", MAX_FIRST_ELEMENT_NESTING + 3);
        let err = check(&text, "p.rego").unwrap_err();
        let at = err.location.clone().expect("placed");
        assert_eq!(
            (at.file.as_str(), at.row, at.col as usize),
            ("p.rego", 1, "x := ".len() + MAX_FIRST_ELEMENT_NESTING + 1)
        );
        assert!(err.message.contains("bind the inner collection"), "{err}");
        let objects = nested("{\"k\": ", "}", MAX_FIRST_ELEMENT_NESTING + 1);
        assert!(check(&objects, "p.rego").is_err());
        let unclosed = "[".repeat(MAX_FIRST_ELEMENT_NESTING + 1);
        assert!(check(&unclosed, "q").is_err());
    }

    #[test]
    fn collections_after_the_first_element_do_not_deepen_the_chain() {
        let levels = MAX_FIRST_ELEMENT_NESTING * 2;
        let later = format!("x := {}1{}", "[0, ".repeat(levels), "]".repeat(levels));
        assert!(check(&later, "q").is_ok());
        let keyed = format!(
            "x := {}1{}",
            "{\"n\": 0, \"a\": ".repeat(levels),
            "}".repeat(levels)
        );
        assert!(check(&keyed, "q").is_ok());
        let comprehension = format!(
            "x := {}1{}",
            "[y | y := ".repeat(levels),
            "]".repeat(levels)
        );
        assert!(check(&comprehension, "q").is_ok());
    }

    #[test]
    fn parentheses_carry_the_chain_and_hide_their_commas() {
        let levels = MAX_FIRST_ELEMENT_NESTING + 1;
        let calls = format!("x := {}1{}", "[f(0, ".repeat(levels), ")]".repeat(levels));
        assert!(check(&calls, "q").is_err());
    }

    #[test]
    fn brackets_in_strings_and_comments_are_not_collections() {
        let deep = "[".repeat(MAX_FIRST_ELEMENT_NESTING * 2);
        let text =
            format!("x := \"{deep}\\\"{deep}\"\n# {deep}\ny := `{deep}\n{deep}`\nz := [1]\n");
        assert!(check(&text, "q").is_ok());
    }

    /// The claim in the module's doc: the shipped library, tests included,
    /// stays far from the limit.
    #[test]
    fn the_shipped_library_nests_at_most_ten_deep() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut seen = 0;
        for entry in walkdir::WalkDir::new(root) {
            let entry = entry.expect("readable");
            if entry.path().extension().is_some_and(|e| e == "rego") {
                let text = std::fs::read_to_string(entry.path()).expect("readable");
                let depth = deepest(&text, usize::MAX).expect("no limit");
                assert!(depth <= 10, "{}: {depth}", entry.path().display());
                seen += 1;
            }
        }
        assert!(seen > 10, "found {seen} policy files");
    }

    #[test]
    fn rows_and_columns_count_across_lines_and_strings() {
        let text = format!(
            "package p\n\n# [[[\ns := `a\nb`\nx := \"[\" \n{}",
            nested("[", "]", MAX_FIRST_ELEMENT_NESTING + 1)
        );
        let at = check(&text, "p.rego")
            .unwrap_err()
            .location
            .expect("placed");
        assert_eq!(
            (at.row, at.col as usize),
            (7, "x := ".len() + MAX_FIRST_ELEMENT_NESTING + 1)
        );
    }
}
