//! YAML files of Kubernetes objects: split into documents that remember
//! their first line, and Gatekeeper ConstraintTemplates and Constraints read
//! from them into typed definitions. Pure: no engine.

use serde::Deserialize;
use serde_json::Value as Json;

use super::matching::Match;
use super::GatekeeperError;
use crate::location::Location;

/// The only Gatekeeper target Portcullis serves.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file, as errors name it.
    pub file: String,
    /// The 1-based line the document starts on.
    pub row: usize,
    /// The document's own text.
    pub text: String,
    /// The parsed document.
    pub value: Json,
}

impl Document {
    /// Where the document starts.
    pub fn location(&self) -> Location {
        Location::new(self.file.clone(), self.row, 1)
    }

    fn text_field(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Json::as_str)
            .unwrap_or_default()
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.text_field("/apiVersion")
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.text_field("/kind")
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.text_field("/metadata/name")
    }

    /// Map a position inside an embedded text block (a template's Rego) to
    /// the file: the block's first non-blank line is looked up in the
    /// document, and rows and columns are offset from there.
    pub fn locate_embedded(&self, block: &str, row: u32, col: u32) -> Location {
        let Some((first_index, first_line)) = block
            .lines()
            .enumerate()
            .find(|(_, line)| !line.trim().is_empty())
        else {
            return self.location();
        };
        let found = self
            .text
            .lines()
            .enumerate()
            .find(|(_, line)| line.trim() == first_line.trim());
        match found {
            Some((index, line)) => {
                let indent = line.len() - line.trim_start().len();
                let yaml_row = (self.row + index + row as usize).saturating_sub(1 + first_index);
                Location::new(self.file.clone(), yaml_row, col as usize + indent)
            }
            None => self.location(),
        }
    }
}

/// Split a YAML file into its documents, parsed. Empty documents (only
/// comments, or nothing between two `---`) are left out.
pub fn documents(file: &str, text: &str) -> Result<Vec<Document>, GatekeeperError> {
    let mut chunks: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            chunks.push((start, std::mem::take(&mut current)));
            start = index + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    chunks.push((start, current));
    let mut out = Vec::new();
    for (row, chunk) in chunks {
        let value: Json = yaml_serde::from_str(&chunk).map_err(|err| {
            let (line, col) = err
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 0));
            GatekeeperError::Yaml {
                location: Location::new(file, row + line.saturating_sub(1), col),
                message: err.to_string(),
            }
        })?;
        if value.is_null() {
            continue;
        }
        out.push(Document {
            file: file.to_string(),
            row,
            text: chunk,
            value,
        });
    }
    Ok(out)
}

/// What a document is, by its `apiVersion` and `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `templates.gatekeeper.sh/*` `ConstraintTemplate`.
    Template,
    /// `constraints.gatekeeper.sh/*`, any kind.
    Constraint,
    /// Anything else.
    Other,
}

/// Classify a document.
pub fn object_kind(doc: &Document) -> ObjectKind {
    let group = doc.api_version().split('/').next().unwrap_or_default();
    match group {
        "templates.gatekeeper.sh" if doc.kind() == "ConstraintTemplate" => ObjectKind::Template,
        "constraints.gatekeeper.sh" => ObjectKind::Constraint,
        _ => ObjectKind::Other,
    }
}

/// A template's Rego: the main module, its libraries, and which syntax.
#[derive(Debug, Clone)]
pub struct RegoSource {
    /// The module that defines `violation`.
    pub rego: String,
    /// Library modules (packages under `lib.`).
    pub libs: Vec<String>,
    /// Rego v1 syntax (`code[].source.version: v1`); v0 otherwise, as in
    /// Gatekeeper.
    pub v1: bool,
}

/// A ConstraintTemplate as read.
#[derive(Debug, Clone)]
pub struct TemplateDef {
    /// `metadata.name`.
    pub name: String,
    /// The constraint kind it defines (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// Its Rego.
    pub source: RegoSource,
    /// `spec.crd.spec.validation.openAPIV3Schema`: the schema of its
    /// constraints' `spec.parameters`, when given.
    pub parameters_schema: Option<Json>,
    /// The document it came from.
    pub document: Document,
}

