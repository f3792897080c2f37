//! PostgreSQL misbehaving under a running repository: calls fail `Unavailable` within their
//! timeout plus a small margin — never hang, never panic — and the same repository recovers once
//! the database is back. The cut is deterministic: a TCP proxy the test pauses or cuts, a row
//! lock, or `pg_terminate_backend`. Also the reconcile lock shared by replicas.

use std::future::Future;
use std::time::{Duration, Instant};

use alsy_app::{ClientRepository, PassLock, RepoError};
use alsy_domain::PageRequest;
use alsy_postgres::{PostgresError, PostgresRepository, PostgresSettings};
use alsy_tests::fixtures::{LOAD_MARGIN, eventually, spec};
use alsy_tests::logs::Logs;
use alsy_tests::postgres::TestDatabase;
use alsy_tests::tcp_proxy::TcpProxy;
use alsy_tests::test_database;

/// The read and write timeouts of these tests.
const TIMEOUT: Duration = Duration::from_secs(1);

/// A repository on `database` reached at `url` (through a proxy, say), with these tests'
/// timeouts, logging to `logs`.
async fn connect(database: &TestDatabase, url: String, logs: &Logs) -> PostgresRepository {
    let settings = PostgresSettings {
        url,
        read_timeout: TIMEOUT,
        write_timeout: TIMEOUT,
        start_timeout: Duration::from_secs(5),
        ..database.settings()
    };
    PostgresRepository::connect(&settings, &logs.logger())
        .await
        .expect("connecting to the test database")
}

