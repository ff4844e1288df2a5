//! Finding an event's input in request bytes that the handler has already
//! parsed, without parsing them again.
//!
//! Every body a handler logs went through serde_json first (a body that
//! does not parse is answered with an error and not logged), so the writer
//! only needs to know where the input's text starts and ends. Usually the
//! handler's parse already told it; otherwise a structural scan (strings,
//! nesting, top-level members) does, in a fraction of a validating parse.
//! Anything the scan does not expect (an escaped key, a truncated value,
//! trailing bytes) makes it answer `None`, and the caller falls back to
//! the validating parser. Text these functions return is valid UTF-8.

/// How a byte matters to the scan inside a container.
const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;

static CLASS: [u8; 256] = {
    let mut class = [PLAIN; 256];
    class[b'"' as usize] = QUOTE;
    class[b'{' as usize] = OPEN;
    class[b'[' as usize] = OPEN;
    class[b'}' as usize] = CLOSE;
    class[b']' as usize] = CLOSE;
    class
};

/// A cursor over JSON text.
struct Scan<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Past the string that starts at the cursor (on its opening quote).
    fn string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        // Byte by byte: the strings of a request are mostly short, where a
        // plain loop beats a vectorised search's set-up.
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                // A backslash and the character it escapes; the four hex
                // digits of `\uXXXX` hold no quote or backslash.
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
    }

    /// Past the value that starts at the cursor.
    fn value(&mut self) -> Option<()> {
        match CLASS[usize::from(self.peek()?)] {
            QUOTE => self.string(),
            OPEN => {
                let mut depth = 0usize;
                loop {
                    let byte = self.peek()?;
                    match CLASS[usize::from(byte)] {
                        PLAIN => self.at += 1,
                        QUOTE => self.string()?,
                        OPEN => {
                            depth += 1;
                            self.at += 1;
                        }
                        _ => {
                            depth = depth.checked_sub(1)?;
                            self.at += 1;
                            if depth == 0 {
                                return Some(());
                            }
                        }
                    }
                }
            }
            CLOSE => None,
            _ => {
                // A number, `true`, `false` or `null`: up to the next
                // delimiter.
                let start = self.at;
                while let Some(byte) = self.peek() {
                    if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }

    /// Whether only whitespace is left.
    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.text.len()
    }
}

/// Text that is valid UTF-8, or `None`.
fn utf8(text: &[u8]) -> Option<&[u8]> {
    std::str::from_utf8(text).ok().map(str::as_bytes)
}

/// The text of the `input` member of an already parsed request body
/// (`{"input": …, …}`): `Some(None)` when it has none or it is `null` (no
/// input, as the handler saw it), `None` when the scan cannot tell. With
/// repeated `input` keys the last one counts, as it did for the handler.
pub fn input_member(body: &[u8]) -> Option<Option<&[u8]>> {
    let mut scan = Scan { text: body, at: 0 };
    scan.skip_whitespace();
    scan.expect(b'{')?;
    scan.skip_whitespace();
    let mut input = None;
    if scan.peek()? == b'}' {
        scan.at += 1;
    } else {
        loop {
            let key_start = scan.at;
            scan.string()?;
            let key = &body[key_start..scan.at];
            if key.contains(&b'\\') {
                return None;
            }
            scan.skip_whitespace();
            scan.expect(b':')?;
            scan.skip_whitespace();
            let value_start = scan.at;
            scan.value()?;
            if key == b"\"input\"" {
                input = Some(&body[value_start..scan.at]);
            }
            scan.skip_whitespace();
            match scan.peek()? {
                b',' => {
                    scan.at += 1;
                    scan.skip_whitespace();
                }
                b'}' => {
                    scan.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if !scan.at_end() {
        return None;
    }
    match input.filter(|text| *text != b"null") {
        None => Some(None),
        Some(text) => utf8(text).map(Some),
    }
}

/// The text of an already parsed body that is one JSON value, without the
/// whitespace around it; `None` when there is none or it is not UTF-8.
/// Nothing else is checked: the handler's parse did that.
pub fn whole_value(body: &[u8]) -> Option<&[u8]> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    utf8(&body[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json makes of the input member, for comparison.
    fn parsed_input(body: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Wrapper<'a> {
            #[serde(borrow)]
            input: Option<&'a serde_json::value::RawValue>,
        }
        let wrapper: Wrapper = serde_json::from_slice(body).unwrap();
        wrapper.input.map(|raw| raw.get().to_string())
    }

    #[test]
    fn finds_the_input_member_wherever_it_is() {
        for body in [
            r#"{"input": {"a": [1, {"b": "}]"}], "c": "\"{"}}"#,
            r#" { "other" : [ {"input": 1} , "x\\" ], "input" : "v" , "z": null } "#,
            r#"{"input":-1.5e3}"#,
            r#"{"input":true,"y":{}}"#,
            r#"{"a":"\u0022","input":[[],[{}]]}"#,
            r#"{"input":"caf\u00e9 ☕"}"#,
            "{\n  \"input\": {\n    \"k\": \"v\"\n  }\n}\n",
        ] {
            let found = input_member(body.as_bytes()).expect("scanned");
            let found = found.map(|text| String::from_utf8(text.to_vec()).unwrap());
            assert_eq!(found, parsed_input(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn no_input_and_null_input_are_no_input() {
        assert_eq!(input_member(br#"{}"#), Some(None));
        assert_eq!(input_member(br#"{"other": 1}"#), Some(None));
        assert_eq!(input_member(br#"{"input": null}"#), Some(None));
    }

    #[test]
    fn the_last_of_repeated_input_keys_counts() {
        assert_eq!(
            input_member(br#"{"input": 1, "input": 2}"#),
            Some(Some(&b"2"[..]))
        );
    }

    #[test]
    fn what_it_cannot_tell_goes_back_to_the_parser() {
        let bodies: &[&[u8]] = &[
            br#"{"\u0069nput": 1}"#,
            br#"{"input": 1"#,
            br#"{"input": "open"#,
            br#"{"input": [1, 2}"#,
            br#"{"input": 1} trailing"#,
            br#"[1]"#,
            br#"{"input": }"#,
            br#"{"input": ]}"#,
            b"{\"input\": \"\xff\"}",
            b"",
            br#"{"input": "\"#,
        ];
        for body in bodies {
            assert_eq!(
                input_member(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_whole_body_is_trimmed() {
        assert_eq!(
            whole_value(b" \n{\"a\": [1, \"]\"]}\r\n"),
            Some(&br#"{"a": [1, "]"]}"#[..])
        );
        assert_eq!(whole_value(b"  42 "), Some(&b"42"[..]));
        assert_eq!(whole_value(b"   "), None);
        assert_eq!(whole_value(b""), None);
        assert_eq!(whole_value(b"\"\xc3\""), None);
    }
}