/// What a constraint does with a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementAction {
    /// Refuse the request.
    Deny,
    /// Allow it with a warning.
    Warn,
    /// Allow it; record the violation only.
    Dryrun,
}

impl EnforcementAction {
    /// The name Gatekeeper uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Deny => "deny",
            EnforcementAction::Warn => "warn",
            EnforcementAction::Dryrun => "dryrun",
        }
    }
}

/// A Constraint as read.
#[derive(Debug, Clone)]
pub struct ConstraintDef {
    /// Its kind: the template it instantiates.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.enforcementAction`.
    pub action: EnforcementAction,
    /// `spec.match`.
    pub matcher: Match,
    /// `spec.parameters` (null when absent).
    pub parameters: Json,
    /// Where it was defined.
    pub location: Location,
}

#[derive(Deserialize)]
struct TemplateObject {
    spec: TemplateSpec,
}

#[derive(Deserialize)]
struct TemplateSpec {
    crd: Crd,
    #[serde(default)]
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Crd {
    spec: CrdSpec,
}

#[derive(Deserialize)]
struct CrdSpec {
    names: Names,
    #[serde(default)]
    validation: Option<Validation>,
}

#[derive(Deserialize)]
struct Validation {
    #[serde(default, rename = "openAPIV3Schema")]
    open_api_v3_schema: Option<Json>,
}

#[derive(Deserialize)]
struct Names {
    kind: String,
}

#[derive(Deserialize)]
struct Target {
    target: String,
    #[serde(default)]
    rego: String,
    #[serde(default)]
    libs: Vec<String>,
    #[serde(default)]
    code: Vec<Code>,
}

#[derive(Deserialize)]
struct Code {
    engine: String,
    #[serde(default)]
    source: Json,
}

#[derive(Deserialize)]
struct RegoCode {
    #[serde(default)]
    rego: String,
    #[serde(default)]
    libs: Vec<String>,
    #[serde(default)]
    version: String,
}

/// Read a ConstraintTemplate.
pub fn template(doc: &Document) -> Result<TemplateDef, GatekeeperError> {
    let name = doc.name().to_string();
    let invalid = |message: String| GatekeeperError::Invalid {
        location: doc.location(),
        object: format!("ConstraintTemplate {name}"),
        message,
    };
    let object: TemplateObject =
        serde_json::from_value(doc.value.clone()).map_err(|e| invalid(e.to_string()))?;
    let kind = object.spec.crd.spec.names.kind;
    let parameters_schema = object
        .spec
        .crd
        .spec
        .validation
        .and_then(|v| v.open_api_v3_schema);
    if name.is_empty() {
        return Err(invalid("metadata.name is required".into()));
    }
    if name != kind.to_lowercase() {
        return Err(invalid(format!(
            "metadata.name must be the lowercase of the kind it defines ({})",
            kind.to_lowercase()
        )));
    }
    let [target] = <[Target; 1]>::try_from(object.spec.targets)
        .map_err(|targets| invalid(format!("needs exactly one target, has {}", targets.len())))?;
    if target.target != ADMISSION_TARGET {
        return Err(GatekeeperError::Unsupported {
            location: doc.location(),
            template: name,
            reason: format!(
                "target {} (only {ADMISSION_TARGET} is served)",
                target.target
            ),
        });
    }
    let rego_code = target.code.iter().find(|c| c.engine == "Rego");
    let source = if let Some(code) = rego_code {
        let code: RegoCode = serde_json::from_value(code.source.clone())
            .map_err(|e| invalid(format!("code[engine=Rego].source: {e}")))?;
        RegoSource {
            rego: code.rego,
            libs: code.libs,
            v1: code.version == "v1",
        }
    } else {
        RegoSource {
            rego: target.rego,
            libs: target.libs,
            v1: false,
        }
    };
    if source.rego.trim().is_empty() {
        let engines: Vec<&str> = target.code.iter().map(|c| c.engine.as_str()).collect();
        let reason = if engines.is_empty() {
            "it has no Rego".to_string()
        } else {
            format!(
                "it has no Rego, only {}: Portcullis evaluates Rego templates and does not \
                 evaluate CEL",
                engines.join(", ")
            )
        };
        return Err(GatekeeperError::Unsupported {
            location: doc.location(),
            template: name,
            reason,
        });
    }
    if let Some(schema) = &parameters_schema {
        jsonschema::validator_for(schema).map_err(|err| {
            invalid(format!(
                "spec.crd.spec.validation.openAPIV3Schema is not a usable schema: {err}"
            ))
        })?;
    }
    Ok(TemplateDef {
        name,
        kind,
        source,
        parameters_schema,
        document: doc.clone(),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConstraintSpec {
    #[serde(default)]
    enforcement_action: Option<String>,
    #[serde(default)]
    scoped_enforcement_actions: Option<Json>,
    #[serde(default, rename = "match")]
    matcher: Match,
    #[serde(default)]
    parameters: Json,
}

/// Read a Constraint.
pub fn constraint(doc: &Document) -> Result<ConstraintDef, GatekeeperError> {
    let name = doc.name().to_string();
    let kind = doc.kind().to_string();
    let invalid = |message: String| GatekeeperError::Invalid {
        location: doc.location(),
        object: format!("{kind} {name}"),
        message,
    };
    if kind.is_empty() || name.is_empty() {
        return Err(invalid("kind and metadata.name are required".into()));
    }
    let spec: ConstraintSpec = match doc.value.get("spec") {
        Some(spec) => serde_json::from_value(spec.clone()).map_err(|e| invalid(e.to_string()))?,
        None => ConstraintSpec::default(),
    };
    let action = match spec.enforcement_action.as_deref() {
        None | Some("deny") | Some("") => EnforcementAction::Deny,
        Some("warn") => EnforcementAction::Warn,
        Some("dryrun") => EnforcementAction::Dryrun,
        Some("scoped") => {
            return Err(invalid(
                "enforcementAction scoped (per-enforcement-point actions) is not supported; \
                 use deny, warn or dryrun"
                    .into(),
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "enforcementAction {other:?} is not one of deny, warn, dryrun"
            )))
        }
    };
    if spec.scoped_enforcement_actions.is_some() {
        return Err(invalid(
            "scopedEnforcementActions are not supported; use enforcementAction".into(),
        ));
    }
    spec.matcher
        .validate()
        .map_err(|e| invalid(e.to_string()))?;
    Ok(ConstraintDef {
        kind,
        name,
        action,
        matcher: spec.matcher,
        parameters: spec.parameters,
        location: doc.location(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_remember_their_first_line() {
        let text = "# leading comment\n---\na: 1\n---\n\n---\nb: 2\nc: 3\n";
        let docs = documents("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].row, 3);
        assert_eq!(docs[1].row, 7);
        assert_eq!(docs[1].value["c"], 3);
    }

    #[test]
    fn a_yaml_error_names_the_file_line() {
        let text = "a: 1\n---\nb: [1, 2\nc: 3\n";
        let err = documents("f.yaml", text).unwrap_err();
        let GatekeeperError::Yaml { location, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(location.file, "f.yaml");
        assert!(location.row >= 3, "{location}");
    }

    #[test]
    fn embedded_rego_positions_map_into_the_file() {
        let text = "kind: X\nspec:\n  rego: |\n    package p\n\n    violation[x] { x := 1 }\n";
        let doc = &documents("t.yaml", text).unwrap()[0];
        let rego = doc.value["spec"]["rego"].as_str().unwrap();
        let at = doc.locate_embedded(rego, 3, 5);
        assert_eq!((at.row, at.col), (6, 9));
    }
}
