//! Masking decision events before anything is written: JSON pointers into
//! the event's `input` and `result` that erase a field or replace its value,
//! from the configuration, from a policy rule in the style of OPA's
//! `system.log.mask`, and a built-in rule for Kubernetes Secrets. Every
//! field touched is listed in the event (`erased`, `masked`).

use serde_json::{Map, Value as Json};

/// Why a mask could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// The pointer is not a JSON pointer into `/input` or `/result`.
    #[error("mask pointer {pointer:?}: {reason}")]
    Pointer {
        /// The pointer as written.
        pointer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A mask policy answered something that is not a mask.
    #[error(
        "mask policy returned {0}, expected a pointer string or {{\"op\", \"path\", \"value\"}}"
    )]
    Policy(String),
}

/// One step of a pointer: a key (or array index), or `*` for every child.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Any,
}

/// What a rule does to the fields its pointer reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskAction {
    /// Remove the field.
    Erase,
    /// Replace the field's value (set it where the parent exists).
    Replace(Json),
}

/// A pointer into a decision event and what to do where it points.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskRule {
    /// `input` or `result`.
    top: &'static str,
    steps: Vec<Step>,
    action: MaskAction,
}

impl MaskRule {
    /// A rule from a JSON pointer (`/input/password`, `/input/items/*/token`;
    /// `~1` is `/`, `~0` is `~`) and an action.
    pub fn new(pointer: &str, action: MaskAction) -> Result<MaskRule, MaskError> {
        let fail = |reason| MaskError::Pointer {
            pointer: pointer.to_string(),
            reason,
        };
        let rest = pointer
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with '/'"))?;
        let mut parts = rest.split('/');
        let top = match parts.next() {
            Some("input") => "input",
            Some("result") => "result",
            _ => return Err(fail("must point into /input or /result")),
        };
        let steps = parts
            .map(|part| match part {
                "*" => Step::Any,
                key => Step::Key(key.replace("~1", "/").replace("~0", "~")),
            })
            .collect();
        Ok(MaskRule { top, steps, action })
    }

    /// Apply the rule to an event object; `touched` gets the concrete
    /// pointer of every field erased or replaced.
    pub fn apply(&self, event: &mut Map<String, Json>, touched: &mut Touched) {
        let mut at = format!("/{}", self.top);
        if self.steps.is_empty() {
            match &self.action {
                MaskAction::Erase => {
                    if event.remove(self.top).is_some() {
                        touched.erased.push(at);
                    }
                }
                MaskAction::Replace(value) => {
                    if let Some(slot) = event.get_mut(self.top) {
                        *slot = value.clone();
                        touched.masked.push(at);
                    }
                }
            }
            return;
        }
        if let Some(root) = event.get_mut(self.top) {
            apply_steps(root, &self.steps, &self.action, &mut at, touched);
        }
    }
}

/// The pointers a masking pass erased and replaced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Fields removed.
    pub erased: Vec<String>,
    /// Fields whose value was replaced.
    pub masked: Vec<String>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Walk `steps` below `node`; the last step is where the action happens.
fn apply_steps(
    node: &mut Json,
    steps: &[Step],
    action: &MaskAction,
    at: &mut String,
    touched: &mut Touched,
) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    let keys: Vec<String> = match (step, &*node) {
        (Step::Key(key), _) => vec![key.clone()],
        (Step::Any, Json::Object(map)) => map.keys().cloned().collect(),
        (Step::Any, Json::Array(items)) => (0..items.len()).map(|i| i.to_string()).collect(),
        (Step::Any, _) => return,
    };
    let base = at.len();
    // Erasing array elements goes from the back so indices stay valid.
    for key in keys.iter().rev() {
        at.truncate(base);
        at.push('/');
        at.push_str(&escape(key));
        if rest.is_empty() {
            act(node, key, action, at, touched);
        } else if let Some(child) = child_mut(node, key) {
            apply_steps(child, rest, action, at, touched);
        }
    }
    at.truncate(base);
}

fn child_mut<'a>(node: &'a mut Json, key: &str) -> Option<&'a mut Json> {
    match node {
        Json::Object(map) => map.get_mut(key),
        Json::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    }
}

fn act(node: &mut Json, key: &str, action: &MaskAction, at: &str, touched: &mut Touched) {
    let done = match (node, action) {
        (Json::Object(map), MaskAction::Erase) => map.remove(key).map(|_| &mut touched.erased),
        (Json::Object(map), MaskAction::Replace(value)) => {
            map.insert(key.to_string(), value.clone());
            Some(&mut touched.masked)
        }
        (Json::Array(items), action) => {
            match key.parse::<usize>().ok().filter(|i| *i < items.len()) {
                None => None,
                Some(index) => match action {
                    MaskAction::Erase => {
                        items.remove(index);
                        Some(&mut touched.erased)
                    }
                    MaskAction::Replace(value) => {
                        items[index] = value.clone();
                        Some(&mut touched.masked)
                    }
                },
            }
        }
        _ => None,
    };
    if let Some(list) = done {
        list.push(at.to_string());
    }
}

