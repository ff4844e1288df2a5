//! The one mapping from failures to HTTP: OPA's error body
//! (`code`, `message`, `errors[].location`) with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::{EvalError, PolicyError};
use crate::location::Location;
use crate::pdp::DecideError;

/// OPA's error codes.
pub mod code {
    /// A bad request: body, parameters or path.
    pub const INVALID_PARAMETER: &str = "invalid_parameter";
    /// Evaluation failed.
    pub const EVALUATION_ERROR: &str = "evaluation_error";
    /// Something failed inside the server.
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// The document is undefined (v0 API and the default decision).
    pub const UNDEFINED_DOCUMENT: &str = "undefined_document";
    /// No such resource.
    pub const RESOURCE_NOT_FOUND: &str = "resource_not_found";
    /// Missing or refused credentials (401 and 403, as OPA answers both).
    pub const UNAUTHORIZED: &str = "unauthorized";
}

/// One detail line of an error body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorDetail {
    /// A machine-readable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Where, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// An error answer: status plus OPA's body.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// OPA's top-level code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Details, each possibly with a location.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorDetail>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// A 400 `invalid_parameter`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::INVALID_PARAMETER, message)
    }

    /// A 500 `internal_error`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_ERROR,
            message,
        )
    }

    /// Add a detail.
    pub fn with_detail(mut self, code: &str, message: String, location: Option<Location>) -> Self {
        self.errors.push(ErrorDetail {
            code: code.to_string(),
            message,
            location,
        });
        self
    }

    /// OPA's 404 for an undefined document in the v0 API and `POST /`.
    pub fn undefined_document(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            code::UNDEFINED_DOCUMENT,
            format!("document missing or undefined: {path}"),
        )
    }

    /// The body, for embedding in batch responses.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl From<DecideError> for ApiError {
    fn from(err: DecideError) -> ApiError {
        match err {
            DecideError::NotReady => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::INTERNAL_ERROR,
                err.to_string(),
            ),
            DecideError::Eval(eval) => eval.into(),
        }
    }
}

impl From<EvalError> for ApiError {
    fn from(err: EvalError) -> ApiError {
        let base = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::EVALUATION_ERROR,
            "error(s) occurred while evaluating query",
        );
        match err {
            EvalError::TimeLimit { .. } => {
                base.with_detail("eval_timeout_error", err.to_string(), None)
            }
            EvalError::Failed(PolicyError { message, location }) => {
                base.with_detail("eval_error", message, location)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = super::json_response(status, &self, false);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
