//! Bench 2: reconcile passes at several sizes. Each size gets a fresh database seeded with SQL,
//! and runs in a child process so that its peak RSS (VmHWM) is its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use alsy_app::{ClientRepository, PassOutcome, Reconciler, Trigger};
use alsy_fake::{FakePodRuntime, LocalPassLock};
use alsy_postgres::{PostgresRepository, PostgresSettings};

use crate::database::{BenchDatabase, PgServer};
use crate::report::{Table, ms, verdict};
use crate::{Options, progress, sql};

/// The pass concurrency alsy uses by default (`ALSY__SYNC__CONCURRENCY`).
const CONCURRENCY: usize = 16;

/// Arguments of the hidden `reconcile-child` command.
#[derive(clap::Args)]
pub struct ChildArgs {
    /// The seeded database.
    #[arg(long)]
    url: String,
    /// Clients it holds (all three algorithms on).
    #[arg(long)]
    size: u64,
    /// Extra no-change passes after the measured ones, for profiling with perf or heaptrack.
    #[arg(long, default_value_t = 0)]
    extra_passes: usize,
}

/// What a child measured, printed as one JSON line.
#[derive(Serialize, Deserialize)]
struct ChildReport {
    first_pass: Duration,
    first_created: usize,
    first_failed: usize,
    second_pass: Duration,
    second_actions: usize,
    desired_state_alone: Duration,
    runtime_list_alone: Duration,
    acknowledge_each: Duration,
    rss_after_connect_kib: u64,
    peak_rss_kib: u64,
}

/// One row of the table.
struct Row {
    size: u64,
    select: Duration,
    child: ChildReport,
}

/// Runs every size, each in its own database and child process.
pub async fn run(server: &PgServer, options: &Options) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for &size in &options.sizes {
        let db = BenchDatabase::create(server, "reconcile").await?;
        let result = measure(&db, size, options).await;
        db.drop_now().await?;
        rows.push(result.with_context(|| format!("at {size} clients"))?);
    }
    Ok(render(&rows))
}

async fn measure(db: &BenchDatabase, size: u64, options: &Options) -> anyhow::Result<Row> {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    progress(format!(
        "reconcile: {size} clients: migrating and seeding {}",
        db.name()
    ));
    alsy_postgres::migrate(&settings(db.url()), &log)
        .await
        .context("running alsy's migrations")?;
    db.seed(size, true).await?;
    let mut times =
        tokio::task::block_in_place(|| db.psql_timing(sql::DESIRED_STATE, options.select_runs))?;
    times.sort();
    let select = times[times.len() / 2];
    progress(format!(
        "reconcile: {size} clients: raw SELECT via psql, median of {}: {:.1} ms",
        times.len(),
        select.as_secs_f64() * 1e3
    ));
    progress(format!(
        "reconcile: {size} clients: two passes in a child process"
    ));
    let exe = std::env::current_exe().context("finding alsy-bench's own path")?;
    let child = tokio::process::Command::new(exe)
        .args([
            "reconcile-child",
            "--url",
            &db.url(),
            "--size",
            &size.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), child)
        .await
        .context("the reconcile child ran for more than 10 minutes")?
        .context("starting the reconcile child")?;
    if !out.status.success() {
        bail!("the reconcile child failed with {}", out.status);
    }
    let child: ChildReport =
        serde_json::from_slice(&out.stdout).context("reading the reconcile child's report")?;
    progress(format!(
        "reconcile: {size} clients: first pass {:.2} s, no-change pass {:.1} ms, peak RSS {:.0} MB",
        child.first_pass.as_secs_f64(),
        child.second_pass.as_secs_f64() * 1e3,
        child.peak_rss_kib as f64 * 1024.0 / 1e6
    ));
    Ok(Row {
        size,
        select,
        child,
    })
}

/// The adapter's defaults (design §7), on `url`.
fn settings(url: String) -> PostgresSettings {
    PostgresSettings {
        url,
        min_conns: 1,
        max_conns: 10,
        start_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30 * 60),
        lifetime_jitter: Duration::from_secs(30),
    }
}

/// The child: builds the real adapter, the fake runtime and the reconciler, runs a pass that
/// creates every pod and one that finds nothing to do, and prints what it measured.
pub async fn child(args: ChildArgs) -> anyhow::Result<()> {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let repo = Arc::new(
        PostgresRepository::connect(&settings(args.url), &log)
            .await
            .context("connecting the PostgreSQL repository")?,
    );
    let runtime = Arc::new(FakePodRuntime::new());
    let rss_after_connect_kib = rss_kib("VmRSS:");
    let reconciler = Reconciler::new(
        repo.clone(),
        runtime.clone(),
        Arc::new(LocalPassLock::new()),
        CONCURRENCY,
        &log,
    );
    let first = reconciler.run_pass(Trigger::Request).await;
    if first.outcome != PassOutcome::Completed {
        bail!("the first pass did not complete: {:?}", first.outcome);
    }
    let second = reconciler.run_pass(Trigger::Request).await;
    if second.outcome != PassOutcome::Completed {
        bail!("the no-change pass did not complete: {:?}", second.outcome);
    }
    let clock = Instant::now();
    let clients = repo.desired_state().await.context("desired_state alone")?;
    let desired_state_alone = clock.elapsed();
    if clients.len() as u64 != args.size {
        bail!(
            "desired_state returned {} clients, expected {}",
            clients.len(),
            args.size
        );
    }
    drop(clients);
    let clock = Instant::now();
    let pods = alsy_app::PodRuntime::list(runtime.as_ref())
        .await
        .context("listing fake pods")?;
    let runtime_list_alone = clock.elapsed();
    drop(pods);
    let acknowledge_each = time_acknowledge(repo.as_ref(), args.size).await?;
    if args.extra_passes > 0 {
        eprintln!(
            "reconcile-child {}: {} extra no-change passes start",
            std::process::id(),
            args.extra_passes
        );
    }
    for _ in 0..args.extra_passes {
        reconciler.run_pass(Trigger::Request).await;
    }
    let report = ChildReport {
        first_pass: first.duration,
        first_created: first.created.len(),
        first_failed: first.failed.len(),
        second_pass: second.duration,
        second_actions: second.created.len()
            + second.deleted.len()
            + second.restarted.len()
            + second.failed.len(),
        desired_state_alone,
        runtime_list_alone,
        acknowledge_each,
        rss_after_connect_kib,
        peak_rss_kib: rss_kib("VmHWM:"),
    };
    println!(
        "{}",
        serde_json::to_string(&report).context("printing the report")?
    );
    Ok(())
}

