//! The compiled Gatekeeper library of one snapshot: every template in an
//! engine of its own (its Rego, its `libs` and `data.inventory`, nothing
//! else), every constraint bound to its template, and the review of one
//! admission request against all constraints that match it.

use std::collections::HashMap;
use std::path::PathBuf;

use super::document::{self, ConstraintDef, Document, EnforcementAction, ObjectKind, TemplateDef};
use super::matching::Subject;
use super::GatekeeperError;
use crate::bundle::GatekeeperFile;
use crate::bundle::{Bundle, Manifest, PolicyFile, RegoVersion};
use crate::engine::reads::{InputReads, ReadSet};
use crate::engine::{DataPath, EngineOptions, EvalError, PolicyError, PolicySet, Value};

/// A template compiled in isolation.
struct CompiledTemplate {
    name: String,
    /// Its Rego and libraries, prepared (on the VM where it compiles).
    policies: PolicySet,
    /// What its Rego reads, with `input.review` mapped onto the review's
    /// `request`.
    reads: ReadSet,
    /// `data.<package>.violation`.
    violation: DataPath,
    /// Head elements its interpreter would evaluate differently from OPA
    /// (`engine::undefined_heads`), positioned in the template's file.
    warnings: Vec<PolicyError>,
}

/// A constraint bound to its compiled template.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// The constraint as read.
    pub def: ConstraintDef,
    template: usize,
    /// `spec.parameters` in the engine's value type, converted once.
    parameters: Value,
}

/// One violation a constraint found.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The constraint's name.
    pub constraint: String,
    /// The constraint's kind.
    pub kind: String,
    /// What the constraint does with it.
    pub action: EnforcementAction,
    /// The violation's `msg`.
    pub message: String,
    /// The violation's `details` (undefined when absent).
    pub details: Value,
    /// The template could not be evaluated: `message` says why.
    pub evaluation_failed: bool,
}

/// Templates and constraints, ready to review requests concurrently.
pub struct Library {
    templates: Vec<CompiledTemplate>,
    constraints: Vec<Constraint>,
    inventory: Value,
    reads: ReadSet,
}

impl Default for Library {
    fn default() -> Self {
        Library {
            templates: Vec::new(),
            constraints: Vec::new(),
            inventory: Value::new_object(),
            reads: ReadSet::default(),
        }
    }
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field(
                "templates",
                &self.templates.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .field("constraints", &self.constraints.len())
            .finish()
    }
}

/// Every template and constraint document found in `files`.
pub fn read_files(
    files: &[GatekeeperFile],
) -> Result<(Vec<TemplateDef>, Vec<ConstraintDef>), GatekeeperError> {
    let mut templates = Vec::new();
    let mut constraints = Vec::new();
    for file in files {
        for doc in document::documents(&file.shown, &file.text)? {
            match document::object_kind(&doc) {
                ObjectKind::Template => templates.push(document::template(&doc)?),
                ObjectKind::Constraint => constraints.push(document::constraint(&doc)?),
                ObjectKind::Other => {}
            }
        }
    }
    Ok((templates, constraints))
}

