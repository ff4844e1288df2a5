//! A constraint's `spec.match`: which admission requests it applies to.
//!
//! Follows Gatekeeper's matcher: every criterion that is set must hold
//! (kinds, scope, namespaces, excludedNamespaces, labelSelector,
//! namespaceSelector, name); namespace and name patterns take one `*` at the
//! start or the end. Namespace criteria never exclude a cluster-scoped
//! object other than a Namespace, whose own name stands for its namespace.
//!
//! A namespaceSelector needs the labels of the object's namespace. They are
//! read from the request's `_unstable.namespace` when the caller supplied
//! it, otherwise from `data.inventory.cluster.v1.Namespace[<name>]`; a
//! namespace found in neither has no labels (so `matchLabels` does not match
//! and `DoesNotExist` does).

use serde::Deserialize;

use crate::engine::Value;

/// `spec.match`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    kinds: Vec<KindSelector>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    excluded_namespaces: Vec<String>,
    #[serde(default)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Gatekeeper's expansion source (`All`, `Original`, `Generated`):
    /// accepted; every request Portcullis sees is an original.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KindSelector {
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    match_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

/// A `spec.match` that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("spec.match.{field}: {message}")]
pub struct MatchError {
    field: &'static str,
    message: String,
}

const WILDCARD: &str = "*";

/// What the matcher reads from one admission request.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    group: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
    labels: &'a Value,
    namespace_labels: &'a Value,
}

fn text(value: &Value) -> &str {
    match value {
        Value::String(s) => s,
        _ => "",
    }
}

impl<'a> Subject<'a> {
    /// Read an AdmissionRequest (`request` of a review). The object is
    /// `object`, or `oldObject` for a DELETE; `inventory` is
    /// `data.inventory`.
    pub fn from_request(request: &'a Value, inventory: &'a Value) -> Subject<'a> {
        let object = match &request["object"] {
            Value::Null | Value::Undefined => &request["oldObject"],
            object => object,
        };
        let metadata = &object["metadata"];
        let name = match text(&request["name"]) {
            "" => text(&metadata["name"]),
            name => name,
        };
        let namespace = match text(&request["namespace"]) {
            "" => text(&metadata["namespace"]),
            namespace => namespace,
        };
        let kind = text(&request["kind"]["kind"]);
        let group = text(&request["kind"]["group"]);
        let namespace_labels = match &request["_unstable"]["namespace"]["metadata"]["labels"] {
            Value::Undefined => {
                &inventory["cluster"]["v1"]["Namespace"][namespace]["metadata"]["labels"]
            }
            labels => labels,
        };
        Subject {
            group,
            kind,
            namespace,
            name,
            labels: &metadata["labels"],
            namespace_labels,
        }
    }

    /// The object's group and kind.
    pub fn group_kind(&self) -> (&'a str, &'a str) {
        (self.group, self.kind)
    }

    /// The object's namespace (empty for cluster-scoped objects).
    pub fn namespace(&self) -> &'a str {
        self.namespace
    }

    fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.group.is_empty()
    }

    /// The namespace the namespace criteria compare: a Namespace's own name,
    /// otherwise the object's namespace (empty for cluster-scoped objects).
    fn effective_namespace(&self) -> &'a str {
        if self.is_namespace() {
            self.name
        } else {
            self.namespace
        }
    }
}

/// Whether `pattern` (`name`, `prefix*` or `*suffix`) matches `value`.
fn glob_matches(pattern: &str, value: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix('*') {
        value.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        value.starts_with(prefix)
    } else {
        pattern == value
    }
}

impl LabelSelector {
    fn matches(&self, labels: &Value) -> bool {
        let label = |key: &str| match &labels[key] {
            Value::String(s) => Some(s.as_ref()),
            _ => None,
        };
        self.match_labels
            .iter()
            .all(|(key, value)| label(key) == Some(value.as_str()))
            && self.match_expressions.iter().all(|req| {
                let present = label(&req.key);
                match req.operator.as_str() {
                    "In" => present.is_some_and(|v| req.values.iter().any(|x| x == v)),
                    "NotIn" => !present.is_some_and(|v| req.values.iter().any(|x| x == v)),
                    "Exists" => present.is_some(),
                    // Validated at load: only DoesNotExist is left.
                    _ => present.is_none(),
                }
            })
    }

