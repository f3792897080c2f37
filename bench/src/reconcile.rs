//! Bench 2: reconcile passes at several sizes. Each size gets a fresh database seeded with SQL,
//! and runs in a child process so that its peak RSS (VmHWM) is its own.

use std::time::Duration;

use anyhow::{Context, bail};

use alsy_postgres::PostgresSettings;

use crate::database::{BenchDatabase, PgServer};
use crate::reconcile_child::{CONCURRENCY, ChildReport};
use crate::report::{Table, ms, verdict};
use crate::{Options, progress, sql};

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
    // After the child: the table is in the state its no-change pass read (see reconcile_child).
    let mut times = tokio::task::block_in_place(|| {
        db.psql_timing(sql::DESIRED_STATE, options.select_runs.max(1))
    })?;
    times.sort();
    let select = times[times.len() / 2];
    progress(format!(
        "reconcile: {size} clients: raw SELECT via psql, median of {}: {:.1} ms",
        times.len(),
        select.as_secs_f64() * 1e3
    ));
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

/// The adapter's defaults, on `url`.
pub fn settings(url: String) -> PostgresSettings {
    PostgresSettings {
        url,
        ..PostgresSettings::default()
    }
}

fn render(rows: &[Row]) -> String {
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    let per_client = |d: Duration, size: u64| format!("{:.1}", d.as_secs_f64() * 1e6 / size as f64);
    let mut table = Table::new(&[
        "clients",
        "pods created",
        "first pass s",
        "first pass µs/client",
        "no-change pass ms",
        "no-change µs/client",
        "raw SELECT (psql) ms",
        "no-change / SELECT",
        "peak RSS MB",
        "peak RSS KB/client",
    ]);
    let mut split = Table::new(&[
        "clients",
        "desired_state() ms",
        "from_clients() ms",
        "fake list() ms",
        "plan() ms",
        "sum ms",
        "no-change pass ms",
    ]);
    let mut first = Table::new(&[
        "clients",
        "first pass s",
        "desired_state() s",
        "acknowledge_all() calls (batches of 10,000)",
        "acknowledge_all() s, the calls summed",
        "ms per batch",
        "acknowledging s, wall (first call's start to last call's end)",
        "rest (plan, pod creates, report) s",
    ]);
    for r in rows {
        let c = &r.child;
        let s = &c.split;
        table.row(vec![
            r.size.to_string(),
            format!("{} ({} failed)", c.first_created, c.first_failed),
            format!("{:.2}", c.first_pass.as_secs_f64()),
            per_client(c.first_pass, r.size),
            ms(c.second_pass.as_secs_f64() * 1e3),
            per_client(c.second_pass, r.size),
            ms(r.select.as_secs_f64() * 1e3),
            format!(
                "{:.2}",
                c.second_pass.as_secs_f64() / r.select.as_secs_f64()
            ),
            format!("{:.0}", mb(c.peak_rss_kib)),
            format!("{:.2}", mb(c.peak_rss_kib) * 1000.0 / r.size as f64),
        ]);
        let sum = s.desired_state + s.from_clients + s.list + s.plan;
        split.row(vec![
            r.size.to_string(),
            ms(s.desired_state.as_secs_f64() * 1e3),
            ms(s.from_clients.as_secs_f64() * 1e3),
            ms(s.list.as_secs_f64() * 1e3),
            ms(s.plan.as_secs_f64() * 1e3),
            ms(sum.as_secs_f64() * 1e3),
            ms(c.second_pass.as_secs_f64() * 1e3),
        ]);
        let f = &c.first_spent;
        first.row(vec![
            r.size.to_string(),
            format!("{:.2}", c.first_pass.as_secs_f64()),
            format!("{:.3}", f.desired_state.as_secs_f64()),
            f.acknowledgements.to_string(),
            format!("{:.2}", f.acknowledge.as_secs_f64()),
            format!(
                "{:.3}",
                f.acknowledge.as_secs_f64() * 1e3 / f.acknowledgements.max(1) as f64
            ),
            format!("{:.2}", f.acknowledge_span.as_secs_f64()),
            format!(
                "{:.2}",
                c.first_pass
                    .saturating_sub(f.desired_state + f.acknowledge_span)
                    .as_secs_f64()
            ),
        ]);
    }
    let mut checks = Table::new(&["target at the largest size", "measured", "verdict"]);
    if let Some(r) = rows.iter().max_by_key(|r| r.size) {
        let c = &r.child;
        let ratio = c.second_pass.as_secs_f64() / r.select.as_secs_f64();
        let rss = mb(c.peak_rss_kib);
        let n = r.size;
        checks.row(vec![
            format!("{n} clients: no-change pass ≤ 2× raw SELECT"),
            format!("{ratio:.2}×"),
            verdict(ratio <= 2.0).into(),
        ]);
        checks.row(vec![
            format!("{n} clients: first pass ≤ 5 s"),
            format!("{:.2} s", c.first_pass.as_secs_f64()),
            verdict(c.first_pass <= Duration::from_secs(5)).into(),
        ]);
        checks.row(vec![
            format!("{n} clients: peak RSS ≤ 300 MB"),
            format!("{rss:.0} MB"),
            verdict(rss <= 300.0).into(),
        ]);
        checks.row(vec![
            format!("{n} clients: the second pass finds nothing to do"),
            format!("{} actions", c.second_actions),
            verdict(c.second_actions == 0).into(),
        ]);
    }
    format!(
        "## 2. Reconciliation at scale\n\n\
         Fake runtime, PostgreSQL storage (a fresh database per size, clients seeded with SQL after the \
         migrations, all three algorithms on: 3 pods per client), the real `PostgresRepository` with the \
         default pool (1–10 connections), `LocalPassLock`, `Reconciler` at concurrency {CONCURRENCY}, logs \
         discarded. Each size runs in its own process: peak RSS is that process's VmHWM (the fake runtime's \
         pods are in it too). \"raw SELECT\" is the adapter's desired-state query through psql with \
         `\\timing`, rows to /dev/null, median of the runs. Per-client columns stay flat when growth is \
         linear.\n\n{}\n### Where the time goes\n\nThe first pass, split by timing the repository's calls \
         (the reconciler acknowledges two batches at a time, so the calls' sum is more than the wall time \
         they take; \"rest\" is the first pass less `desired_state()` and the acknowledging's wall time):\n\n{}\n\
         Each step of a no-change pass, timed alone after the passes:\n\n{}\n### Targets\n\n{}",
        table.markdown(),
        first.markdown(),
        split.markdown(),
        checks.markdown()
    )
}
