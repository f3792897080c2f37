//! `ManualClock`: a [`Clock`] that moves only when a test moves it, so a retry schedule can be
//! stepped through — "the retry time has not come", "now it has" — without sleeping.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use alsy_app::Clock;

/// A clock set by hand; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl Default for ManualClock {
    /// Starts at the system time when created.
    fn default() -> ManualClock {
        ManualClock::at(SystemTime::now())
    }
}

impl ManualClock {
    /// A clock reading `now` until moved.
    pub fn at(now: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// Sets the clock to `at` (forward or back).
    pub fn set(&self, at: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