/// Runs `call`, prints how long it took, and checks it failed `Unavailable` in time.
async fn unavailable_in_time<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, RepoError>>,
) -> Duration {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    println!("observed: {what} -> {result:?} after {took:?}");
    assert!(
        matches!(result, Err(RepoError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(
        // The paused database never answers: the timeout, not an answer, ended the call.
        took <= TIMEOUT + LOAD_MARGIN,
        "{what} took {took:?}, more than {TIMEOUT:?} + {LOAD_MARGIN:?}"
    );
    took
}

/// Connects with `settings`, which must fail (`what` says why), and prints how long it took.
async fn failed_connect(
    what: &str,
    settings: &PostgresSettings,
    logs: &Logs,
) -> (PostgresError, Duration) {
    let started = Instant::now();
    let Err(error) = PostgresRepository::connect(settings, &logs.logger()).await else {
        panic!("connect ({what}) succeeded");
    };
    let took = started.elapsed();
    println!("observed: connect ({what}) -> {error} after {took:?}");
    (error, took)
}

/// A session holding the rows `select` finds, locked in a transaction it leaves open: a writer
/// that does not finish. `ROLLBACK` on it lets them go.
async fn holding(database: &TestDatabase, select: &str) -> tokio_postgres::Client {
    let session = database.sql().await;
    session
        .batch_execute(&format!("BEGIN; {select} FOR UPDATE"))
        .await
        .unwrap();
    session
}

async fn recovers(repo: &PostgresRepository) {
    let started = Instant::now();
    eventually(
        "the same repository answers again",
        Duration::from_secs(15),
        || async { repo.ping().await.is_ok() },
    )
    .await;
    println!(
        "observed: recovered {:?} after the database came back",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_stops_answering_gives_unavailable_within_the_timeout() {
    let database = test_database!();
    let proxy = TcpProxy::start(database.server_addr().await).await.unwrap();
    let logs = Logs::default();
    let repo = connect(&database, database.url_via(proxy.addr()), &logs).await;
    let client = repo.create(&spec("Jimbo")).await.unwrap();

    proxy.pause();
    let on = alsy_tests::fixtures::switches(true, false, false);
    unavailable_in_time("get (paused)", repo.get(client.id)).await;
    unavailable_in_time("list (paused)", repo.list(PageRequest::default())).await;
    unavailable_in_time("desired_state (paused)", repo.desired_state()).await;
    unavailable_in_time("ping (paused)", repo.ping()).await;
    unavailable_in_time("create (paused)", repo.create(&spec("Bimbo"))).await;
    unavailable_in_time("set_status (paused)", repo.set_status(client.id, on, true)).await;

    proxy.restore();
    recovers(&repo).await;
    assert_eq!(repo.get(client.id).await.unwrap().spec, spec("Jimbo"));
    repo.create(&spec("Bimbo")).await.unwrap();

    let messages: Vec<String> = logs.lines().into_iter().map(|l| l.msg).collect();
    let count = |msg: &str| messages.iter().filter(|m| *m == msg).count();
    assert_eq!(
        count("storage unavailable"),
        1,
        "one line per outage: {messages:?}"
    );
    assert_eq!(count("storage available again"), 1, "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_goes_away_gives_unavailable_naming_the_cause_and_comes_back() {
    let database = test_database!();
    let proxy = TcpProxy::start(database.server_addr().await).await.unwrap();
    let repo = connect(&database, database.url_via(proxy.addr()), &Logs::default()).await;
    let client = repo.create(&spec("Jimbo")).await.unwrap();

    proxy.cut();
    unavailable_in_time("get (cut)", repo.get(client.id)).await;
    unavailable_in_time("delete (cut)", repo.delete(client.id)).await;
    match repo.ping().await {
        Err(RepoError::Unavailable(cause)) => {
            println!("observed: ping (cut) -> {cause}");
            assert!(cause.contains(&proxy.addr().to_string()), "{cause}");
        }
        other => panic!("ping while cut: {other:?}"),
    }

    proxy.restore();
    recovers(&repo).await;
    assert_eq!(repo.get(client.id).await.unwrap().id, client.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_row_gives_unavailable_within_the_write_timeout() {
    let database = test_database!();
    let repo = connect(&database, database.url().to_owned(), &Logs::default()).await;
    let client = repo.create(&spec("Jimbo")).await.unwrap();

    let blocker = holding(
        &database,
        &format!("SELECT * FROM clients WHERE id = {}", client.id),
    )
    .await;
    unavailable_in_time(
        "update (row locked)",
        repo.update(client.id, &spec("Jimbo"), true),
    )
    .await;
    blocker.batch_execute("ROLLBACK").await.unwrap();

    let updated = repo.update(client.id, &spec("Jimbo"), true).await.unwrap();
    assert!(updated.need_restart);
}

/// A status write is one statement whose status-row `UPDATE` sits in a `WITH` that nothing reads
/// (`adapters-postgres/src/queries.rs`, `SetStatusQuery`). It must lock the client row before the
/// status row, as `update` and `delete` do, or two writes could deadlock; PostgreSQL's manual
/// leaves the order of a `WITH`'s sub-statements open, so this pins what the server does. With
/// the status row held elsewhere, the write must be holding the client row while it waits:
/// `FOR UPDATE NOWAIT` on the client row fails. In the other order it would always succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_write_locks_the_client_row_before_its_status_row() {
    let database = test_database!();
    let repo = database.repository().await;
    let client = repo.create(&spec("Jimbo")).await.unwrap();

    let blocker = holding(
        &database,
        &format!(
            "SELECT * FROM algorithm_status WHERE client_id = {}",
            client.id
        ),
    )
    .await;
    let on = alsy_tests::fixtures::switches(true, false, true);
    let write = tokio::spawn({
        let repo = repo.clone();
        let on = on.clone();
        async move { repo.set_status(client.id, on, false).await }
    });

    let probe = database.sql().await;
    let lock_client = format!(
        "SELECT 1 FROM clients WHERE id = {} FOR UPDATE NOWAIT",
        client.id
    );
    eventually(
        "the waiting status write holds the client row",
        Duration::from_secs(10),
        || async {
            match probe.batch_execute(&lock_client).await {
                Ok(()) => false,
                Err(e) => {
                    let code = e.code().map(|c| c.code().to_owned());
                    assert_eq!(code.as_deref(), Some("55P03"), "{e}");
                    true
                }
            }
        },
    )
    .await;
    assert!(!write.is_finished(), "the write waits for the status row");

    blocker.batch_execute("ROLLBACK").await.unwrap();
    let written = write.await.unwrap().unwrap();
    assert_eq!(written.status, on);
    assert_eq!(repo.get(client.id).await.unwrap().status, on);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_the_server_terminated_are_replaced_without_failing_a_request() {
    let database = test_database!();
    let repo = database.repository().await;
    let client = repo.create(&spec("Jimbo")).await.unwrap();

    let admin = database.sql().await;
    let others = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database.name()
    );
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            database.name()
        ))
        .await
        .unwrap();
    eventually(
        "the pooled sessions are gone",
        Duration::from_secs(10),
        || async {
            let count: i64 = admin.query_one(&others, &[]).await.unwrap().get(0);
            count == 0
        },
    )
    .await;

    assert_eq!(repo.get(client.id).await.unwrap().id, client.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_replica_holds_the_reconcile_lock() {
    let database = test_database!();
    let one = database.repository().await.pass_lock();
    let two = database.repository().await.pass_lock();

    let held = one.try_acquire().await.unwrap().expect("a free lock");
    assert!(two.try_acquire().await.unwrap().is_none());
    assert!(
        one.try_acquire().await.unwrap().is_none(),
        "a second session of the same replica does not get it either"
    );

    held.release().await;
    let held = two.try_acquire().await.unwrap().expect("released, so free");
    assert!(one.try_acquire().await.unwrap().is_none());

    drop(held);
    let started = Instant::now();
    let again = std::sync::Mutex::new(None);
    eventually(
        "dropping the lock freed it",
        Duration::from_secs(10),
        || async {
            let held = one.try_acquire().await.unwrap();
            let free = held.is_some();
            *again.lock().unwrap() = held;
            free
        },
    )
    .await;
    println!(
        "observed: a dropped lock was free again after {:?}",
        started.elapsed()
    );
    let again = again.into_inner().unwrap().expect("held once free");
    again.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reconcile_lock_is_unavailable_while_the_database_is() {
    let database = test_database!();
    let proxy = TcpProxy::start(database.server_addr().await).await.unwrap();
    let repo = connect(&database, database.url_via(proxy.addr()), &Logs::default()).await;
    let lock = repo.pass_lock();

    proxy.pause();
    unavailable_in_time("try_acquire (paused)", async {
        lock.try_acquire().await.map(|held| held.is_some())
    })
    .await;
    proxy.cut();
    unavailable_in_time("try_acquire (cut)", async {
        lock.try_acquire().await.map(|held| held.is_some())
    })
    .await;

    proxy.restore();
    let held = lock.try_acquire().await.unwrap().expect("a free lock");
    held.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_an_unreachable_database_fails_naming_it_and_not_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = PostgresSettings {
        url: format!("postgres://alsy:s3cret@127.0.0.1:{port}/alsy"),
        min_conns: 1,
        max_conns: 2,
        start_timeout: Duration::from_secs(1),
        read_timeout: TIMEOUT,
        write_timeout: TIMEOUT,
        idle_timeout: Duration::ZERO,
        lifetime_jitter: Duration::ZERO,
    };
    let logs = Logs::default();

    let (error, took) = failed_connect("nothing listening", &settings, &logs).await;
    let message = error.to_string();
    assert!(matches!(error, PostgresError::Unreachable { .. }));
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    // Bounded by the 1 s start timeout (plus LOAD_MARGIN), not left to hang.
    assert!(took < Duration::from_secs(1) + LOAD_MARGIN, "{took:?}");

    let error = alsy_postgres::migrate(&settings, &logs.logger())
        .await
        .expect_err("nothing listens there");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_us_fails_at_once_naming_why() {
    let database = test_database!();
    let settings = PostgresSettings {
        url: format!("{}_missing", database.url()),
        start_timeout: Duration::from_secs(30),
        ..database.settings()
    };

    let (error, took) = failed_connect("no such database", &settings, &Logs::default()).await;
    let message = error.to_string();
    assert!(matches!(error, PostgresError::Refused { .. }), "{error:?}");
    assert!(message.contains("does not exist"), "{message}");
    // Ending before the 30 s start timeout means it did not wait out a refusal.
    assert!(
        took < settings.start_timeout,
        "waiting cannot help, yet took {took:?}"
    );
}
