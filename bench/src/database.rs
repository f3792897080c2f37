//! The bench's own PostgreSQL databases: created fresh for each measurement, seeded in bulk with
//! SQL after alsy's migrations ran, timed through psql, and dropped afterwards.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_postgres::NoTls;

/// Where PostgreSQL listens; only the loopback interface is accepted.
#[derive(Debug, Clone)]
pub struct PgServer {
    /// Host, `127.0.0.1` by default.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User (trust authentication: no password).
    pub user: String,
}

impl PgServer {
    /// Refuses anything but a loopback address: the bench sends traffic to this machine only.
    pub fn checked(host: String, port: u16, user: String) -> anyhow::Result<PgServer> {
        if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
            bail!("--pg-host must be a loopback address (127.0.0.1, localhost or ::1), not {host}");
        }
        Ok(PgServer { host, port, user })
    }

    /// A `postgres://` URL for `database`.
    pub fn url(&self, database: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, host, self.port, database
        )
    }

    /// The connection arguments psql and pgbench take, without the database.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.host.clone(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            self.user.clone(),
        ]
    }

    async fn connect(&self, database: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) = tokio_postgres::connect(&self.url(database), NoTls)
            .await
            .with_context(|| {
                format!(
                    "connecting to {} (is PostgreSQL running? `pg_ctlcluster --skip-systemctl-redirect 15 main start`)",
                    self.url(database)
                )
            })?;
        tokio::spawn(connection);
        Ok(client)
    }
}

/// A database that exists for one measurement.
pub struct BenchDatabase {
    server: PgServer,
    name: String,
}

impl BenchDatabase {
    /// Creates `alsy_bench_{purpose}_{pid}`, dropping a leftover of the same name first.
    pub async fn create(server: &PgServer, purpose: &str) -> anyhow::Result<BenchDatabase> {
        let name = format!("alsy_bench_{purpose}_{}", std::process::id());
        let admin = server.connect("postgres").await?;
        // Two statements: a multi-statement string would run as one transaction, which
        // CREATE/DROP DATABASE refuse.
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        Ok(BenchDatabase {
            server: server.clone(),
            name,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its URL.
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// A connection to it.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        self.server.connect(&self.name).await
    }

    /// Drops it, closing whatever connections are still open.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let admin = self.server.connect("postgres").await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("dropping database {}", self.name))
    }

    /// Inserts `count` clients (ids 1..=count in a fresh database) with one status row each,
    /// every algorithm set to `on`, in two set-based statements; then ANALYZE. Returns the ids.
    ///
    /// Seeds either schema: the jsonb `switches` of the catalogue (issue 12), or the three boolean
    /// columns of the releases before it, so `api-ab` can compare a binary from before.
    pub async fn seed(&self, count: u64, on: bool) -> anyhow::Result<(i64, i64)> {
        let db = self.server.connect(&self.name).await?;
        let catalogue_schema = db
            .query_opt(
                "SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'algorithm_status' AND column_name = 'switches'",
                &[],
            )
            .await
            .context("reading the schema of algorithm_status")?
            .is_some();
        let statuses = if catalogue_schema {
            format!(
                "INSERT INTO algorithm_status (client_id, switches) \
                 SELECT id, jsonb_build_object('VWAP', {on}, 'TWAP', {on}, 'HFT', {on}) FROM clients"
            )
        } else {
            format!(
                "INSERT INTO algorithm_status (client_id, vwap, twap, hft) \
                 SELECT id, {on}, {on}, {on} FROM clients"
            )
        };
        let statements = [
            format!(
                "INSERT INTO clients (name, version, image, cpu, mem, priority) \
                 SELECT 'bench-client-' || i, 1, 'ghcr.io/acme/algo:1.0', '500m', '512Mi', 0.5 \
                 FROM generate_series(1, {count}) AS i"
            ),
            statuses,
            // VACUUM refuses to run in a transaction: one statement per call.
            "VACUUM ANALYZE clients".into(),
            "VACUUM ANALYZE algorithm_status".into(),
        ];
        for statement in statements {
            db.batch_execute(&statement)
                .await
                .context("seeding clients (have alsy's migrations run?)")?;
        }
        let row = db
            .query_one("SELECT min(id), max(id), count(*) FROM clients", &[])
            .await
            .context("reading the seeded ids")?;
        let (min, max, seeded): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if seeded as u64 != count || max - min + 1 != seeded {
            bail!(
                "seeding gave {seeded} clients with ids {min}..={max}; expected {count} contiguous ids"
            );
        }
        Ok((min, max))
    }

    /// The psql arguments that reach this database.
    pub fn psql_args(&self) -> Vec<String> {
        let mut args = self.server.cli_args();
        args.extend(["-d".into(), self.name.clone()]);
        args
    }

    /// Runs `sql` through psql `runs` times with `\timing` on and the rows sent to /dev/null;
    /// returns each run's time as psql reports it (server round trip plus transfer to psql).
    pub fn psql_timing(&self, sql: &str, runs: usize) -> anyhow::Result<Vec<Duration>> {
        let mut args = self.psql_args();
        args.extend(
            [
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-o",
                "/dev/null",
                "-c",
                "\\timing on",
            ]
            .map(String::from),
        );
        for _ in 0..runs {
            args.extend(["-c".into(), sql.to_string()]);
        }
        let out = Command::new("psql")
            .args(&args)
            .output()
            .context("running psql (is it installed?)")?;
        if !out.status.success() {
            bail!(
                "psql failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let times: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("Time: "))
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .collect();
        if times.len() != runs {
            bail!("psql printed {} timings, expected {runs}", times.len());
        }
        Ok(times)
    }
}
