//! A client-side rate limit on API requests, shared by every clone of the runtime, so a pass over
//! thousands of pods spreads its requests instead of flooding the API server.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Lets through `qps` requests a second on average, with bursts of up to `qps` requests (GCRA:
/// a theoretical arrival time advanced by `1/qps` per request).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    burst_tolerance: Duration,
    theoretical_arrival: Mutex<Instant>,
}

impl RateLimiter {
    /// `None` when `qps` is 0: no limit.
    pub(crate) fn new(qps: u32) -> Option<RateLimiter> {
        let qps = std::num::NonZeroU32::new(qps)?;
        let interval = Duration::from_secs(1) / qps.get();
        Some(RateLimiter {
            interval,
            burst_tolerance: interval * (qps.get() - 1),
            theoretical_arrival: Mutex::new(Instant::now()),
        })
    }

    /// Waits until one more request may go out.
    pub(crate) async fn acquire(&self) {
        let start = {
            // A poisoned lock only means another request panicked mid-update; the instant is
            // still a valid schedule.
            let mut tat = self
                .theoretical_arrival
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let arrival = (*tat).max(now);
            let start = arrival
                .checked_sub(self.burst_tolerance)
                .map_or(now, |earliest| earliest.max(now));
            *tat = arrival + self.interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_qps_means_no_limit() {
        assert!(RateLimiter::new(0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_qps_requests_goes_out_at_once() {
        let limiter = RateLimiter::new(10).unwrap();
        let begin = Instant::now();
        for _ in 0..10 {
            limiter.acquire().await;
        }
        assert_eq!(begin.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_burst_requests_are_spaced_one_over_qps_apart() {
        let limiter = RateLimiter::new(10).unwrap();
        let begin = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        // 10 at once, then 20 more at 100ms each.
        assert_eq!(begin.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_limit() {
        let limiter = std::sync::Arc::new(RateLimiter::new(50).unwrap());
        let begin = Instant::now();
        let tasks: Vec<_> = (0..150)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(begin.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_earns_back_its_burst() {
        let limiter = RateLimiter::new(5).unwrap();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        let begin = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(begin.elapsed(), Duration::ZERO);
    }
}
