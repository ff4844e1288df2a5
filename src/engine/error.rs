//! Errors from compiling and evaluating policies, with the file, line and
//! column that regorus reports turned into structured [`Location`]s.

use std::time::Duration;

use crate::location::Location;

/// One problem in a policy: a message and, when known, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// What is wrong, without the source excerpt.
    pub message: String,
    /// Where, when regorus said.
    pub location: Option<Location>,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// Turn a regorus error into a message and a location.
    ///
    /// regorus renders most positioned errors as `--> file:row:col`, a
    /// source excerpt, then `error: message`; a few of its parser's errors
    /// as one line, `file:row:col error: message`; an error it places past
    /// the last line as `file: invalid line N specified`.
    pub fn from_regorus(err: &anyhow::Error) -> PolicyError {
        let text = format!("{err:#}");
        if let Some(mut error) = excerpted(&text)
            .or_else(|| one_line(&text))
            .or_else(|| past_the_end(&text))
        {
            if let Some(hint) = rewrite_hint(&error.message) {
                error.message.push_str(hint);
            }
            return error;
        }
        PolicyError {
            message: text.trim().to_string(),
            location: None,
        }
    }

    /// [`PolicyError::from_regorus`] for an error raised while reading the
    /// file `file`: where regorus gives no position (some of its parser's
    /// errors have none), the error still names the file (row 0: the file
    /// alone, as [`Location`] says).
    pub fn from_regorus_in(err: &anyhow::Error, file: &str) -> PolicyError {
        let mut error = PolicyError::from_regorus(err);
        if error.location.is_none() {
            error.location = Some(Location::new(file, 0, 0));
        }
        error
    }
}

/// How to rewrite a construct regorus refuses where OPA accepts it.
fn rewrite_hint(message: &str) -> Option<&'static str> {
    message.contains("used before definition").then_some(
        " (a variable named like a rule of the package: regorus reads it as the rule inside \
         a comprehension, where OPA reads it as the local variable; rename the variable)",
    )
}

/// `file:row:col` with numbers for both, split from the right (a file
/// name may hold colons).
fn file_row_col(text: &str) -> Option<Location> {
    let mut parts = text.rsplitn(3, ':');
    let col = parts.next()?.trim().parse::<usize>().ok()?;
    let row = parts.next()?.trim().parse::<usize>().ok()?;
    let file = parts.next().filter(|f| !f.is_empty())?;
    Some(Location::new(file, row, col))
}

/// The excerpt form: a `--> file:row:col` line, the message on the last
/// `error: ` line.
fn excerpted(text: &str) -> Option<PolicyError> {
    let location = text
        .lines()
        .find_map(|line| file_row_col(line.trim_start().strip_prefix("--> ")?))?;
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.trim().to_string());
    Some(PolicyError {
        message,
        location: Some(location),
    })
}

/// The one-line form, `file:row:col error: message`.
fn one_line(text: &str) -> Option<PolicyError> {
    let (place, message) = text.trim_start().split_once(" error: ")?;
    Some(PolicyError {
        location: Some(file_row_col(place)?),
        message: message.trim().to_string(),
    })
}

/// `file: invalid line N specified`: regorus had an error to report at
/// line N, past the file's last line (the source ends where more was
/// expected), and reports only that.
fn past_the_end(text: &str) -> Option<PolicyError> {
    let (file, rest) = text.trim().rsplit_once(": invalid line ")?;
    let row = rest.strip_suffix(" specified")?.parse::<usize>().ok()?;
    Some(PolicyError {
        message: "unexpected end of file".to_string(),
        location: Some(Location::new(file, row, 0)),
    })
}

