//! One contract, every repository: each case below runs against `InMemoryRepository` and against
//! `PostgresRepository` on a fresh database (`repository_contract::in_memory::*` and
//! `repository_contract::postgres::*`), so the store the tests use behaves like the one
//! production uses. Cases with concurrent writers are in `concurrent`.

mod concurrent;
mod retries;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alsy_app::{ClientRepository, RepoError};
use alsy_domain::{
    Acknowledgement, AlgorithmStatus, Client, ClientId, ClientSpec, ClientSpecInput, PageRequest,
};
use alsy_tests::fixtures::spec;

use concurrent::*;
use retries::*;

type Repo = Arc<dyn ClientRepository>;

/// Generates one `#[tokio::test]` per case and repository.
macro_rules! contract {
    ($($case:ident),+ $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(alsy_fake::InMemoryRepository::new())).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let database = alsy_tests::test_database!();
                    super::$case(std::sync::Arc::new(database.repository().await)).await;
                }
            )+
        }
    };
}

contract![
    create_stores_a_client_with_every_algorithm_off,
    update_replaces_the_spec_and_moves_updated_at,
    set_status_sets_every_switch_at_once,
    a_status_write_keeps_the_stored_switches_it_does_not_name,
    a_restart_mark_stays_until_acknowledged,
    delete_removes_the_client,
    a_missing_client_is_not_found,
    names_are_unique,
    deleting_a_client_deletes_its_status,
    list_pages_through_clients_in_id_order,
    acknowledge_is_compare_and_set_on_updated_at,
    acknowledge_racing_an_update_never_loses_the_update,
    acknowledge_all_settles_many_clients_with_the_same_rules,
    sixteen_concurrent_status_flips_lose_nothing,
    restart_marks_are_never_lost_to_concurrent_acknowledges,
    desired_state_reads_every_client_with_its_status,
    ping_answers,
    pod_retry_schedules_are_stored_replaced_and_cleared,
    a_client_is_read_with_its_pods_retry_schedules,
    a_client_read_follows_its_schedules_as_they_come_and_go,
];

/// A spec differing from [`spec`] in every field but the name.
fn changed(name: &str) -> ClientSpec {
    ClientSpec::parse(ClientSpecInput {
        name: name.into(),
        version: 2,
        image: "registry.example:5000/acme/algo:2.0".into(),
        cpu: "2".into(),
        mem: "1Gi".into(),
        priority: 0.75,
    })
    .unwrap()
}

/// Now, at the microsecond precision every store keeps.
fn now() -> SystemTime {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    UNIX_EPOCH + Duration::from_micros(micros as u64)
}

fn status(vwap: bool, twap: bool, hft: bool) -> AlgorithmStatus {
    alsy_tests::fixtures::switches(vwap, twap, hft)
}

fn ack(client: &Client, restart_seen: Option<SystemTime>) -> Acknowledgement {
    Acknowledgement {
        client_id: client.id,
        restart_seen,
    }
}

async fn create_stores_a_client_with_every_algorithm_off(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    assert_eq!(created.spec, spec("Jimbo"));
    assert_eq!(created.status, AlgorithmStatus::default());
    assert!(!created.need_restart);
    assert_eq!(created.spawned_at, None);
    assert!(created.created_at <= created.updated_at);
    assert_eq!(repo.get(created.id).await.unwrap(), created);
}

async fn update_replaces_the_spec_and_moves_updated_at(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    let updated = repo
        .update(created.id, &changed("Jimbo 2"), false)
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.spec, changed("Jimbo 2"));
    assert!(!updated.need_restart);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(repo.get(created.id).await.unwrap(), updated);
}

async fn set_status_sets_every_switch_at_once(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    let on = repo
        .set_status(created.id, status(true, false, true), false)
        .await
        .unwrap();
    assert_eq!(on.status, status(true, false, true));
    assert_eq!(on.spec, created.spec);
    assert!(!on.need_restart);
    assert!(on.updated_at > created.updated_at);
    assert_eq!(repo.get(created.id).await.unwrap(), on);

    let flipped = repo
        .set_status(created.id, status(false, true, false), true)
        .await
        .unwrap();
    assert_eq!(flipped.status, status(false, true, false));
    assert!(flipped.need_restart);
    assert!(flipped.updated_at > on.updated_at);
}

/// What keeps the switch of an algorithm dropped from the catalogue: the API writes only the
/// catalogue's switches, and storage keeps the rest for when the algorithm returns.
async fn a_status_write_keeps_the_stored_switches_it_does_not_name(repo: Repo) {
    use alsy_tests::fixtures::named_switches;
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    repo.set_status(
        created.id,
        named_switches(&[("VWAP", true), ("POV", true), ("X", false)]),
        false,
    )
    .await
    .unwrap();
    let written = repo
        .set_status(
            created.id,
            named_switches(&[("VWAP", false), ("X", true)]),
            false,
        )
        .await
        .unwrap();
    // The answer holds the switches as written; the kept one is in storage.
    assert_eq!(
        written.status,
        named_switches(&[("VWAP", false), ("X", true)])
    );
    let all = named_switches(&[("VWAP", false), ("POV", true), ("X", true)]);
    assert_eq!(repo.get(created.id).await.unwrap().status, all);
}

