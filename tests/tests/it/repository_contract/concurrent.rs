//! The contract's cases with concurrent writers: status flips, restart marks and acknowledges
//! racing each other must lose nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use alsy_tests::fixtures::spec;

use super::{Repo, ack, now, status};

pub(super) async fn acknowledge_racing_an_update_never_loses_the_update(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    for _ in 0..25 {
        let marked = repo.update(created.id, &spec("Jimbo"), true).await.unwrap();
        let acker = {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.acknowledge(ack(&marked, Some(marked.updated_at)), now())
                    .await
            })
        };
        let marker = {
            let repo = repo.clone();
            tokio::spawn(async move { repo.update(created.id, &spec("Jimbo"), true).await })
        };
        acker.await.unwrap().unwrap();
        let remarked = marker.await.unwrap().unwrap();
        let after = repo.get(created.id).await.unwrap();
        assert!(
            after.need_restart,
            "the update's mark survives whatever the order"
        );
        assert_eq!(after.updated_at, remarked.updated_at);
    }
}

pub(super) async fn sixteen_concurrent_status_flips_lose_nothing(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    let pattern = |i: u8| status(i & 1 != 0, i & 2 != 0, i & 4 != 0);
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.set_status(created.id, pattern(i), true).await })
        })
        .collect();
    let mut written = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let client = task.await.unwrap().unwrap();
        assert_eq!(
            client.status,
            pattern(i as u8),
            "each write returns what it wrote"
        );
        written.push(client);
    }

    let stamps: BTreeSet<SystemTime> = written.iter().map(|c| c.updated_at).collect();
    assert_eq!(stamps.len(), 16, "every write gets its own updated_at");
    assert!(written.iter().all(|c| c.updated_at > created.updated_at));
    let last = written.iter().max_by_key(|c| c.updated_at).unwrap();
    let stored = repo.get(created.id).await.unwrap();
    assert!(stored.need_restart);
    assert_eq!(stored.updated_at, last.updated_at);
    assert_eq!(stored.status, last.status, "the last write wins, whole");
}

pub(super) async fn restart_marks_are_never_lost_to_concurrent_acknowledges(repo: Repo) {
    let created = repo.create(&spec("Jimbo")).await.unwrap();
    let id = created.id;
    let marking = Arc::new(AtomicBool::new(true));
    let acker = {
        let (repo, marking) = (repo.clone(), marking.clone());
        tokio::spawn(async move {
            // A reconciler: read the mark, acknowledge with the token read.
            let mut settled = Vec::new();
            while marking.load(Ordering::SeqCst) {
                let read = repo.desired_state().await.unwrap().clients.remove(0);
                let token = Some(read.updated_at);
                if read.need_restart && repo.acknowledge(ack(&read, token), now()).await.unwrap() {
                    settled.push(read.updated_at);
                }
                tokio::task::yield_now().await;
            }
            settled
        })
    };
    let markers: Vec<_> = (0..16u8)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                for round in 0..5u8 {
                    if (i + round) % 2 == 0 {
                        repo.update(id, &spec("Jimbo"), true).await.unwrap();
                    } else {
                        repo.set_status(id, status(true, round % 2 == 0, false), true)
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for marker in markers {
        marker.await.unwrap();
    }
    marking.store(false, Ordering::SeqCst);
    let settled = acker.await.unwrap();

    let last = repo.get(id).await.unwrap();
    assert!(
        last.need_restart || settled.contains(&last.updated_at),
        "the mark of the last write was cleared without being read (settled {} times)",
        settled.len()
    );
    if last.need_restart {
        assert!(
            repo.acknowledge(ack(&last, Some(last.updated_at)), now())
                .await
                .unwrap()
        );
        assert!(!repo.get(id).await.unwrap().need_restart);
    }
}