/// Why a set of bundles could not be turned into a prepared engine.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Parse or compile errors, one per failing file (or the first found
    /// while preparing).
    #[error("{} policy error(s): {}", .0.len(), join(.0))]
    Policies(Vec<PolicyError>),
    /// A policy declares a package outside its bundle's roots.
    #[error("{file}: package {package} is outside the roots [{roots}] of bundle {bundle}")]
    PackageOutsideRoots {
        /// The policy file id.
        file: String,
        /// The package, as `data.a.b`.
        package: String,
        /// The bundle.
        bundle: String,
        /// Its roots, comma-separated.
        roots: String,
    },
    /// Portcullis's own builtins could not be registered.
    #[error("cannot register builtins: {0}")]
    Builtins(String),
    /// The merged data document was refused by the engine.
    #[error("data could not be loaded: {0}")]
    Data(String),
}

impl CompileError {
    /// Every problem as a positioned error, for OPA-style error bodies.
    pub fn errors(&self) -> Vec<PolicyError> {
        match self {
            CompileError::Policies(errors) => errors.clone(),
            CompileError::PackageOutsideRoots { file, .. } => vec![PolicyError {
                message: self.to_string(),
                location: Some(Location::new(file.clone(), 1, 1)),
            }],
            CompileError::Data(message) | CompileError::Builtins(message) => vec![PolicyError {
                message: message.clone(),
                location: None,
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

/// Why one evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The evaluation ran past the configured time limit.
    #[error("evaluation exceeded the time limit of {} ms", .limit.as_millis())]
    TimeLimit {
        /// The configured limit.
        limit: Duration,
    },
    /// A builtin or the interpreter raised an error (conflicting rule values,
    /// a type error in strict mode, a bad query).
    #[error("{0}")]
    Failed(PolicyError),
}

impl EvalError {
    /// Classify a regorus evaluation error.
    pub fn from_regorus(err: &anyhow::Error, limit: Duration) -> EvalError {
        let is_time_limit = err.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<regorus::LimitError>(),
                Some(regorus::LimitError::TimeLimitExceeded { .. })
            )
        }) || err.to_string().contains("time limit");
        if is_time_limit {
            EvalError::TimeLimit { limit }
        } else {
            EvalError::Failed(PolicyError::from_regorus(err))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_regorus_positioned_error() {
        let err = anyhow::anyhow!(
            "\n--> policies/a.rego:3:7\n  |\n3 | allow if {{ x }}\n  |       ^\nerror: var x is unsafe"
        );
        let parsed = PolicyError::from_regorus(&err);
        assert_eq!(
            parsed.location,
            Some(Location::new("policies/a.rego", 3, 7))
        );
        assert_eq!(parsed.message, "var x is unsafe");
    }

    #[test]
    fn parses_regorus_one_line_error() {
        let err = anyhow::anyhow!(
            "policies/a.rego:41:10 error: encountered `x.y` while expecting identifier"
        );
        let parsed = PolicyError::from_regorus(&err);
        assert_eq!(
            parsed.location,
            Some(Location::new("policies/a.rego", 41, 10))
        );
        assert_eq!(
            parsed.message,
            "encountered `x.y` while expecting identifier"
        );
    }

    #[test]
    fn places_an_error_past_the_last_line_there() {
        let err = anyhow::anyhow!("bundle/a.rego: invalid line 9 specified");
        let parsed = PolicyError::from_regorus(&err);
        assert_eq!(parsed.location, Some(Location::new("bundle/a.rego", 9, 0)));
        assert_eq!(parsed.message, "unexpected end of file");
    }

    #[test]
    fn an_unplaced_error_in_a_file_names_the_file() {
        let err = anyhow::anyhow!("encountered , when expecting }}");
        let parsed = PolicyError::from_regorus_in(&err, "bundle/a.rego");
        assert_eq!(parsed.location, Some(Location::new("bundle/a.rego", 0, 0)));
        assert_eq!(
            parsed.to_string(),
            "bundle/a.rego: encountered , when expecting }"
        );
    }

    #[test]
    fn keeps_plain_errors_whole() {
        let err = anyhow::anyhow!("something odd");
        let parsed = PolicyError::from_regorus(&err);
        assert_eq!(parsed.location, None);
        assert_eq!(parsed.message, "something odd");
    }
}