async fn a_restart_mark_stays_until_acknowledged(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    let marked = repo.update(created.id, &spec("Jimbo"), true).await.unwrap();
    assert!(marked.need_restart);
    let updated = repo
        .update(created.id, &spec("Jimbo"), false)
        .await
        .unwrap();
    assert!(
        updated.need_restart,
        "a later update must not cancel the mark"
    );
    let flipped = repo
        .set_status(created.id, status(true, true, true), false)
        .await
        .unwrap();
    assert!(
        flipped.need_restart,
        "a status update must not cancel the mark"
    );

    let at = now();
    let seen = Some(flipped.updated_at);
    assert!(repo.acknowledge(ack(&created, seen), at).await.unwrap());
    let settled = repo.get(created.id).await.unwrap();
    assert!(!settled.need_restart);
    assert_eq!(settled.spawned_at, Some(at));
    assert_eq!(
        settled.updated_at, flipped.updated_at,
        "acknowledging is not an API write"
    );
}

async fn delete_removes_the_client(repo: Repo) {
    let gone = repo.create(&spec("Jimbo")).await.unwrap();
    let kept = repo.create(&spec("Bimbo")).await.unwrap();
    repo.delete(gone.id).await.unwrap();
    assert_eq!(repo.get(gone.id).await, Err(RepoError::NotFound(gone.id)));
    assert_eq!(
        repo.delete(gone.id).await,
        Err(RepoError::NotFound(gone.id))
    );
    assert_eq!(repo.get(kept.id).await.unwrap(), kept);
    let ids: Vec<ClientId> = repo
        .desired_state()
        .await
        .unwrap()
        .clients
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [kept.id]);
}

async fn a_missing_client_is_not_found(repo: Repo) {
    let id = ClientId::new(987_654).unwrap();
    let not_found = Err(RepoError::NotFound(id));
    assert_eq!(repo.get(id).await, not_found);
    assert_eq!(repo.update(id, &spec("Jimbo"), true).await, not_found);
    assert_eq!(
        repo.set_status(id, status(true, true, true), true).await,
        not_found
    );
    assert_eq!(repo.delete(id).await, Err(RepoError::NotFound(id)));
    for restart_seen in [None, Some(now())] {
        let missing = Acknowledgement {
            client_id: id,
            restart_seen,
        };
        assert_eq!(repo.acknowledge(missing, now()).await, Ok(false));
    }
}

async fn names_are_unique(repo: Repo) {
    let jimbo = repo.create(&spec("Jimbo")).await.unwrap();
    assert_eq!(
        repo.create(&changed("Jimbo")).await,
        Err(RepoError::NameTaken("Jimbo".into()))
    );
    let bimbo = repo.create(&spec("Bimbo")).await.unwrap();
    assert_eq!(
        repo.update(bimbo.id, &spec("Jimbo"), true).await,
        Err(RepoError::NameTaken("Jimbo".into()))
    );
    assert_eq!(
        repo.get(bimbo.id).await.unwrap(),
        bimbo,
        "a refused update changes nothing"
    );
    repo.update(jimbo.id, &changed("Jimbo"), false)
        .await
        .expect("a client keeps its own name");

    repo.delete(jimbo.id).await.unwrap();
    let again = repo.create(&spec("Jimbo")).await.unwrap();
    assert_ne!(again.id, jimbo.id, "ids are not reused");
}

async fn deleting_a_client_deletes_its_status(repo: Repo) {
    let first = repo.create(&spec("Jimbo")).await.unwrap();
    repo.set_status(first.id, status(true, true, true), true)
        .await
        .unwrap();
    repo.delete(first.id).await.unwrap();
    assert!(repo.desired_state().await.unwrap().clients.is_empty());

    let second = repo.create(&spec("Jimbo")).await.unwrap();
    assert_eq!(
        second.status,
        AlgorithmStatus::default(),
        "a new client starts with everything off"
    );
    assert!(!second.need_restart);
}

