//! A reconcile lock shared by the reconcilers of one process.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, OwnedMutexGuard};

use alsy_app::{HeldPassLock, PassLock, RepoError};

/// Only one holder at a time among the clones of one `LocalPassLock`.
#[derive(Clone, Default)]
pub struct LocalPassLock {
    mutex: Arc<Mutex<()>>,
}

impl LocalPassLock {
    /// A fresh, free lock.
    pub fn new() -> LocalPassLock {
        LocalPassLock::default()
    }
}

struct Held(OwnedMutexGuard<()>);

#[async_trait]
impl HeldPassLock for Held {
    async fn release(self: Box<Self>) {
        drop(self.0);
    }
}

#[async_trait]
impl PassLock for LocalPassLock {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldPassLock>>, RepoError> {
        Ok(self
            .mutex
            .clone()
            .try_lock_owned()
            .ok()
            .map(|guard| Box::new(Held(guard)) as Box<dyn HeldPassLock>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_one_holder_at_a_time_and_release_frees_it() {
        let lock = LocalPassLock::new();
        let other = lock.clone();
        let held = lock.try_acquire().await.unwrap().expect("free lock");
        assert!(other.try_acquire().await.unwrap().is_none());
        held.release().await;
        assert!(other.try_acquire().await.unwrap().is_some());
    }
}
