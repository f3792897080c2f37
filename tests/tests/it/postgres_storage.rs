//! What only the PostgreSQL repository has beyond the shared contract: the schema of its
//! migrations, migrations that replicas may run at the same moment, the cascade at the SQL level,
//! and the desired-state read at a realistic size.

use std::time::{Duration, Instant};

use alsy_app::ClientRepository;
use alsy_postgres::{PostgresRepository, PostgresSettings};
use alsy_tests::fixtures::spec;
use alsy_tests::logs::Logs;
use alsy_tests::test_database;

/// The first column of every row `query` returns, as text.
async fn texts(sql: &tokio_postgres::Client, query: &str) -> Vec<String> {
    let rows = sql.query(query, &[]).await.unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schema_is_the_designed_one() {
    let database = test_database!();
    let sql = database.sql().await;
    let columns = texts(
        &sql,
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
         || coalesce(' default ' || column_default, '') \
         FROM information_schema.columns \
         WHERE table_name IN ('clients', 'algorithm_status') \
         ORDER BY table_name, ordinal_position",
    )
    .await;
    assert_eq!(
        columns,
        [
            "algorithm_status.id bigint NO default nextval('algorithm_status_id_seq'::regclass)",
            "algorithm_status.client_id bigint NO",
            "algorithm_status.vwap boolean NO default false",
            "algorithm_status.twap boolean NO default false",
            "algorithm_status.hft boolean NO default false",
            "clients.id bigint NO default nextval('clients_id_seq'::regclass)",
            "clients.name text NO",
            "clients.version integer NO",
            "clients.image text NO",
            "clients.cpu text NO",
            "clients.mem text NO",
            "clients.priority double precision NO",
            "clients.need_restart boolean NO default false",
            "clients.spawned_at timestamp with time zone YES",
            "clients.created_at timestamp with time zone NO default now()",
            "clients.updated_at timestamp with time zone NO default now()",
        ]
    );
    let constraints = texts(
        &sql,
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid IN ('clients'::regclass, 'algorithm_status'::regclass) \
         ORDER BY conname",
    )
    .await;
    assert_eq!(
        constraints,
        [
            "algorithm_status_client_id_fkey FOREIGN KEY (client_id) REFERENCES clients(id) ON DELETE CASCADE",
            "algorithm_status_client_id_key UNIQUE (client_id)",
            "algorithm_status_pkey PRIMARY KEY (id)",
            "clients_name_key UNIQUE (name)",
            "clients_pkey PRIMARY KEY (id)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_the_same_moment_all_succeed() {
    let database = test_database!();
    database
        .sql()
        .await
        .batch_execute("DROP TABLE algorithm_status, clients, __diesel_schema_migrations")
        .await
        .unwrap();

    let log = Logs::default().logger();
    let settings = database.settings();
    let (a, b, c, d) = tokio::join!(
        alsy_postgres::migrate(&settings, &log),
        alsy_postgres::migrate(&settings, &log),
        alsy_postgres::migrate(&settings, &log),
        alsy_postgres::migrate(&settings, &log),
    );
    for result in [a, b, c, d] {
        result.unwrap();
    }
    let repo = database.repository().await;
    repo.create(&spec("Jimbo")).await.unwrap();
    alsy_postgres::migrate(&settings, &log)
        .await
        .expect("migrating a migrated database changes nothing");
    assert_eq!(repo.desired_state().await.unwrap().clients.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_and_its_status_row_are_born_and_die_together() {
    let database = test_database!();
    let repo = database.repository().await;
    let sql = database.sql().await;
    let status_rows = async |id: i64| -> i64 {
        sql.query_one(
            "SELECT count(*) FROM algorithm_status WHERE client_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
    };

    let client = repo.create(&spec("Jimbo")).await.unwrap();
    assert_eq!(status_rows(client.id.get()).await, 1);
    repo.delete(client.id).await.unwrap();
    assert_eq!(status_rows(client.id.get()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn desired_state_reads_a_hundred_thousand_clients_in_one_go() {
    let database = test_database!();
    database
        .sql()
        .await
        .batch_execute(
            "INSERT INTO clients (name, version, image, cpu, mem, priority, need_restart) \
             SELECT 'client ' || i, 1, 'ghcr.io/acme/algo:1.0', '500m', '512Mi', 0.5, i % 10 = 0 \
             FROM generate_series(1, 100000) AS i; \
             INSERT INTO algorithm_status (client_id, vwap, twap, hft) \
             SELECT id, id % 2 = 0, id % 3 = 0, id % 5 = 0 FROM clients;",
        )
        .await
        .unwrap();
    // The point is one read returning every row, not its speed: on a loaded 2-core machine the
    // read took longer than the 5 s default read timeout (issue 15's five-run check), so this
    // repository waits as long as the read takes. Speed is bench/'s business.
    let settings = PostgresSettings {
        read_timeout: Duration::from_secs(600),
        ..database.settings()
    };
    let repo = PostgresRepository::connect(&settings, &Logs::default().logger())
        .await
        .unwrap();

    let started = Instant::now();
    let clients = repo.desired_state().await.unwrap().clients;
    println!(
        "observed: desired_state of {} clients took {:?}",
        clients.len(),
        started.elapsed()
    );
    assert_eq!(clients.len(), 100_000);
    assert!(clients.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(clients.iter().filter(|c| c.need_restart).count(), 10_000);
}