async fn list_pages_through_clients_in_id_order(repo: Repo) {
    let page = |after: Option<ClientId>, limit: u32| PageRequest { after, limit };
    let empty = repo.list(PageRequest::default()).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.next, None);

    let mut clients = Vec::new();
    for i in 0..5 {
        let client = repo.create(&spec(&format!("client {i}"))).await.unwrap();
        clients.push(
            repo.set_status(client.id, status(i % 2 == 0, false, true), false)
                .await
                .unwrap(),
        );
    }
    let ids: Vec<ClientId> = clients.iter().map(|c| c.id).collect();

    let first = repo.list(page(None, 2)).await.unwrap();
    assert_eq!(first.items, clients[0..2], "clients with their status");
    assert_eq!(first.next, Some(ids[1]));
    let second = repo.list(page(first.next, 2)).await.unwrap();
    assert_eq!(second.items, clients[2..4]);
    assert_eq!(second.next, Some(ids[3]));
    let last = repo.list(page(second.next, 2)).await.unwrap();
    assert_eq!(last.items, clients[4..]);
    assert_eq!(last.next, None);

    let exact = repo.list(page(None, 5)).await.unwrap();
    assert_eq!(exact.items.len(), 5);
    assert_eq!(
        exact.next, None,
        "no next page when the last one is exactly full"
    );
    assert!(
        repo.list(page(Some(ids[4]), 2))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    repo.delete(ids[2]).await.unwrap();
    let around = repo.list(page(Some(ids[1]), 2)).await.unwrap();
    assert_eq!(around.items, clients[3..5]);
    assert_eq!(around.next, None);
}

async fn acknowledge_is_compare_and_set_on_updated_at(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    repo.update(created.id, &spec("Jimbo"), true).await.unwrap();
    let read = repo.desired_state().await.unwrap().clients.remove(0);
    assert!(read.need_restart);

    // An update arrives between the pass's read and its acknowledge.
    let later = repo
        .set_status(created.id, status(true, false, false), false)
        .await
        .unwrap();
    let at = now();
    assert!(
        !repo
            .acknowledge(ack(&created, Some(read.updated_at)), at)
            .await
            .unwrap()
    );
    let untouched = repo.get(created.id).await.unwrap();
    assert!(untouched.need_restart, "the later update is not lost");
    assert_eq!(untouched.spawned_at, None);

    assert!(
        repo.acknowledge(ack(&created, Some(later.updated_at)), at)
            .await
            .unwrap()
    );
    let settled = repo.get(created.id).await.unwrap();
    assert!(!settled.need_restart);
    assert_eq!(settled.spawned_at, Some(at));

    // Without a token an acknowledge only records the start, and leaves a mark alone.
    repo.update(created.id, &spec("Jimbo"), true).await.unwrap();
    let started = now() + Duration::from_secs(1);
    assert!(
        repo.acknowledge(ack(&created, None), started)
            .await
            .unwrap()
    );
    let spawned = repo.get(created.id).await.unwrap();
    assert!(spawned.need_restart);
    assert_eq!(spawned.spawned_at, Some(started));
}

async fn desired_state_reads_every_client_with_its_status(repo: Repo) {
    let a = repo.create(&spec("a")).await.unwrap();
    let b = repo.create(&spec("b")).await.unwrap();
    let c = repo.create(&spec("c")).await.unwrap();
    repo.set_status(a.id, status(true, false, false), false)
        .await
        .unwrap();
    repo.set_status(c.id, status(true, true, true), true)
        .await
        .unwrap();
    repo.delete(b.id).await.unwrap();

    let desired = repo.desired_state().await.unwrap().clients;
    let expected = vec![repo.get(a.id).await.unwrap(), repo.get(c.id).await.unwrap()];
    assert_eq!(desired, expected);
    assert!(desired[1].need_restart);
}

async fn ping_answers(repo: Repo) {
    repo.ping().await.unwrap();
}

async fn acknowledge_all_settles_many_clients_with_the_same_rules(repo: Repo) {
    let first = repo.create(&spec("first")).await.unwrap();
    let marked = repo
        .update(
            repo.create(&spec("marked")).await.unwrap().id,
            &spec("marked"),
            true,
        )
        .await
        .unwrap();
    let raced = repo
        .update(
            repo.create(&spec("raced")).await.unwrap().id,
            &spec("raced"),
            true,
        )
        .await
        .unwrap();
    let gone = repo.create(&spec("gone")).await.unwrap();
    // After the pass's read: `raced` is written again, `gone` is deleted.
    repo.set_status(raced.id, status(false, true, false), false)
        .await
        .unwrap();
    repo.delete(gone.id).await.unwrap();

    let at = now();
    let acks = [
        ack(&first, None),
        ack(&marked, Some(marked.updated_at)),
        ack(&raced, Some(raced.updated_at)),
        ack(&gone, None),
    ];
    assert_eq!(
        repo.acknowledge_all(&acks, at).await.unwrap(),
        [true, true, false, false]
    );

    let first = repo.get(first.id).await.unwrap();
    assert_eq!(first.spawned_at, Some(at));
    let marked = repo.get(marked.id).await.unwrap();
    assert!(!marked.need_restart);
    assert_eq!(marked.spawned_at, Some(at));
    let raced = repo.get(raced.id).await.unwrap();
    assert!(
        raced.need_restart,
        "the write after the read keeps its restart"
    );
    assert_eq!(raced.spawned_at, None);
    assert_eq!(
        repo.acknowledge_all(&[], at).await.unwrap(),
        Vec::<bool>::new()
    );
}
