//! Unit and property tests of the retry schedule: the backoff bounds hold for any base, maximum,
//! attempt and jitter.

use proptest::prelude::*;

use super::*;
use crate::{Algorithm, DesiredPod, ImageRef, Priority, Quantity, Version};

fn backoff_strategy() -> impl Strategy<Value = Backoff> {
    (1u64..=10_000, 0u64..=1_000_000).prop_map(|(base_ms, extra_ms)| {
        Backoff::new(
            Duration::from_millis(base_ms),
            Duration::from_millis(base_ms + extra_ms),
        )
        .unwrap()
    })
}

fn pod(image: &str) -> DesiredPod {
    let client_id = ClientId::new(7).unwrap();
    DesiredPod {
        name: PodName::of(Algorithm::named("VWAP"), client_id),
        client_id,
        algorithm: Algorithm::named("VWAP"),
        image: ImageRef::parse(image).unwrap(),
        cpu: Quantity::parse("1").unwrap(),
        mem: Quantity::parse("1Gi").unwrap(),
        version: Version::parse(1).unwrap(),
        priority: Priority::parse(1.0).unwrap(),
        restart_mark: None,
    }
}

proptest! {
    #[test]
    fn a_retryable_wait_stays_between_the_base_and_the_maximum(
        backoff in backoff_strategy(),
        attempt in 0u32..=200,
        jitter in prop_oneof![any::<f64>(), 0.0..=1.0f64],
    ) {
        let wait = backoff.delay(attempt, Failure::Retryable { retry_after: None }, jitter);
        prop_assert!(wait >= backoff.base(), "{wait:?} < {:?}", backoff.base());
        prop_assert!(wait <= backoff.max(), "{wait:?} > {:?}", backoff.max());
        prop_assert!(wait <= backoff.ceiling(attempt));
    }

    #[test]
    fn the_ceiling_grows_by_the_growth_factor_until_the_maximum(
        backoff in backoff_strategy(),
        attempt in 1u32..=200,
    ) {
        let (this, next) = (backoff.ceiling(attempt), backoff.ceiling(attempt + 1));
        prop_assert!(next >= this);
        prop_assert!(next <= backoff.max());
        // Computed in f64 seconds: equal to the exact figure within a microsecond.
        let exact = this.mul_f64(Backoff::GROWTH).min(backoff.max());
        let apart = next.abs_diff(exact);
        prop_assert!(apart <= Duration::from_micros(1), "{next:?} against {exact:?}");
    }

    #[test]
    fn a_retry_after_is_a_lower_bound(
        backoff in backoff_strategy(),
        attempt in 1u32..=50,
        jitter in 0.0..=1.0f64,
        retry_after_ms in 0u64..=2_000_000,
    ) {
        let retry_after = Duration::from_millis(retry_after_ms);
        let wait = backoff.delay(attempt, Failure::Retryable { retry_after: Some(retry_after) }, jitter);
        let without = backoff.delay(attempt, Failure::Retryable { retry_after: None }, jitter);
        prop_assert_eq!(wait, without.max(retry_after));
    }

    #[test]
    fn a_rejected_operation_waits_the_maximum(
        backoff in backoff_strategy(),
        attempt in 0u32..=200,
        jitter in any::<f64>(),
    ) {
        prop_assert_eq!(backoff.delay(attempt, Failure::Rejected, jitter), backoff.max());
    }

    #[test]
    fn jitter_spreads_the_wait_over_the_whole_range(
        backoff in backoff_strategy(),
        attempt in 1u32..=30,
    ) {
        let retryable = Failure::Retryable { retry_after: None };
        prop_assert_eq!(backoff.delay(attempt, retryable, 0.0), backoff.base());
        prop_assert_eq!(backoff.delay(attempt, retryable, 1.0), backoff.ceiling(attempt));
    }
}

#[test]
fn the_defaults_are_one_second_to_five_minutes() {
    let backoff = Backoff::default();
    assert_eq!(backoff.base(), Duration::from_secs(1));
    assert_eq!(backoff.max(), Duration::from_secs(300));
    assert_eq!(backoff.ceiling(1), Duration::from_secs(1));
    assert_eq!(backoff.ceiling(2), Duration::from_millis(1_300));
    assert_eq!(backoff.ceiling(4), Duration::from_millis(2_197));
    // 1.3^21 s = 247.1 s; 1.3^22 s is over the 5-minute maximum.
    assert!(backoff.ceiling(22) < Duration::from_secs(300));
    assert_eq!(backoff.ceiling(23), Duration::from_secs(300));
    assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(300));
}

#[test]
fn bounds_that_make_no_schedule_are_refused() {
    assert_eq!(
        Backoff::new(Duration::ZERO, Duration::from_secs(1)),
        Err(BackoffError::ZeroBase)
    );
    assert!(matches!(
        Backoff::new(Duration::from_secs(2), Duration::from_secs(1)),
        Err(BackoffError::MaxBelowBase { .. })
    ));
}

#[test]
fn failures_of_one_intent_count_up_and_a_new_intent_starts_afresh() {
    let backoff = Backoff::default();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let create = PodAction::Create(pod("algo:1"));
    let retryable = Failure::Retryable { retry_after: None };
    let first = PodRetry::after_failure(None, &create, retryable, "e".into(), now, &backoff, 0.5);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.next_retry_at, now + Duration::from_secs(1));
    assert_eq!(first.client_id, ClientId::new(7));
    let second = PodRetry::after_failure(
        Some(&first),
        &create,
        retryable,
        "e".into(),
        now,
        &backoff,
        1.0,
    );
    assert_eq!(second.attempts, 2);
    assert_eq!(second.next_retry_at, now + Duration::from_millis(1_300));

    let changed = PodAction::Create(pod("algo:2"));
    assert!(!second.is_for(&changed), "a new image is a new intent");
    let fresh = PodRetry::after_failure(
        Some(&second),
        &changed,
        retryable,
        "e".into(),
        now,
        &backoff,
        1.0,
    );
    assert_eq!(fresh.attempts, 1);

    let delete = PodAction::Delete(create.pod_name().clone());
    assert!(!second.is_for(&delete), "another operation is a new intent");
}

#[test]
fn a_rejection_keeps_its_reason_and_waits_the_maximum() {
    let backoff = Backoff::default();
    let now = SystemTime::UNIX_EPOCH;
    let create = PodAction::Create(pod("algo:1"));
    let retry = PodRetry::after_failure(
        None,
        &create,
        Failure::Rejected,
        "violates PodSecurity".into(),
        now,
        &backoff,
        0.0,
    );
    assert!(retry.rejected);
    assert_eq!(retry.error, "violates PodSecurity");
    assert_eq!(retry.next_retry_at, now + backoff.max());
    assert!(!retry.is_due(now + backoff.max() - Duration::from_millis(1)));
    assert!(retry.is_due(now + backoff.max()));
}

#[test]
fn the_intent_is_stable_across_builds() {
    // A stored schedule must be recognised by every replica and release: the hash is FNV-1a
    // of a fixed text, pinned here.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    let delete = PodAction::Delete(PodName::parse("vwap-7").unwrap());
    assert_eq!(delete.intent(), Intent(fnv1a(b"delete|vwap-7")));
}
