//! The contract's cases for the pods' retry schedules: what one replica stores, every replica
//! reads back exactly, one client's or all.

use std::time::Duration;

use alsy_app::RepoError;
use alsy_domain::{Algorithm, ClientId, Intent, Operation, PodName, PodRetry};
use alsy_tests::fixtures::{pod, spec};

use super::{Repo, now};

fn retry(pod: PodName, attempts: u32) -> PodRetry {
    let at = now();
    PodRetry {
        client_id: pod.owner().map(|(_, id)| id),
        pod,
        operation: Operation::Create,
        // The full 64 bits: PostgreSQL keeps them in a signed bigint.
        intent: Intent(u64::MAX - 7),
        attempts,
        error: "runtime unavailable: create: HTTP 500 InternalError: boom".into(),
        rejected: false,
        failed_at: at,
        next_retry_at: at + Duration::from_millis(1500),
    }
}

pub(super) async fn pod_retry_schedules_are_stored_replaced_and_cleared(repo: Repo) {
    assert_eq!(repo.pod_retries().await.unwrap(), []);
    let one = ClientId::new(1).unwrap();
    let two = ClientId::new(2).unwrap();
    let vwap_1 = retry(pod(Algorithm::named("VWAP"), one), 1);
    let hft_1 = PodRetry {
        operation: Operation::Restart,
        rejected: true,
        ..retry(pod(Algorithm::named("HFT"), one), 3)
    };
    let twap_2 = retry(pod(Algorithm::named("TWAP"), two), 2);
    // A managed pod whose name is not alsy's belongs to no client.
    let stray = retry(PodName::parse("leftover").unwrap(), 1);
    repo.save_pod_retries(
        &[vwap_1.clone(), twap_2.clone(), hft_1.clone(), stray.clone()],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        repo.pod_retries().await.unwrap(),
        [hft_1.clone(), stray.clone(), twap_2.clone(), vwap_1.clone()],
        "every schedule, in pod-name order, exactly as stored"
    );
    assert_eq!(
        repo.client_pod_retries(one).await.unwrap(),
        [hft_1.clone(), vwap_1.clone()]
    );

    let vwap_1_again = PodRetry {
        error: "runtime asked to retry after 1s".into(),
        ..retry(pod(Algorithm::named("VWAP"), one), 2)
    };
    repo.save_pod_retries(
        std::slice::from_ref(&vwap_1_again),
        &[
            hft_1.pod.clone(),
            stray.pod.clone(),
            PodName::parse("never-stored").unwrap(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        repo.pod_retries().await.unwrap(),
        [twap_2, vwap_1_again.clone()],
        "replaced and cleared in one call; clearing an unknown pod is no error"
    );
    assert_eq!(repo.client_pod_retries(one).await.unwrap(), [vwap_1_again]);
    assert_eq!(
        repo.client_pod_retries(ClientId::new(3).unwrap())
            .await
            .unwrap(),
        []
    );
}

/// `client_with_retries` answers what `get` and `client_pod_retries` answer apart (PostgreSQL
/// reads both on one connection, the schedules only for a client that has some): schedules of other clients and of no client stay out, a client
/// without schedules comes with none, and a missing client is not found.
pub(super) async fn a_client_is_read_with_its_pods_retry_schedules(repo: Repo) {
    let busy = repo.create(&spec("busy")).await.unwrap();
    let other = repo.create(&spec("other")).await.unwrap();
    let calm = repo.create(&spec("calm")).await.unwrap();
    let vwap = retry(pod(Algorithm::named("VWAP"), busy.id), 4);
    let hft = PodRetry {
        operation: Operation::Delete,
        rejected: true,
        // What JSON must escape: PostgreSQL sends a client's schedules as `row_to_json` text.
        error: "admission webhook \"policy\" denied:\n\tname \\ tab, façade, 🚀".into(),
        ..retry(pod(Algorithm::named("HFT"), busy.id), 1)
    };
    let elsewhere = retry(pod(Algorithm::named("VWAP"), other.id), 2);
    let stray = retry(PodName::parse("leftover").unwrap(), 1);
    repo.save_pod_retries(&[vwap.clone(), elsewhere.clone(), hft.clone(), stray], &[])
        .await
        .unwrap();

    for (client, schedules) in [
        (&busy, vec![hft, vwap]),
        (&other, vec![elsewhere]),
        (&calm, vec![]),
    ] {
        let (read, retries) = repo.client_with_retries(client.id).await.unwrap();
        assert_eq!(read, repo.get(client.id).await.unwrap());
        assert_eq!(read, *client);
        assert_eq!(retries, schedules, "client {:?}", client.id);
        assert_eq!(retries, repo.client_pod_retries(client.id).await.unwrap());
    }
    let missing = ClientId::new(busy.id.get() + 1_000).unwrap();
    assert!(matches!(
        repo.client_with_retries(missing).await,
        Err(RepoError::NotFound(id)) if id == missing
    ));
}

/// A client's read follows each save of its schedules: the first, a second, one replaced while
/// another is cleared, the last cleared, a new first. A schedule stored before its client existed
/// (a leftover pod that already had the new client's name) is read with the client too.
/// (PostgreSQL looks a client's schedules up only when its status row says it has some.)
pub(super) async fn a_client_read_follows_its_schedules_as_they_come_and_go(repo: Repo) {
    let client = repo.create(&spec("busy")).await.unwrap();
    let read = async || repo.client_with_retries(client.id).await.unwrap().1;
    let save = async |changed: &[PodRetry], cleared: &[PodName]| {
        repo.save_pod_retries(changed, cleared).await.unwrap();
    };
    assert_eq!(read().await, []);
    let vwap = retry(pod(Algorithm::named("VWAP"), client.id), 1);
    let hft = retry(pod(Algorithm::named("HFT"), client.id), 1);
    save(std::slice::from_ref(&vwap), &[]).await;
    assert_eq!(read().await, std::slice::from_ref(&vwap));
    save(std::slice::from_ref(&hft), &[]).await;
    assert_eq!(read().await, [hft.clone(), vwap.clone()]);
    let hft_again = retry(pod(Algorithm::named("HFT"), client.id), 2);
    save(
        std::slice::from_ref(&hft_again),
        std::slice::from_ref(&vwap.pod),
    )
    .await;
    assert_eq!(read().await, std::slice::from_ref(&hft_again));
    save(&[], std::slice::from_ref(&hft.pod)).await;
    assert_eq!(read().await, []);
    save(std::slice::from_ref(&vwap), &[]).await;
    assert_eq!(read().await, [vwap]);

    let next = ClientId::new(client.id.get() + 1).unwrap();
    let early = retry(pod(Algorithm::named("TWAP"), next), 3);
    save(std::slice::from_ref(&early), &[]).await;
    let newcomer = repo.create(&spec("newcomer")).await.unwrap();
    assert_eq!(newcomer.id, next, "ids are handed out in order");
    assert_eq!(repo.client_with_retries(next).await.unwrap().1, [early]);
}