    fn validate(&self, field: &'static str) -> Result<(), MatchError> {
        for req in &self.match_expressions {
            let needs_values = match req.operator.as_str() {
                "In" | "NotIn" => true,
                "Exists" | "DoesNotExist" => false,
                other => {
                    return Err(MatchError {
                        field,
                        message: format!(
                        "operator {other:?} on key {:?} is not In, NotIn, Exists or DoesNotExist",
                        req.key
                    ),
                    })
                }
            };
            if needs_values == req.values.is_empty() {
                return Err(MatchError {
                    field,
                    message: format!(
                        "operator {} on key {:?} {} values",
                        req.operator,
                        req.key,
                        if needs_values { "needs" } else { "takes no" }
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Match {
    /// Refuse criteria Gatekeeper would refuse: unknown operators, values
    /// where none belong, misplaced wildcards, unknown scopes.
    pub fn validate(&self) -> Result<(), MatchError> {
        let patterns = self
            .namespaces
            .iter()
            .map(|p| ("namespaces", p))
            .chain(
                self.excluded_namespaces
                    .iter()
                    .map(|p| ("excludedNamespaces", p)),
            )
            .chain(self.name.iter().map(|p| ("name", p)));
        for (field, pattern) in patterns {
            let inner = pattern.trim_start_matches('*').trim_end_matches('*');
            if inner.contains('*') || pattern.matches('*').count() > 1 {
                return Err(MatchError {
                    field,
                    message: format!(
                        "{pattern:?}: a pattern takes one `*`, at its start or its end"
                    ),
                });
            }
        }
        if let Some(scope) = &self.scope {
            if !matches!(scope.as_str(), "" | "*" | "Cluster" | "Namespaced") {
                return Err(MatchError {
                    field: "scope",
                    message: format!("{scope:?} is not *, Cluster or Namespaced"),
                });
            }
        }
        if let Some(selector) = &self.label_selector {
            selector.validate("labelSelector")?;
        }
        if let Some(selector) = &self.namespace_selector {
            selector.validate("namespaceSelector")?;
        }
        Ok(())
    }

    /// Whether an object of this group and kind can match at all (what the
    /// admission fast path asks before looking at anything else).
    pub fn may_match_kind(&self, group: &str, kind: &str) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|selector| {
                let kind_ok = selector.kinds.is_empty()
                    || selector.kinds.iter().any(|k| k == WILDCARD || k == kind);
                let group_ok = selector.api_groups.is_empty()
                    || selector
                        .api_groups
                        .iter()
                        .any(|g| g == WILDCARD || g == group);
                kind_ok && group_ok
            })
    }

    /// Whether a kind selector names `kind` itself (not through a wildcard
    /// or an empty list): kinds named in the bundle form a bounded set.
    pub fn names_kind(&self, kind: &str) -> bool {
        self.kinds
            .iter()
            .any(|selector| selector.kinds.iter().any(|k| k == kind))
    }

    /// Whether every criterion holds for `subject`.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        let (group, kind) = subject.group_kind();
        self.may_match_kind(group, kind)
            && self.scope_matches(subject)
            && self.namespaces_match(subject)
            && self.excluded_namespaces_match(subject)
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches(subject.labels))
            && self.namespace_selector_matches(subject)
            && self
                .name
                .as_deref()
                .is_none_or(|p| p.is_empty() || glob_matches(p, subject.name))
    }

    fn scope_matches(&self, subject: &Subject<'_>) -> bool {
        let namespaced = !subject.namespace.is_empty();
        match self.scope.as_deref() {
            Some("Cluster") => subject.is_namespace() || !namespaced,
            Some("Namespaced") => !subject.is_namespace() && namespaced,
            _ => true,
        }
    }

    fn namespaces_match(&self, subject: &Subject<'_>) -> bool {
        let namespace = subject.effective_namespace();
        self.namespaces.is_empty()
            || namespace.is_empty()
            || self.namespaces.iter().any(|p| glob_matches(p, namespace))
    }

    fn excluded_namespaces_match(&self, subject: &Subject<'_>) -> bool {
        let namespace = subject.effective_namespace();
        namespace.is_empty()
            || !self
                .excluded_namespaces
                .iter()
                .any(|p| glob_matches(p, namespace))
    }

    fn namespace_selector_matches(&self, subject: &Subject<'_>) -> bool {
        let Some(selector) = &self.namespace_selector else {
            return true;
        };
        if subject.is_namespace() {
            selector.matches(subject.labels)
        } else if subject.namespace.is_empty() {
            true
        } else {
            selector.matches(subject.namespace_labels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(yaml: &str) -> Match {
        let m: Match = yaml_serde::from_str(yaml).unwrap();
        m.validate().unwrap();
        m
    }

    fn request(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn pod(namespace: &str, labels: &str) -> Value {
        request(&format!(
            r#"{{"kind": {{"group": "", "version": "v1", "kind": "Pod"}}, "namespace": "{namespace}",
                "name": "web-1",
                "object": {{"metadata": {{"name": "web-1", "namespace": "{namespace}", "labels": {labels}}}}}}}"#
        ))
    }

    fn namespace_object(name: &str, labels: &str) -> Value {
        request(&format!(
            r#"{{"kind": {{"group": "", "version": "v1", "kind": "Namespace"}}, "name": "{name}",
                "object": {{"metadata": {{"name": "{name}", "labels": {labels}}}}}}}"#
        ))
    }

    fn cluster_role() -> Value {
        request(
            r#"{"kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"},
                "name": "admin", "object": {"metadata": {"name": "admin"}}}"#,
        )
    }

    fn check(m: &Match, req: &Value, inventory: &Value) -> bool {
        m.matches(&Subject::from_request(req, inventory))
    }

    #[test]
    fn kinds_and_groups_with_wildcards() {
        let none = Value::Undefined;
        let m = matcher("kinds: [{apiGroups: [''], kinds: [Pod]}]");
        assert!(check(&m, &pod("a", "{}"), &none));
        assert!(!check(&m, &cluster_role(), &none));
        let m = matcher("kinds: [{apiGroups: ['*'], kinds: [ClusterRole]}]");
        assert!(check(&m, &cluster_role(), &none));
        assert!(matcher("{}").may_match_kind("apps", "Deployment"));
        assert!(!matcher("kinds: [{apiGroups: [apps], kinds: ['*']}]").may_match_kind("", "Pod"));
    }

    #[test]
    fn namespace_patterns_and_cluster_scoped_objects() {
        let none = Value::Undefined;
        let m = matcher("namespaces: ['team-*', prod]");
        assert!(check(&m, &pod("team-a", "{}"), &none));
        assert!(check(&m, &pod("prod", "{}"), &none));
        assert!(!check(&m, &pod("dev", "{}"), &none));
        assert!(check(&m, &cluster_role(), &none), "cluster-scoped");
        assert!(check(&m, &namespace_object("team-b", "{}"), &none));
        assert!(!check(&m, &namespace_object("other", "{}"), &none));
        let m = matcher("excludedNamespaces: ['*-system']");
        assert!(!check(&m, &pod("kube-system", "{}"), &none));
        assert!(check(&m, &pod("payments", "{}"), &none));
        assert!(!check(
            &m,
            &namespace_object("gatekeeper-system", "{}"),
            &none
        ));
    }

    #[test]
    fn label_selector_operators() {
        let none = Value::Undefined;
        let m = matcher(
            "labelSelector:\n  matchLabels: {app: web}\n  matchExpressions:\n  - {key: tier, operator: In, values: [front, back]}\n  - {key: env, operator: NotIn, values: [dev]}\n  - {key: owner, operator: Exists}\n  - {key: legacy, operator: DoesNotExist}\n",
        );
        let ok = r#"{"app": "web", "tier": "front", "owner": "ana"}"#;
        assert!(check(&m, &pod("a", ok), &none));
        assert!(check(
            &m,
            &pod(
                "a",
                r#"{"app": "web", "tier": "front", "owner": "ana", "env": "prod"}"#
            ),
            &none
        ));
        for bad in [
            r#"{"app": "api", "tier": "front", "owner": "ana"}"#,
            r#"{"app": "web", "tier": "mid", "owner": "ana"}"#,
            r#"{"app": "web", "tier": "front", "owner": "ana", "env": "dev"}"#,
            r#"{"app": "web", "tier": "front"}"#,
            r#"{"app": "web", "tier": "front", "owner": "ana", "legacy": "y"}"#,
        ] {
            assert!(!check(&m, &pod("a", bad), &none), "{bad}");
        }
    }

    #[test]
    fn namespace_selector_reads_the_inventory_or_the_namespace_itself() {
        let inventory = request(
            r#"{"cluster": {"v1": {"Namespace": {"prod": {"metadata": {"labels": {"env": "prod"}}}}}}}"#,
        );
        let m = matcher("namespaceSelector: {matchLabels: {env: prod}}");
        assert!(check(&m, &pod("prod", "{}"), &inventory));
        assert!(!check(&m, &pod("unknown", "{}"), &inventory));
        assert!(check(
            &m,
            &namespace_object("x", r#"{"env": "prod"}"#),
            &inventory
        ));
        assert!(check(&m, &cluster_role(), &inventory));
        let mut supplied = pod("unknown", "{}");
        supplied.as_object_mut().unwrap().insert(
            Value::from("_unstable"),
            request(r#"{"namespace": {"metadata": {"labels": {"env": "prod"}}}}"#),
        );
        assert!(check(&m, &supplied, &inventory));
    }

    #[test]
    fn scope_and_name() {
        let none = Value::Undefined;
        let m = matcher("scope: Cluster");
        assert!(check(&m, &cluster_role(), &none));
        assert!(check(&m, &namespace_object("a", "{}"), &none));
        assert!(!check(&m, &pod("a", "{}"), &none));
        let m = matcher("scope: Namespaced");
        assert!(!check(&m, &cluster_role(), &none));
        assert!(check(&m, &pod("a", "{}"), &none));
        assert!(check(&matcher("name: 'web-*'"), &pod("a", "{}"), &none));
        assert!(!check(&matcher("name: 'api-*'"), &pod("a", "{}"), &none));
    }

    #[test]
    fn invalid_criteria_are_refused() {
        for yaml in [
            "labelSelector: {matchExpressions: [{key: a, operator: Has}]}",
            "labelSelector: {matchExpressions: [{key: a, operator: In}]}",
            "namespaceSelector: {matchExpressions: [{key: a, operator: Exists, values: [x]}]}",
            "namespaces: ['a*b']",
            "scope: cluster",
        ] {
            let m: Match = yaml_serde::from_str(yaml).unwrap();
            assert!(m.validate().is_err(), "{yaml}");
        }
        assert!(yaml_serde::from_str::<Match>("excludeNamespaces: [a]").is_err());
    }
}
