//! What only the PostgreSQL repository has beyond the shared contract: the schema of its
//! migrations, migrating a database the three-column release wrote, migrations that replicas may
//! run at the same moment, the cascade at the SQL level, and the desired-state read at a
//! realistic size.

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
            "algorithm_status.switches jsonb NO default '{}'::jsonb",
            "algorithm_status.has_retries boolean NO default false",
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
            "algorithm_status_switches_is_an_object CHECK ((jsonb_typeof(switches) = 'object'::text))",
            "clients_name_key UNIQUE (name)",
            "clients_pkey PRIMARY KEY (id)",
        ]
    );
}

/// The schema of the release before the catalogue: its one migration, as diesel recorded it.
const THREE_COLUMN_RELEASE: &str =
    include_str!("../../../adapters-postgres/migrations/2026-11-25-000000_create_clients/up.sql");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_the_three_column_release_migrates_every_switch() {
    let database = test_database!();
    let sql = database.sql().await;
    // Back to the database the previous release leaves: its tables, and diesel's record that
    // its one migration ran (the table as diesel creates it).
    sql.batch_execute(&format!(
        "DROP TABLE pod_retries, algorithm_status, clients, __diesel_schema_migrations; \
         CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20261125000000'); \
         {THREE_COLUMN_RELEASE}"
    ))
    .await
    .unwrap();
    // Every combination of the three switches, several times over, and restart marks.
    sql.batch_execute(
        "INSERT INTO clients (name, version, image, cpu, mem, priority, need_restart) \
         SELECT 'client ' || i, 1, 'ghcr.io/acme/algo:1.0', '500m', '512Mi', 0.5, i % 3 = 0 \
         FROM generate_series(1, 40) AS i; \
         INSERT INTO algorithm_status (client_id, vwap, twap, hft) \
         SELECT id, id & 1 = 1, id & 2 = 2, id & 4 = 4 FROM clients;",
    )
    .await
    .unwrap();
    let before: Vec<(i64, bool, bool, bool, bool)> = sql
        .query(
            "SELECT c.id, s.vwap, s.twap, s.hft, c.need_restart \
             FROM clients c JOIN algorithm_status s ON s.client_id = c.id ORDER BY c.id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(before.len(), 40);

    alsy_postgres::migrate(&database.settings(), &Logs::default().logger())
        .await
        .unwrap();

    let stored = database.repository().await.desired_state().await.unwrap();
    assert!(stored.unusable.is_empty(), "{:?}", stored.unusable);
    let after: Vec<(i64, bool, bool, bool, bool)> = stored
        .clients
        .iter()
        .map(|c| {
            let on = |name: &str| c.status.is_on(alsy_domain::Algorithm::parse(name).unwrap());
            (
                c.id.get(),
                on("VWAP"),
                on("TWAP"),
                on("HFT"),
                c.need_restart,
            )
        })
        .collect();
    assert_eq!(after, before, "every client keeps every switch");
    let keys = texts(
        &sql,
        "SELECT DISTINCT string_agg(key, ',' ORDER BY key) \
         FROM algorithm_status, jsonb_object_keys(switches) AS key GROUP BY client_id",
    )
    .await;
    assert_eq!(keys, ["HFT,TWAP,VWAP"], "off switches are stored too");
}

/// What `has_retries` undoes: the migration that adds the flag, run backwards.
const WITHOUT_THE_RETRIES_FLAG: &str = include_str!(
    "../../../adapters-postgres/migrations/2026-12-11-000000_status_has_retries/down.sql"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_of_the_release_before_the_retries_flag_keeps_every_schedule_readable() {
    let database = test_database!();
    let sql = database.sql().await;
    // Back to the database the previous release leaves: no flag, and no record of its migration.
    sql.batch_execute(&format!(
        "{WITHOUT_THE_RETRIES_FLAG} \
         DELETE FROM __diesel_schema_migrations WHERE version = '20261211000000';"
    ))
    .await
    .unwrap();
    // Ten clients; schedules for the pods of every third, and one of a client that is gone.
    sql.batch_execute(
        "INSERT INTO clients (name, version, image, cpu, mem, priority) \
         SELECT 'client ' || i, 1, 'ghcr.io/acme/algo:1.0', '500m', '512Mi', 0.5 \
         FROM generate_series(1, 10) AS i; \
         INSERT INTO algorithm_status (client_id) SELECT id FROM clients; \
         INSERT INTO pod_retries (pod, client_id, operation, intent, attempts, error, rejected, \
             failed_at, next_retry_at) \
         SELECT algorithm || '-' || id, id, 'create', 1, 2, 'refused', false, now(), now() \
         FROM clients, unnest(ARRAY['vwap', 'hft']) AS algorithm WHERE id % 3 = 0 \
         UNION ALL SELECT 'twap-999', 999, 'delete', 1, 1, 'refused', false, now(), now();",
    )
    .await
    .unwrap();

    alsy_postgres::migrate(&database.settings(), &Logs::default().logger())
        .await
        .unwrap();

    let flagged = texts(
        &sql,
        "SELECT client_id::text FROM algorithm_status WHERE has_retries ORDER BY client_id",
    )
    .await;
    assert_eq!(flagged, ["3", "6", "9"]);
    let repo = database.repository().await;
    let clients = repo.desired_state().await.unwrap().clients;
    assert_eq!(clients.len(), 10);
    for client in clients {
        let (_, retries) = repo.client_with_retries(client.id).await.unwrap();
        let pods: Vec<String> = retries.iter().map(|r| r.pod.to_string()).collect();
        let expected: Vec<String> = if client.id.get() % 3 == 0 {
            vec![format!("hft-{}", client.id), format!("vwap-{}", client.id)]
        } else {
            vec![]
        };
        assert_eq!(pods, expected, "client {}", client.id);
    }
    // The last schedule of a client cleared clears its flag: its reads look no more up.
    let cleared: Vec<_> = ["hft-3", "vwap-3"]
        .iter()
        .map(|pod| alsy_domain::PodName::parse(pod).unwrap())
        .collect();
    repo.save_pod_retries(&[], &cleared).await.unwrap();
    let flagged = texts(
        &sql,
        "SELECT client_id::text FROM algorithm_status WHERE has_retries ORDER BY client_id",
    )
    .await;
    assert_eq!(flagged, ["6", "9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_the_same_moment_all_succeed() {
    let database = test_database!();
    database
        .sql()
        .await
        .batch_execute(
            "DROP TABLE pod_retries, algorithm_status, clients, __diesel_schema_migrations",
        )
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
             INSERT INTO algorithm_status (client_id, switches) \
             SELECT id, jsonb_build_object('VWAP', id % 2 = 0, 'TWAP', id % 3 = 0, 'HFT', id % 5 = 0) \
             FROM clients;",
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
