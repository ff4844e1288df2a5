//! Document paths: the `/v1/data/{path}` segments turned into a Rego
//! reference (`data.a.b`, or `data.a["b-c"]` where a segment is not an
//! identifier).

use std::sync::Arc;

/// A path into the `data` document. Segments that are whole numbers index
/// arrays, as in OPA (`/v1/data/servers/0`).
/// Cheap to clone (one reference count): a logged decision hands its
/// path to the decision-log writer without copying each segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataPath(Arc<Parts>);

#[derive(Debug, PartialEq, Eq, Hash)]
struct Parts {
    segments: Vec<String>,
    rego_ref: String,
}

impl DataPath {
    /// The path from `/`-separated text; empty segments are dropped, so
    /// `""`, `"/"` and `"a//b/"` are `data`, `data` and `data.a.b`.
    pub fn parse(text: &str) -> DataPath {
        DataPath::from_segments(
            text.split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// The path from a dotted Rego reference such as `data.a.b`
    /// (bracketed segments are not split).
    pub fn from_dotted(text: &str) -> DataPath {
        let trimmed = text.trim();
        let rest = trimmed
            .strip_prefix("data.")
            .or_else(|| (trimmed == "data").then_some(""))
            .unwrap_or(trimmed);
        DataPath::parse(&rest.replace('.', "/"))
    }

    /// The path from its segments.
    pub fn from_segments(segments: Vec<String>) -> DataPath {
        let mut rego_ref = String::from("data");
        for segment in &segments {
            if is_array_index(segment) {
                // As OPA does, a whole-number segment indexes arrays.
                rego_ref.push('[');
                rego_ref.push_str(segment);
                rego_ref.push(']');
            } else if is_identifier(segment) {
                rego_ref.push('.');
                rego_ref.push_str(segment);
            } else {
                rego_ref.push('[');
                rego_ref.push_str(&serde_json::Value::String(segment.clone()).to_string());
                rego_ref.push(']');
            }
        }
        DataPath(Arc::new(Parts { segments, rego_ref }))
    }

    /// The segments below `data`.
    pub fn segments(&self) -> &[String] {
        &self.0.segments
    }

    /// The Rego reference, e.g. `data.provisioning.decision`.
    pub fn as_ref_str(&self) -> &str {
        &self.0.rego_ref
    }
}

impl std::fmt::Display for DataPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.rego_ref)
    }
}

/// Whether `s` is a whole number in canonical form (`0`, `17`; not `01`).
fn is_array_index(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 18
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

/// Whether `s` can follow a `.` in a Rego reference.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(s)
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "as" | "default"
            | "else"
            | "false"
            | "import"
            | "package"
            | "not"
            | "null"
            | "true"
            | "with"
            | "some"
            | "every"
            | "in"
            | "if"
            | "contains"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_segments_use_dots() {
        assert_eq!(DataPath::parse("a/b").as_ref_str(), "data.a.b");
        assert_eq!(DataPath::parse("/").as_ref_str(), "data");
        assert_eq!(DataPath::parse("a//b/").segments(), ["a", "b"]);
    }

    #[test]
    fn other_segments_are_quoted() {
        assert_eq!(
            DataPath::parse("a/b-c/1/if/01").as_ref_str(),
            r#"data.a["b-c"][1]["if"]["01"]"#
        );
        assert_eq!(
            DataPath::parse("x/\"quote").as_ref_str(),
            r#"data.x["\"quote"]"#
        );
    }

    #[test]
    fn dotted_round_trip() {
        assert_eq!(DataPath::from_dotted("data.a.b"), DataPath::parse("a/b"));
        assert_eq!(DataPath::from_dotted("data"), DataPath::parse(""));
        assert_eq!(
            DataPath::from_dotted("system.main"),
            DataPath::parse("system/main")
        );
    }
}
