//! The limit on requests in flight: beyond `limits.max_in_flight`, a request
//! is answered 503 with `Retry-After` at once instead of waiting in an
//! unbounded queue. Health probes and metrics are never refused, so an
//! overloaded replica still reports itself. The count is a semaphore's
//! atomic permits: no lock.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::{code, ApiError};
use crate::metrics::Metrics;

/// The permits and what to count refusals in.
#[derive(Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    limit: usize,
    metrics: Arc<Metrics>,
}

impl InFlight {
    /// At most `limit` requests at once.
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<InFlight> {
        Arc::new(InFlight {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            metrics,
        })
    }
}

fn exempt(path: &str) -> bool {
    path == "/metrics" || path == "/health" || path.starts_with("/health/")
}

/// The middleware.
pub async fn limit_in_flight(
    State(in_flight): State<Arc<InFlight>>,
    request: Request,
    next: Next,
) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    match in_flight.permits.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            in_flight.metrics.overloaded();
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::INTERNAL_ERROR,
                format!(
                    "too many requests in flight (limit {}); retry shortly",
                    in_flight.limit
                ),
            )
            .into_response()
        }
    }
}
