//! Authentication and authorization of the decision API, as one axum
//! middleware in front of every route.
//!
//! A caller is identified by a bearer token from the token file (reloaded
//! when it changes) or by a client certificate verified against the
//! configured CA (mTLS; its subject common name is the identity). When an
//! authorization policy is configured (in the style of OPA's
//! `system.authz`), it is evaluated on the active snapshot for every
//! request with `{method, path, identity, authenticated_by, params}` and
//! must answer `true`. Unauthenticated calls get 401, refused ones 403,
//! both with OPA-style error bodies. Health and metrics may stay open.

pub mod tokens;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

use crate::api::error::{code, ApiError};
use crate::api::ClientAddr;
use crate::engine::{DataPath, Value};
use crate::metrics::{AuthOutcome, Metrics};
use crate::pdp::DecisionPoint;
pub use tokens::{TokenError, TokenStore};

/// The authentication and authorization settings the middleware applies.
#[derive(Debug)]
pub struct Auth {
    /// Accepted bearer tokens; with them, every call must authenticate.
    pub tokens: Option<Arc<TokenStore>>,
    /// Every call must present a verified client certificate (or a token).
    pub require_client_certificate: bool,
    /// The authorization rule (`data.system.authz.allow`), when configured.
    pub policy: Option<DataPath>,
    /// `/health*` needs no credentials.
    pub open_health: bool,
    /// `/metrics` needs no credentials.
    pub open_metrics: bool,
    /// Where the authorization policy is evaluated.
    pub pdp: Arc<DecisionPoint>,
    /// Counts outcomes.
    pub metrics: Arc<Metrics>,
}

/// Who made a request, as the middleware established it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The caller's name (token name or certificate common name).
    pub name: Option<Arc<str>>,
    /// `token`, `certificate` or `none`.
    pub authenticated_by: &'static str,
}

impl Auth {
    /// Whether anything is checked at all.
    pub fn active(&self) -> bool {
        self.tokens.is_some() || self.require_client_certificate || self.policy.is_some()
    }

    fn is_open(&self, path: &str) -> bool {
        (self.open_health && (path == "/health" || path.starts_with("/health/")))
            || (self.open_metrics && path == "/metrics")
    }

    fn authentication_required(&self) -> bool {
        self.tokens.is_some() || self.require_client_certificate
    }

    /// Identify the caller, or say why not (401).
    fn identify(&self, request: &Request) -> Result<Identity, ApiError> {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| {
                value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
                    unauthenticated("the Authorization header is not `Bearer TOKEN`")
                })
            })
            .transpose()?;
        // Without a token file, a bearer token identifies nobody (as in OPA
        // with authentication off) and the request goes on anonymous.
        if let (Some(token), Some(tokens)) = (bearer, &self.tokens) {
            return match tokens.identify(token) {
                Some(name) => Ok(Identity {
                    name: Some(name),
                    authenticated_by: "token",
                }),
                None => Err(unauthenticated("the bearer token is not valid")),
            };
        }
        let certificate = request
            .extensions()
            .get::<axum::extract::ConnectInfo<ClientAddr>>()
            .and_then(|info| info.0.subject.clone());
        if let Some(subject) = certificate {
            return Ok(Identity {
                name: Some(subject),
                authenticated_by: "certificate",
            });
        }
        if self.authentication_required() {
            return Err(unauthenticated(
                "credentials are required: a bearer token or a client certificate",
            ));
        }
        Ok(Identity {
            name: None,
            authenticated_by: "none",
        })
    }

    /// Ask the authorization policy; `Ok(())` only when it answers `true`.
    fn authorize(&self, request: &Request, identity: &Identity) -> Result<(), ApiError> {
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let snapshot = self
            .pdp
            .snapshot()
            .ok_or_else(|| ApiError::from(crate::pdp::DecideError::NotReady))?;
        if !snapshot.policies.has_rule(policy.as_ref_str()) {
            return Err(forbidden(&format!(
                "the authorization policy {policy} is not defined in the active policies"
            )));
        }
        // Decoded before it is split, as the handlers see it (and as OPA
        // gives it): `system%2Fcheck` is two segments, not one that no
        // grant names.
        let decoded =
            percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
        let path: Vec<Json> = decoded
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| Json::String(s.to_string()))
            .collect();
        let params: serde_json::Map<String, Json> = crate::api::query_pairs(request.uri().query())
            .map(|(k, v)| (k.to_string(), json!([v])))
            .collect();
        let input = json!({
            "method": request.method().as_str(),
            "path": path,
            "identity": identity.name.as_deref(),
            "authenticated_by": identity.authenticated_by,
            "params": params,
        });
        let decision = crate::pdp::decide_on(snapshot, policy, Some(Value::from(input)))
            .map_err(ApiError::from)?;
        if matches!(decision.result, Value::Bool(true)) {
            Ok(())
        } else {
            Err(forbidden("request rejected by administrative policy"))
        }
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code::UNAUTHORIZED, message)
}

/// The middleware: open paths pass; everything else is identified and
/// authorized before it reaches a handler.
pub async fn guard(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    if auth.is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let identity = match auth.identify(&request) {
        Ok(identity) => identity,
        Err(err) => {
            auth.metrics.auth(AuthOutcome::Unauthenticated);
            let mut response = err.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"portcullis\""),
            );
            return response;
        }
    };
    if let Err(err) = auth.authorize(&request, &identity) {
        auth.metrics.auth(AuthOutcome::Forbidden);
        return err.into_response();
    }
    auth.metrics.auth(AuthOutcome::Allowed);
    request.extensions_mut().insert(identity);
    next.run(request).await
}
/// The token of an `Authorization: Bearer TOKEN` value; the scheme is
/// case-insensitive (RFC 9110 §11.1), the token is not.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
