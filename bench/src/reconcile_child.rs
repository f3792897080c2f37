//! The child process of the reconcile bench: one size, the real PostgreSQL adapter, the fake
//! runtime and the reconciler; times two passes and their parts, and prints a JSON report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use alsy_app::{ClientRepository, PassOutcome, PodRuntime, Reconciler, Trigger};
use alsy_domain::{Catalogue, DesiredState, plan};
use alsy_fake::{FakePodRuntime, LocalPassLock};
use alsy_postgres::PostgresRepository;

use crate::reconcile::settings;
use crate::timed::{Spent, Timed};

/// The pass concurrency alsy uses by default (`ALSY__SYNC__CONCURRENCY`).
pub const CONCURRENCY: usize = 16;

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

/// What a child measured.
#[derive(Serialize, Deserialize)]
pub struct ChildReport {
    /// Duration of the pass that creates every pod, as the reconciler reports it.
    pub first_pass: Duration,
    /// Pods it created.
    pub first_created: usize,
    /// Pod operations that failed in it.
    pub first_failed: usize,
    /// Duration of the pass that finds nothing to do.
    pub second_pass: Duration,
    /// Actions the no-change pass took (0 expected).
    pub second_actions: usize,
    /// The parts of a no-change pass, each timed alone afterwards.
    pub split: NoChangeSplit,
    /// Time the first pass spent in `desired_state` and in `acknowledge`.
    pub first_spent: Spent,
    /// Peak resident set size of the process (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

/// A no-change pass's parts, in the reconciler's order.
#[derive(Serialize, Deserialize)]
pub struct NoChangeSplit {
    /// `ClientRepository::desired_state`.
    pub desired_state: Duration,
    /// `DesiredState::from_clients`.
    pub from_clients: Duration,
    /// `PodRuntime::list` of the fake runtime.
    pub list: Duration,
    /// `alsy_domain::plan`.
    pub plan: Duration,
}

/// Runs the passes and prints the report on stdout.
pub async fn run(args: ChildArgs) -> anyhow::Result<()> {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let repo = Arc::new(Timed::new(
        PostgresRepository::connect(&settings(args.url.clone()), &log)
            .await
            .context("connecting the PostgreSQL repository")?,
    ));
    let runtime = Arc::new(FakePodRuntime::new());
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
    let first_created = first.created.len();
    let first_failed = first.failed.len();
    let first_pass = first.duration;
    let first_spent = repo.take();
    drop(first);
    // The first pass rewrote every row (`spawned_at`); autovacuum would clean up before the next
    // pass minutes later. The parent times the raw SELECT after this process, on the same state.
    vacuum(&args.url).await?;
    let second = reconciler.run_pass(Trigger::Request).await;
    if second.outcome != PassOutcome::Completed {
        bail!("the no-change pass did not complete: {:?}", second.outcome);
    }
    let split = split_no_change(repo.as_ref(), runtime.as_ref(), args.size).await?;
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
        first_pass,
        first_created,
        first_failed,
        second_pass: second.duration,
        second_actions: second.created.len()
            + second.deleted.len()
            + second.restarted.len()
            + second.failed.len(),
        split,
        first_spent,
        peak_rss_kib: rss_kib("VmHWM:"),
    };
    let json = serde_json::to_string(&report).context("printing the report")?;
    println!("{json}");
    Ok(())
}

/// Times each step of a no-change pass alone, in the reconciler's order.
async fn split_no_change(
    repo: &dyn ClientRepository,
    runtime: &dyn PodRuntime,
    size: u64,
) -> anyhow::Result<NoChangeSplit> {
    let clock = Instant::now();
    let clients = repo
        .desired_state()
        .await
        .context("desired_state alone")?
        .clients;
    let desired_state = clock.elapsed();
    if clients.len() as u64 != size {
        bail!(
            "desired_state returned {} clients, expected {size}",
            clients.len()
        );
    }
    let clock = Instant::now();
    let desired = DesiredState::from_clients(&clients, &Catalogue::default());
    let from_clients = clock.elapsed();
    drop(clients);
    let clock = Instant::now();
    let observed = runtime.list().await.context("listing fake pods")?;
    let list = clock.elapsed();
    let clock = Instant::now();
    let planned = plan(&desired, &observed);
    let plan = clock.elapsed();
    if !planned.is_empty() {
        bail!("the no-change plan has {} actions", planned.actions.len());
    }
    Ok(NoChangeSplit {
        desired_state,
        from_clients,
        list,
        plan,
    })
}

/// VACUUM ANALYZE both tables, as autovacuum would between passes minutes apart.
async fn vacuum(url: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to vacuum")?;
    tokio::spawn(connection);
    for table in ["clients", "algorithm_status"] {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .with_context(|| format!("vacuuming {table}"))?;
    }
    Ok(())
}

/// A size field of /proc/self/status, KiB.
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