impl Library {
    /// Compile `templates` and bind `constraints` to them. `inventory` is
    /// what templates see as `data.inventory`.
    pub fn compile(
        templates: Vec<TemplateDef>,
        constraints: Vec<ConstraintDef>,
        inventory: Value,
        options: &EngineOptions,
    ) -> Result<Library, GatekeeperError> {
        let mut by_kind: HashMap<String, usize> = HashMap::new();
        let mut compiled = Vec::new();
        let mut schemas: HashMap<String, jsonschema::Validator> = HashMap::new();
        for template in templates {
            if let Some(&index) = by_kind.get(&template.kind) {
                let other: &CompiledTemplate = &compiled[index];
                return Err(GatekeeperError::Invalid {
                    location: template.document.location(),
                    object: format!("ConstraintTemplate {}", template.name),
                    message: format!(
                        "kind {} is already defined by template {}",
                        template.kind, other.name
                    ),
                });
            }
            by_kind.insert(template.kind.clone(), compiled.len());
            if let Some(schema) = &template.parameters_schema {
                // Checked when the template was read.
                if let Ok(validator) = jsonschema::validator_for(schema) {
                    schemas.insert(template.kind.clone(), validator);
                }
            }
            compiled.push(compile_template(&template, &inventory, options)?);
        }
        let mut names: HashMap<(String, String), ()> = HashMap::new();
        let mut bound = Vec::new();
        for def in constraints {
            let Some(&template) = by_kind.get(&def.kind) else {
                return Err(GatekeeperError::Invalid {
                    location: def.location.clone(),
                    object: format!("{} {}", def.kind, def.name),
                    message: format!("no ConstraintTemplate defines kind {}", def.kind),
                });
            };
            if names
                .insert((def.kind.clone(), def.name.clone()), ())
                .is_some()
            {
                return Err(GatekeeperError::Invalid {
                    location: def.location.clone(),
                    object: format!("{} {}", def.kind, def.name),
                    message: "a constraint of this kind and name is already defined".into(),
                });
            }
            if let Some(validator) = schemas.get(&def.kind) {
                check_parameters(&def, validator)?;
            }
            let parameters = match &def.parameters {
                serde_json::Value::Null => Value::new_object(),
                other => Value::from(other.clone()),
            };
            bound.push(Constraint {
                def,
                template,
                parameters,
            });
        }
        let mut reads = matcher_reads();
        for constraint in &bound {
            reads.merge(&compiled[constraint.template].reads);
        }
        Ok(Library {
            reads,
            templates: compiled,
            constraints: bound,
            inventory,
        })
    }

    /// Template rules that regorus's interpreter, which runs every
    /// template, would evaluate differently from OPA, one message each.
    pub fn warnings(&self) -> Vec<String> {
        self.templates
            .iter()
            .flat_map(|t| t.warnings.iter().map(|w| w.message.clone()))
            .collect()
    }

    /// What reviewing a request can read of an AdmissionReview: the
    /// matcher's fields and every bound template's reads. Used by the
    /// decision cache.
    pub fn reads(&self) -> &ReadSet {
        &self.reads
    }

