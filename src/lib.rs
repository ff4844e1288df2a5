//! Portcullis: a policy and guardrail decision service.
//!
//! Rego policies are evaluated in-process with regorus and served over OPA's
//! Data API, so existing OPA clients work unchanged.
//!
//! # Layout
//!
//! - [`bundle`]: the OPA bundle format read from directories (pure).
//! - [`engine`]: bundles compiled into a prepared regorus engine; evaluation;
//!   the Rego unit-test runner (pure).
//! - [`gatekeeper`]: Gatekeeper ConstraintTemplates, Constraints and test
//!   suites, each template compiled in isolation.
//! - [`pdp`]: the decision point: the active snapshot behind an `ArcSwap`,
//!   loading and atomic activation, `decide()`.
//! - [`pushed`]: data pushed through the Data API, served as an in-memory
//!   bundle, optionally persisted.
//! - [`api`]: the axum routers (Data API, batch, policies, health) and the one
//!   error-to-status mapping.
//! - [`cache`]: the decision cache (moka), keyed on the snapshot generation
//!   and the parts of the input a policy reads.
//! - [`config`]: configuration from a YAML file, environment and flags.
//! - [`decision_log`]: decision events, masking, the bounded queue and the
//!   sinks (stdout, rotated file, HTTP).
//! - [`auth`]: bearer tokens, client certificates and the authorization
//!   policy in front of the decision API.
//! - [`backoff`]: retry delays with jitter.
//! - [`file_watch`]: reloading certificates and tokens when their files change.
//! - [`source`]: watching bundle files and reloading on change.
//! - [`tls`]: rustls for the admission listener, with certificate hot reload.
//! - [`server`]: the composition root: bind, load, serve, drain.
//! - [`location`]: file/row/column positions shared by every error.
//! - [`memory`]: handing freed memory back to the operating system after a load.
//! - [`metrics`]: the Prometheus collectors and `/metrics`.
//!
//! # Using it as a library
//!
//! ```no_run
//! use portcullis::pdp::DecisionPoint;
//! use portcullis::engine::{DataPath, EngineOptions, Value};
//!
//! let pdp = DecisionPoint::load(&["policies".into(), "bundles".into()], EngineOptions::default())?;
//! let input = Value::from_json_str(r#"{"team": "payments"}"#).unwrap();
//! let decision = pdp.decide(&DataPath::parse("provisioning/decision"), Some(input))?;
//! println!("{}", decision.result.to_json_str().unwrap());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
pub mod auth;
pub mod backoff;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod config;
pub mod decision_log;
pub mod engine;
pub mod file_watch;
pub mod gatekeeper;
pub mod header_deadline;
pub mod location;
pub mod memory;
pub mod metrics;
pub mod pdp;
pub mod pushed;
pub mod server;
pub mod source;
pub mod tls;
