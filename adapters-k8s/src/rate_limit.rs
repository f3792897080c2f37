//! A client-side rate limit on API requests, shared by every clone of the runtime, so a pass over
//! thousands of pods spreads its requests instead of flooding the API server. `governor` does the
//! limiting (GCRA); this file only says what the setting means.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota};

/// Lets through `qps` requests a second on average, with bursts of up to `qps` requests.
#[derive(Debug)]
pub(crate) struct RateLimiter(DefaultDirectRateLimiter);

impl RateLimiter {
    /// `None` when `qps` is 0: no limit.
    pub(crate) fn new(qps: u32) -> Option<RateLimiter> {
        let qps = NonZeroU32::new(qps)?;
        Some(RateLimiter(DefaultDirectRateLimiter::direct(
            Quota::per_second(qps).allow_burst(qps),
        )))
    }

    /// Waits until one more request may go out.
    pub(crate) async fn acquire(&self) {
        self.0.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn zero_qps_means_no_limit() {
        assert!(RateLimiter::new(0).is_none());
    }

    #[test]
    fn a_burst_of_qps_requests_goes_out_and_the_next_one_must_wait() {
        let limiter = RateLimiter::new(10).unwrap();
        for n in 0..10 {
            assert!(limiter.0.check().is_ok(), "request {n} of the burst");
        }
        assert!(limiter.0.check().is_err(), "the 11th waits");
    }

    #[tokio::test]
    async fn beyond_the_burst_requests_are_spaced_one_over_qps_apart() {
        let limiter = RateLimiter::new(20).unwrap();
        let begin = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        // 20 at once, then 10 more at 50 ms each: at least 500 ms (a lower bound only; how fast
        // is the benchmarks' business).
        assert!(
            begin.elapsed() >= Duration::from_millis(450),
            "{:?}",
            begin.elapsed()
        );
    }
}