    /// Whether there is nothing to evaluate.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty()
    }

    /// The templates' names.
    pub fn template_names(&self) -> Vec<&str> {
        self.templates.iter().map(|t| t.name.as_str()).collect()
    }

    /// The constraints.
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    /// Whether some constraint could match an object of this group and kind
    /// (when none can, the request needs no evaluation at all).
    pub fn may_match_kind(&self, group: &str, kind: &str) -> bool {
        self.constraints
            .iter()
            .any(|c| c.def.matcher.may_match_kind(group, kind))
    }

    /// Whether some constraint names `kind` in its match (not through a
    /// wildcard): such kinds are a bounded set, fit for metric labels.
    pub fn names_kind(&self, kind: &str) -> bool {
        self.constraints
            .iter()
            .any(|c| c.def.matcher.names_kind(kind))
    }

    /// Review one AdmissionRequest against every constraint that matches it.
    /// A constraint whose evaluation fails is reported as a violation of its
    /// own, so a broken template never lets a request through unnoticed.
    pub fn review(&self, request: &Value) -> Vec<Violation> {
        self.review_timed(request, None, |_, _| {})
    }

    /// [`Library::review`], reporting how long each evaluated constraint
    /// took (name, duration) to `timed`. With a `deadline` (the end of the
    /// review's time budget), each constraint evaluates for no longer than
    /// is left of it, and one evaluated after it fails (as a violation of
    /// its own: the review fails closed).
    pub fn review_timed(
        &self,
        request: &Value,
        deadline: Option<std::time::Instant>,
        mut timed: impl FnMut(&str, std::time::Duration),
    ) -> Vec<Violation> {
        let subject = Subject::from_request(request, &self.inventory);
        let mut violations = Vec::new();
        for constraint in &self.constraints {
            if !constraint.def.matcher.matches(&subject) {
                continue;
            }
            let started = std::time::Instant::now();
            let limit = deadline.map(|d| d.saturating_duration_since(started));
            let evaluated = self.evaluate(constraint, request, limit);
            timed(&constraint.def.name, started.elapsed());
            match evaluated {
                Ok(found) => violations.extend(found),
                Err(err) => violations.push(Violation {
                    constraint: constraint.def.name.clone(),
                    kind: constraint.def.kind.clone(),
                    action: constraint.def.action,
                    message: format!("template evaluation failed: {err}"),
                    details: Value::Undefined,
                    evaluation_failed: true,
                }),
            }
        }
        violations
    }

    fn evaluate(
        &self,
        constraint: &Constraint,
        request: &Value,
        limit: Option<std::time::Duration>,
    ) -> Result<Vec<Violation>, EvalError> {
        let template = &self.templates[constraint.template];
        let mut input = Value::new_object();
        if let Ok(fields) = input.as_object_mut() {
            fields.insert(Value::from("review"), request.clone());
            fields.insert(Value::from("parameters"), constraint.parameters.clone());
        }
        let policies = &template.policies;
        let limit = limit.unwrap_or(policies.options().eval_timeout);
        let result = policies.evaluate_within(&template.violation, Some(input), limit)?;
        let items: Vec<&Value> = match &result {
            Value::Set(items) => items.iter().collect(),
            Value::Array(items) => items.iter().collect(),
            _ => Vec::new(),
        };
        Ok(items
            .into_iter()
            .map(|item| Violation {
                constraint: constraint.def.name.clone(),
                kind: constraint.def.kind.clone(),
                action: constraint.def.action,
                message: match &item["msg"] {
                    Value::String(msg) => msg.to_string(),
                    _ => item
                        .to_json_str()
                        .unwrap_or_else(|_| "violation without msg".into()),
                },
                details: item["details"].clone(),
                evaluation_failed: false,
            })
            .collect())
    }
}

/// The AdmissionReview fields `spec.match` reads ([`Subject::from_request`]).
fn matcher_reads() -> ReadSet {
    let paths = [
        &["request", "kind"][..],
        &["request", "name"],
        &["request", "namespace"],
        &["request", "object", "metadata", "name"],
        &["request", "object", "metadata", "namespace"],
        &["request", "object", "metadata", "labels"],
        &["request", "oldObject", "metadata", "name"],
        &["request", "oldObject", "metadata", "namespace"],
        &["request", "oldObject", "metadata", "labels"],
        &["request", "_unstable", "namespace"],
    ];
    ReadSet {
        input: InputReads::Paths(
            paths
                .iter()
                .map(|p| p.iter().map(|s| s.to_string()).collect())
                .collect(),
        ),
        nondeterministic: Vec::new(),
    }
}