/// The mean time of one `acknowledge` call, as the reconciler makes them (one after the other),
/// over up to 1,000 clients; each sets `spawned_at` again, which changes nothing the bench reads.
async fn time_acknowledge(repo: &dyn ClientRepository, size: u64) -> anyhow::Result<Duration> {
    let samples = size.min(1000);
    let at = std::time::SystemTime::now();
    let clock = Instant::now();
    for id in 1..=samples as i64 {
        let client_id = alsy_domain::ClientId::new(id).context("client ids start at 1")?;
        let ack = alsy_domain::Acknowledgement {
            client_id,
            restart_seen: None,
        };
        repo.acknowledge(ack, at)
            .await
            .context("acknowledge alone")?;
    }
    Ok(clock.elapsed() / samples.max(1) as u32)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn render(rows: &[Row]) -> String {
    let mut table = Table::new(&[
        "clients",
        "pods",
        "first pass s",
        "first pass µs/client",
        "no-change pass ms",
        "no-change µs/client",
        "raw SELECT (psql) ms",
        "no-change / SELECT",
        "desired_state() alone ms",
        "fake list() ms",
        "acknowledge() ms each",
        "peak RSS MB",
    ]);
    for r in rows {
        let c = &r.child;
        table.row(vec![
            r.size.to_string(),
            format!("{} created, {} failed", c.first_created, c.first_failed),
            format!("{:.2}", c.first_pass.as_secs_f64()),
            format!("{:.1}", c.first_pass.as_secs_f64() * 1e6 / r.size as f64),
            ms(c.second_pass.as_secs_f64() * 1e3),
            format!("{:.1}", c.second_pass.as_secs_f64() * 1e6 / r.size as f64),
            ms(r.select.as_secs_f64() * 1e3),
            format!(
                "{:.2}",
                c.second_pass.as_secs_f64() / r.select.as_secs_f64()
            ),
            ms(c.desired_state_alone.as_secs_f64() * 1e3),
            ms(c.runtime_list_alone.as_secs_f64() * 1e3),
            format!("{:.3}", c.acknowledge_each.as_secs_f64() * 1e3),
            format!("{:.0}", c.peak_rss_kib as f64 * 1024.0 / 1e6),
        ]);
    }
    let mut checks = Table::new(&["target at the largest size", "measured", "verdict"]);
    if let Some(r) = rows.iter().max_by_key(|r| r.size) {
        let c = &r.child;
        let ratio = c.second_pass.as_secs_f64() / r.select.as_secs_f64();
        let rss_mb = c.peak_rss_kib as f64 * 1024.0 / 1e6;
        checks.row(vec![
            format!("{} clients: no-change pass ≤ 3× raw SELECT", r.size),
            format!("{ratio:.2}×"),
            verdict(ratio <= 3.0).into(),
        ]);
        checks.row(vec![
            format!("{} clients: first pass ≤ 5 s", r.size),
            format!("{:.2} s", c.first_pass.as_secs_f64()),
            verdict(c.first_pass <= Duration::from_secs(5)).into(),
        ]);
        checks.row(vec![
            format!("{} clients: peak RSS ≤ 300 MB", r.size),
            format!("{rss_mb:.0} MB"),
            verdict(rss_mb <= 300.0).into(),
        ]);
        checks.row(vec![
            format!("{} clients: no-change pass does nothing", r.size),
            format!("{} actions", c.second_actions),
            verdict(c.second_actions == 0).into(),
        ]);
    }
    format!(
        "## 2. Reconciliation at scale\n\n\
         Fake runtime, PostgreSQL storage (a fresh database per size, clients seeded with SQL after the migrations, \
         all three algorithms on: 3 pods per client), the real `PostgresRepository` with the default pool (1–10 \
         connections), `LocalPassLock`, `Reconciler` at concurrency {CONCURRENCY}, logs discarded. Each size runs in \
         its own process: peak RSS is that process's VmHWM. \"raw SELECT\" is the adapter's desired-state query run \
         through psql with `\\timing` and its rows sent to /dev/null (median of the runs); \"desired_state() alone\" \
         is the adapter's call timed in the child after the passes. Per-client columns stay flat when growth is \
         linear.\n\n{}\n{}",
        table.markdown(),
        checks.markdown()
    )
}