/// The rules a `system.log.mask`-style policy answered: a set (or array)
/// of pointer strings (erase) and `{"op": "remove" | "upsert", "path",
/// "value"}` objects.
pub fn rules_from_policy(answer: &Json) -> Result<Vec<MaskRule>, MaskError> {
    let items = match answer {
        Json::Array(items) => items,
        other => return Err(MaskError::Policy(other.to_string())),
    };
    items
        .iter()
        .map(|item| match item {
            Json::String(pointer) => MaskRule::new(pointer, MaskAction::Erase),
            Json::Object(op) => {
                let path = op
                    .get("path")
                    .and_then(Json::as_str)
                    .ok_or_else(|| MaskError::Policy(item.to_string()))?;
                match op.get("op").and_then(Json::as_str) {
                    Some("remove") => MaskRule::new(path, MaskAction::Erase),
                    Some("upsert") => MaskRule::new(
                        path,
                        MaskAction::Replace(op.get("value").cloned().unwrap_or(Json::Null)),
                    ),
                    _ => Err(MaskError::Policy(item.to_string())),
                }
            }
            other => Err(MaskError::Policy(other.to_string())),
        })
        .collect()
}

/// Fields of an admission review for a Kubernetes Secret that carry its
/// values: `data`, `stringData`, and the last-applied annotation that
/// `kubectl apply` fills with the whole object.
const SECRET_FIELDS: [&str; 6] = [
    "/input/request/object/data",
    "/input/request/object/stringData",
    "/input/request/object/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
    "/input/request/oldObject/data",
    "/input/request/oldObject/stringData",
    "/input/request/oldObject/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
];

/// The rules that erase a Kubernetes Secret's values when the event's input
/// is an AdmissionReview for a Secret (none otherwise).
pub fn kubernetes_secret_rules(event: &Map<String, Json>) -> Vec<MaskRule> {
    let kind = event
        .get("input")
        .and_then(|input| input.pointer("/request/kind/kind"))
        .and_then(Json::as_str);
    if kind != Some("Secret") {
        return Vec::new();
    }
    SECRET_FIELDS
        .iter()
        .map(|pointer| {
            MaskRule::new(pointer, MaskAction::Erase).expect("the built-in pointers are valid")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Json) -> Map<String, Json> {
        value.as_object().unwrap().clone()
    }

    fn run(rules: &[MaskRule], event: &mut Map<String, Json>) -> Touched {
        let mut touched = Touched::default();
        for rule in rules {
            rule.apply(event, &mut touched);
        }
        touched
    }

    #[test]
    fn erases_and_replaces_fields_and_lists_them() {
        let mut e = event(
            json!({"input": {"token": "t0p", "user": {"ssn": "123", "name": "a"}}, "result": true}),
        );
        let touched = run(
            &[
                MaskRule::new("/input/token", MaskAction::Erase).unwrap(),
                MaskRule::new("/input/user/ssn", MaskAction::Replace(json!("***"))).unwrap(),
                MaskRule::new("/input/absent", MaskAction::Erase).unwrap(),
            ],
            &mut e,
        );
        assert_eq!(
            Json::Object(e),
            json!({"input": {"user": {"ssn": "***", "name": "a"}}, "result": true})
        );
        assert_eq!(touched.erased, vec!["/input/token"]);
        assert_eq!(touched.masked, vec!["/input/user/ssn"]);
    }

    #[test]
    fn wildcards_reach_every_child_of_arrays_and_objects() {
        let mut e = event(
            json!({"input": {"env": [{"name": "A", "value": "x"}, {"name": "B", "value": "y"}]}}),
        );
        let touched = run(
            &[MaskRule::new("/input/env/*/value", MaskAction::Erase).unwrap()],
            &mut e,
        );
        assert_eq!(
            Json::Object(e),
            json!({"input": {"env": [{"name": "A"}, {"name": "B"}]}})
        );
        assert_eq!(
            touched.erased,
            vec!["/input/env/1/value", "/input/env/0/value"]
        );
    }

    #[test]
    fn erasing_a_whole_top_level_field_and_escaped_keys() {
        let mut e = event(json!({"input": {"a/b": 1, "c~d": 2}, "result": {"secret": 1}}));
        let touched = run(
            &[
                MaskRule::new("/result", MaskAction::Erase).unwrap(),
                MaskRule::new("/input/a~1b", MaskAction::Erase).unwrap(),
                MaskRule::new("/input/c~0d", MaskAction::Replace(json!(0))).unwrap(),
            ],
            &mut e,
        );
        assert_eq!(Json::Object(e), json!({"input": {"c~d": 0}}));
        assert_eq!(touched.erased, vec!["/result", "/input/a~1b"]);
        assert_eq!(touched.masked, vec!["/input/c~0d"]);
    }

    #[test]
    fn pointers_outside_input_and_result_are_refused() {
        for bad in ["input/x", "/labels/id", "", "/decision_id"] {
            assert!(MaskRule::new(bad, MaskAction::Erase).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_answers_become_rules() {
        let rules = rules_from_policy(&json!([
            "/input/password",
            {"op": "upsert", "path": "/input/card", "value": "****"},
            {"op": "remove", "path": "/result/token"}
        ]))
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[1].action, MaskAction::Replace(json!("****")));
        assert!(rules_from_policy(&json!([{"op": "explode", "path": "/input"}])).is_err());
        assert!(rules_from_policy(&json!("nope")).is_err());
    }

    #[test]
    fn secret_reviews_lose_their_values() {
        let mut e = event(json!({"input": {"request": {
            "kind": {"kind": "Secret"},
            "object": {"data": {"password": "c2VjcmV0"}, "metadata": {"name": "db", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"c2VjcmV0\"}}"}}},
            "oldObject": {"stringData": {"password": "secret"}}
        }}}));
        let rules = kubernetes_secret_rules(&e);
        let touched = run(&rules, &mut e);
        let text = Json::Object(e).to_string();
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("\"secret\""),
            "{text}"
        );
        assert_eq!(touched.erased.len(), 3);
        let pod = event(json!({"input": {"request": {"kind": {"kind": "Pod"}}}}));
        assert!(kubernetes_secret_rules(&pod).is_empty());
    }
}
