//! CPU-bound work off tokio's workers, so that no HTTP request waits behind it.

/// Runs CPU-bound `work` on tokio's blocking threads and waits for it without holding a worker.
/// A panic in it (a bug) propagates to the caller as it would have on the worker. Only a runtime
/// shutting down cancels a blocking task, and it drops the task awaiting it first.
pub async fn off_the_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