/// A constraint's `spec.parameters` must match its template's
/// openAPIV3Schema, as Gatekeeper's admission of the constraint checks; the
/// error names every mismatch by its path.
fn check_parameters(
    def: &ConstraintDef,
    validator: &jsonschema::Validator,
) -> Result<(), GatekeeperError> {
    let parameters = match &def.parameters {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other.clone(),
    };
    let problems: Vec<String> = validator
        .iter_errors(&parameters)
        .map(|err| {
            let at = err.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("spec.parameters{at}: {err}")
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(GatekeeperError::Invalid {
        location: def.location.clone(),
        object: format!("{} {}", def.kind, def.name),
        message: format!(
            "does not match the template's openAPIV3Schema: {}",
            problems.join("; ")
        ),
    })
}

fn compile_template(
    template: &TemplateDef,
    inventory: &Value,
    options: &EngineOptions,
) -> Result<CompiledTemplate, GatekeeperError> {
    let doc: &Document = &template.document;
    let rego_error = |errors: Vec<PolicyError>| GatekeeperError::Rego {
        template: template.name.clone(),
        errors,
    };
    let version = if template.source.v1 {
        RegoVersion::V1
    } else {
        RegoVersion::V0
    };
    // The main module is "rego", the libraries "lib<N>": errors found in
    // them are positioned back into the YAML file.
    let blocks: Vec<(String, &String)> =
        std::iter::once(("rego".to_string(), &template.source.rego))
            .chain(
                template
                    .source
                    .libs
                    .iter()
                    .enumerate()
                    .map(|(i, lib)| (format!("lib{i}"), lib)),
            )
            .collect();
    let bundle = Bundle {
        name: template.name.clone(),
        location: PathBuf::from(&doc.file),
        manifest: Manifest::default(),
        policies: blocks
            .iter()
            .map(|(id, source)| PolicyFile {
                id: id.clone(),
                path: format!("{id}.rego"),
                source: (*source).clone(),
                rego_version: version,
            })
            .collect(),
        data: Value::new_object(),
        gatekeeper: Vec::new(),
    };
    let locate = |error: &PolicyError| {
        let block = error
            .location
            .as_ref()
            .and_then(|at| blocks.iter().find(|(id, _)| *id == at.file));
        match (block, &error.location) {
            // Row 0 names the block alone: the document is as precise.
            (Some((_, source)), Some(at)) if at.row > 0 => PolicyError {
                message: error.message.clone(),
                location: Some(doc.locate_embedded(source, at.row, at.col)),
            },
            _ => PolicyError {
                message: error.message.clone(),
                location: Some(doc.location()),
            },
        }
    };
    let mut data = Value::new_object();
    if let Ok(fields) = data.as_object_mut() {
        fields.insert(Value::from("inventory"), inventory.clone());
    }
    // Templates run on the interpreter: they are written elsewhere and not
    // covered by the VM differential tests, and where the VM and the
    // interpreter differ (a runtime error inside a violation body, say) the
    // VM can answer "no violation" where the interpreter fails closed. The
    // decision cache carries the speed.
    let interpreted = EngineOptions {
        use_vm: false,
        ..options.clone()
    };
    let policies = PolicySet::compile_with_data(&[bundle], Some(data), interpreted)
        .map_err(|err| rego_error(err.errors().iter().map(locate).collect()))?;
    let mut errors = Vec::new();
    let mut package = String::new();
    for module in policies.modules() {
        let under_lib = module.package.starts_with("data.lib.") || module.package == "data.lib";
        let at = blocks
            .iter()
            .find(|(id, _)| *id == module.id)
            .map(|(_, source)| doc.locate_embedded(source, 1, 1));
        if module.id == "rego" {
            package = module.package.clone();
            if under_lib {
                errors.push(PolicyError {
                    message: format!(
                        "the template's own package {} may not be under data.lib",
                        module.package
                    ),
                    location: at,
                });
            }
        } else if !under_lib {
            errors.push(PolicyError {
                message: format!("library package {} must be under data.lib", module.package),
                location: at,
            });
        }
    }
    if !errors.is_empty() {
        return Err(rego_error(errors));
    }
    let violation_rule = format!("{package}.violation");
    if !policies.has_rule(&violation_rule) {
        return Err(rego_error(vec![PolicyError {
            message: format!("{package} defines no violation rule"),
            location: Some(doc.location()),
        }]));
    }
    let violation = DataPath::from_dotted(&violation_rule);
    let reads = policies
        .reads_of(&violation)
        .rebased("review", &["request"], false);
    let warnings = policies
        .undefined_heads()
        .iter()
        .map(|head| {
            let at = locate(&PolicyError {
                message: String::new(),
                location: Some(head.location.clone()),
            })
            .location;
            let mut positioned = head.clone();
            if let Some(at) = at {
                positioned.location = at;
            }
            PolicyError {
                message: format!("ConstraintTemplate {}: {positioned}", template.name),
                location: None,
            }
        })
        .collect();
    Ok(CompiledTemplate {
        name: template.name.clone(),
        policies,
        reads,
        violation,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::GatekeeperFile;

    fn template(kind: &str, rego: &str, libs: &[&str]) -> String {
        let indent = |text: &str, by: usize| {
            text.lines()
                .map(|l| format!("{}{l}\n", " ".repeat(by)))
                .collect::<String>()
        };
        let libs_yaml: String = libs
            .iter()
            .map(|lib| format!("        - |\n{}", indent(lib, 10)))
            .collect();
        format!(
            "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: {}\nspec:\n  crd:\n    spec:\n      names:\n        kind: {kind}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n{}{}",
            kind.to_lowercase(),
            indent(rego, 8),
            if libs.is_empty() { String::new() } else { format!("      libs:\n{libs_yaml}") }
        )
    }

    fn constraint(kind: &str, name: &str) -> String {
        format!("apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata:\n  name: {name}\n")
    }

    fn library(docs: &[String]) -> Result<Library, GatekeeperError> {
        let files = vec![GatekeeperFile {
            path: "g.yaml".into(),
            shown: "g.yaml".into(),
            text: docs.join("---\n"),
        }];
        let (templates, constraints) = read_files(&files)?;
        Library::compile(
            templates,
            constraints,
            Value::new_object(),
            &EngineOptions::default(),
        )
    }

    fn pod_request() -> Value {
        Value::from_json_str(
            r#"{"kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "a",
                "object": {"metadata": {"name": "p"}, "spec": {"n": 3}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn libraries_are_shared_within_a_template_only() {
        let uses_lib = template(
            "K8sA",
            "package k8sa\nimport data.lib.helpers\nviolation[{\"msg\": m}] { helpers.big; m := \"too big\" }",
            &["package lib.helpers\nbig { input.review.object.spec.n > 2 }"],
        );
        let lib = library(&[uses_lib.clone(), constraint("K8sA", "a")]).unwrap();
        let found = lib.review(&pod_request());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message, "too big");
        assert_eq!(found[0].constraint, "a");

        // Another template cannot see K8sA's library: it is isolated.
        let borrows = template(
            "K8sB",
            "package k8sb\nviolation[{\"msg\": \"b\"}] { data.lib.helpers.big }",
            &[],
        );
        let lib = library(&[uses_lib, borrows, constraint("K8sB", "b")]).unwrap();
        assert!(lib.review(&pod_request()).is_empty());
    }

    #[test]
    fn head_elements_the_interpreter_misreads_are_warnings_placed_in_the_yaml() {
        let owner = "input.review.object.metadata.labels.owner";
        let named = template(
            "K8sNamed",
            &format!(
                "package k8snamed\nviolation[{{\"msg\": \"big\", \"owner\": {owner}}}] {{ input.review.object.spec.n > 2 }}"
            ),
            &[],
        );
        let lib = library(&[named, constraint("K8sNamed", "n")]).unwrap();
        let warnings = lib.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(&format!(
                "ConstraintTemplate k8snamed: g.yaml:14:19: `{{\"msg\": \"big\", \"owner\": {owner}}}` in the head of `violation` can be undefined"
            )),
            "{}",
            warnings[0]
        );
        // Bound in the body instead, the element is defined whenever the
        // body holds: no warning.
        let bound = template(
            "K8sBound",
            &format!(
                "package k8sbound\nviolation[{{\"msg\": \"big\", \"owner\": o}}] {{ input.review.object.spec.n > 2; o := {owner} }}"
            ),
            &[],
        );
        let lib = library(&[bound, constraint("K8sBound", "b")]).unwrap();
        assert!(lib.warnings().is_empty(), "{:?}", lib.warnings());
    }

    #[test]
    fn broken_definitions_are_refused_with_their_reason() {
        let ok = template(
            "K8sA",
            "package k8sa\nviolation[{\"msg\": \"x\"}] { true }",
            &[],
        );
        let cases = [
            (vec![ok.clone(), ok.clone()], "already defined by template"),
            (
                vec![constraint("K8sMissing", "m")],
                "no ConstraintTemplate defines kind K8sMissing",
            ),
            (
                vec![ok.clone(), constraint("K8sA", "a"), constraint("K8sA", "a")],
                "already defined",
            ),
            (
                vec![template("K8sC", "package k8sc\nallow { true }", &[])],
                "defines no violation rule",
            ),
            (
                vec![template(
                    "K8sD",
                    "package k8sd\nviolation[{\"msg\": \"x\"}] { true }",
                    &["package helpers\nx := 1"],
                )],
                "must be under data.lib",
            ),
            (
                vec![template(
                    "K8sE",
                    "package lib.e\nviolation[{\"msg\": \"x\"}] { true }",
                    &[],
                )],
                "may not be under data.lib",
            ),
            (
                vec![ok.replace("name: k8sa", "name: other")],
                "lowercase of the kind",
            ),
            (
                // OPA's deprecated builtin, which regorus does not have:
                // refused at load, not at each review.
                vec![template(
                    "K8sF",
                    "package k8sf\nviolation[{\"msg\": \"x\"}] { re_match(\"a\", input.review.object.kind) }",
                    &[],
                )],
                "g.yaml:14:35: undefined function re_match",
            ),
            (
                vec![ok.replace("admission.k8s.gatekeeper.sh", "audit.example.com")],
                "is not supported",
            ),
            (
                vec![
                    ok.clone(),
                    constraint("K8sA", "a") + "spec:\n  enforcementAction: block\n",
                ],
                "is not one of deny, warn, dryrun",
            ),
        ];
        for (docs, expected) in cases {
            let err = library(&docs).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
    }

    #[test]
    fn constraint_parameters_must_match_the_templates_schema() {
        let with_schema = template(
            "K8sLabels",
            "package k8slabels\nviolation[{\"msg\": \"x\"}] { false }",
            &[],
        )
        .replace(
            "        kind: K8sLabels\n",
            "        kind: K8sLabels\n      validation:\n        openAPIV3Schema:\n          type: object\n          properties:\n            labels:\n              type: array\n              items: {type: string}\n",
        );
        let good = constraint("K8sLabels", "good") + "spec:\n  parameters:\n    labels: [team]\n";
        assert!(library(&[with_schema.clone(), good]).is_ok());
        let absent = constraint("K8sLabels", "none");
        assert!(
            library(&[with_schema.clone(), absent]).is_ok(),
            "no parameters is an empty object"
        );
        let bad = constraint("K8sLabels", "bad") + "spec:\n  parameters:\n    labels: team\n";
        let err = library(&[with_schema.clone(), bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains("K8sLabels bad"), "{err}");
        assert!(err.contains("openAPIV3Schema"), "{err}");
        assert!(err.contains("spec.parameters/labels"), "{err}");
        assert!(
            err.starts_with("g.yaml:"),
            "the error points at the constraint: {err}"
        );
        let worse = constraint("K8sLabels", "worse") + "spec:\n  parameters:\n    labels: [1, 2]\n";
        let err = library(&[with_schema, worse]).unwrap_err().to_string();
        assert!(
            err.contains("spec.parameters/labels/0") && err.contains("spec.parameters/labels/1"),
            "{err}"
        );
        let unusable = template(
            "K8sU",
            "package k8su\nviolation[{\"msg\": \"x\"}] { false }",
            &[],
        )
        .replace(
            "        kind: K8sU\n",
            "        kind: K8sU\n      validation:\n        openAPIV3Schema:\n          type: 12\n",
        );
        let err = library(&[unusable]).unwrap_err().to_string();
        assert!(err.contains("not a usable schema"), "{err}");
    }

    #[test]
    fn a_failing_template_is_reported_not_skipped() {
        let failing = template(
            "K8sF",
            "package k8sf\nviolation[{\"msg\": m}] { o := {k: v | v := [1, 2][_]; k := \"a\"}; m := sprintf(\"%v\", [o]) }",
            &[],
        );
        let lib = library(&[failing, constraint("K8sF", "f")]).unwrap();
        let found = lib.review(&pod_request());
        assert_eq!(found.len(), 1);
        assert!(found[0].evaluation_failed, "{found:?}");
        assert!(found[0].message.starts_with("template evaluation failed"));
        assert_eq!(found[0].action, EnforcementAction::Deny);
    }
}
