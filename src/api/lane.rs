//! The lane for requests whose cost the caller chooses: ad-hoc queries and
//! batches. They run one at a time, on a blocking thread, never on the
//! async workers that answer decisions: four clients looping on queries
//! that run to the time limit took an ordinary decision's p99 to 715 ms
//! when they ran on the workers; on the lane, 5.6 ms against 2.6 ms
//! without them (RELIABILITY.md). The lane is one per process, shared by
//! every server a process runs (tests start several). Waiting for
//! the lane holds no thread; the in-flight limit bounds how many wait.

use tokio::sync::Semaphore;

use super::error::ApiError;

/// How many lane requests evaluate at once.
static LANE: Semaphore = Semaphore::const_new(1);

/// Run `work` on the lane: after the requests ahead of it, on a blocking
/// thread.
pub(super) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _turn = LANE
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the evaluation lane is closed"))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(format!("evaluation failed: {err}")))
}
