//! Errors raised while reading Gatekeeper objects and compiling templates.
//! Each names the file, and the line where one is known.

use crate::engine::PolicyError;
use crate::location::Location;

/// Why Gatekeeper templates or constraints could not be activated.
#[derive(Debug, thiserror::Error)]
pub enum GatekeeperError {
    /// A YAML document that does not parse.
    #[error("{location}: invalid YAML: {message}")]
    Yaml {
        /// Where the parser stopped.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// A template or constraint that is not well formed.
    #[error("{location}: {object}: {message}")]
    Invalid {
        /// The document's first line.
        location: Location,
        /// `ConstraintTemplate <name>` or `<Kind> <name>`.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// A template Portcullis cannot evaluate (CEL only, say). Refused rather
    /// than allowed silently.
    #[error("{location}: ConstraintTemplate {template} is not supported: {reason}")]
    Unsupported {
        /// The document's first line.
        location: Location,
        /// The template's name.
        template: String,
        /// Why.
        reason: String,
    },
    /// A template's Rego does not compile.
    #[error("ConstraintTemplate {template}: {} Rego error(s): {}", .errors.len(), join(.errors))]
    Rego {
        /// The template's name.
        template: String,
        /// Every error, positioned in the YAML file.
        errors: Vec<PolicyError>,
    },
}

impl GatekeeperError {
    /// Every problem as a positioned error.
    pub fn errors(&self) -> Vec<PolicyError> {
        match self {
            GatekeeperError::Rego { template, errors } => errors
                .iter()
                .map(|e| PolicyError {
                    message: format!("ConstraintTemplate {template}: {}", e.message),
                    location: e.location.clone(),
                })
                .collect(),
            GatekeeperError::Yaml { location, message } => vec![PolicyError {
                message: format!("invalid YAML: {message}"),
                location: Some(location.clone()),
            }],
            GatekeeperError::Invalid {
                location,
                object,
                message,
            } => vec![PolicyError {
                message: format!("{object}: {message}"),
                location: Some(location.clone()),
            }],
            GatekeeperError::Unsupported {
                location,
                template,
                reason,
            } => vec![PolicyError {
                message: format!("ConstraintTemplate {template} is not supported: {reason}"),
                location: Some(location.clone()),
            }],
        }
    }
}

fn join(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
