//! Bench 4, the soak: the original assignment's load (100 status writes/s and 100 reads/s) for
//! minutes against the release binary on PostgreSQL with the fake runtime, passes every 10 s plus
//! nudges churning pods; sampled every 10 s; checked at the end for lost writes, latency per
//! window, growth of memory, file descriptors and threads, and observed = desired; drawn as SVG.

mod chart;
mod probe;
mod traffic;
mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;

use crate::cpu::Niceness;
use crate::database::{BenchDatabase, PgServer};
use crate::process::{AlsyProcess, load_client, postgres_fake_env};
use crate::{Options, progress};
use probe::{Probe, Sample};
use traffic::{Traffic, TrafficSpec};

/// Width of a sample window.
const WINDOW: Duration = Duration::from_secs(10);
/// Every request's bound; a request that takes longer counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The p99 every window must meet.
const P99_TARGET_MS: f64 = 20.0;

/// The soak's own knobs (the PostgreSQL and alsy binary options are shared with the other benches).
#[derive(Args, Clone)]
pub struct SoakArgs {
    /// Length of the load in minutes (fractions allowed for a quick look).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Clients seeded, each with random switches.
    #[arg(long, default_value_t = 10_000)]
    pub clients: u64,
    /// Status writes per second, and as many reads.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Writer tasks; each owns an equal share of the clients.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Where the SVG charts are written.
    #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
    pub charts: PathBuf,
}

/// One window: the load due in it and the sample taken at its end.
pub struct Row {
    /// End of the window, minutes since the load started.
    pub minute: f64,
    /// Length of the window, seconds (the last one may be short).
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub sample: Sample,
}

impl Row {
    /// Open fds other than TCP connections: the connections follow the load generator (a slow
    /// window makes it open more keep-alive connections, which alsy closes after its idle timeout).
    pub fn other_fds(&self) -> u64 {
        let s = &self.sample;
        s.fds.saturating_sub(s.http_sockets + s.db_sockets)
    }
}

/// The state after the load and a final `POST /api/v1/sync`.
pub struct Final {
    /// The final pass's `outcome`.
    pub pass_outcome: String,
    pub observed: usize,
    pub desired: usize,
    /// Desired pods the runtime does not have, and pods it has that nobody asked for.
    pub missing: usize,
    pub extra: usize,
    /// Clients whose stored switches are not what the 2xx writes left.
    pub lost: Vec<traffic::LostWrite>,
    /// Clients the ledger checked.
    pub checked: usize,
    /// A sample after the final pass.
    pub sample: Sample,
}

/// What a soak gives back: its section of `RESULTS.md`, and the pass/fail lines to print last.
pub struct Soaked {
    pub section: String,
    pub checks: Vec<String>,
}

/// Runs the soak in a fresh database, and drops the database whatever happened.
pub async fn run(server: &PgServer, options: &Options, args: &SoakArgs) -> anyhow::Result<Soaked> {
    if !(args.minutes > 0.0 && args.rate > 0.0 && args.writers > 0) {
        bail!("--minutes, --rate and --writers must be positive");
    }
    let db = BenchDatabase::create(server, "soak").await?;
    progress(format!("soak: database {} created", db.name()));
    let result = soak(&db, options, args).await;
    db.drop_now().await?;
    progress("soak: database dropped");
    result
}

async fn soak(db: &BenchDatabase, options: &Options, args: &SoakArgs) -> anyhow::Result<Soaked> {
    let http = load_client(64, REQUEST_TIMEOUT)?;
    let mut env = postgres_fake_env(db.url(), options.max_conns);
    env.extend([
        ("ALSY__SYNC__INTERVAL", "10s".to_string()),
        // Nudges keep their default debounce; the access log and pass lines are written (info).
        ("ALSY__LOG__LEVEL", "info".to_string()),
        ("ALSY__LOG__FORMAT", "json".to_string()),
    ]);
    progress(format!("soak: starting {}", options.alsy_bin.display()));
    let alsy = AlsyProcess::start(&options.alsy_bin, &env, &http).await?;
    let priority = Niceness::take(alsy.pid()).describe();
    let outcome = drive(db, args, &http, &alsy).await;
    if outcome.is_err() {
        eprintln!("alsy's last output:\n{}", alsy.output());
    }
    alsy.stop().await?;
    let (traffic, samples, last) = outcome?;
    let rows = rows(&traffic, &samples);
    let charts = chart::draw_all(&args.charts, &rows, P99_TARGET_MS)?;
    progress(format!(
        "soak: charts written to {}: {}",
        args.charts.display(),
        charts.join(", ")
    ));
    let checks = verdict::checks(&rows, &traffic, &last, P99_TARGET_MS);
    Ok(Soaked {
        section: verdict::markdown(args, &rows, &traffic, &last, &checks, &charts, &priority),
        checks: checks.iter().map(verdict::Check::line).collect(),
    })
}

async fn drive(
    db: &BenchDatabase,
    args: &SoakArgs,
    http: &reqwest::Client,
    alsy: &AlsyProcess,
) -> anyhow::Result<(Traffic, Vec<Sample>, Final)> {
    progress(format!(
        "soak: seeding {} clients with random switches",
        args.clients
    ));
    db.seed(args.clients, false).await?;
    let sql = db.connect().await?;
    sql.batch_execute(
        "UPDATE algorithm_status SET switches = jsonb_build_object(\
         'VWAP', random() < 0.5, 'TWAP', random() < 0.5, 'HFT', random() < 0.5)",
    )
    .await
    .context("randomising the switches")?;
    sql.batch_execute("VACUUM ANALYZE algorithm_status")
        .await
        .context("analysing the switches")?;
    let seeded = probe::stored_switches(&sql).await?;
    // The seeded pods exist before the load starts: the soak watches churn, not a first fill.
    let first = sync_now(http, &alsy.base).await?;
    progress(format!("soak: first pass {first}"));
    let http_port = alsy
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("alsy's base URL has no port")?;
    let mut probe = Probe::new(
        alsy.pid(),
        (http_port, db.port()),
        alsy.base.clone(),
        http.clone(),
        sql,
        alsy.log_path().to_path_buf(),
    );
    probe.skip_log()?;
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let spec = TrafficSpec {
        base: alsy.base.clone(),
        write_rate: args.rate,
        read_rate: args.rate,
        writers: args.writers,
        duration,
        window: WINDOW,
        timeout: REQUEST_TIMEOUT,
    };
    progress(format!(
        "soak: {:.0} writes/s and {:.0} reads/s at a fixed rate for {:?}",
        args.rate, args.rate, duration
    ));
    probe.restart_cpu();
    let start = Instant::now();
    let load = {
        let http = http.clone();
        let seeded = seeded.clone();
        tokio::spawn(async move { traffic::run(&http, &spec, &seeded, start).await })
    };
    let windows = (duration.as_secs_f64() / WINDOW.as_secs_f64()).ceil() as u32;
    let mut samples = Vec::new();
    for k in 1..=windows {
        let at = (WINDOW * k).min(duration);
        tokio::time::sleep_until((start + at).into()).await;
        let sample = probe.sample(at.as_secs_f64()).await?;
        progress(format!(
            "soak: {:>4.0}s rss {:.1} MiB, fds {} ({} http, {} db), threads {}, db conns {}, cpu {:.0} %, pods {}/{} \
             observed/desired, {} passes (longest {:.1} ms, +{} −{}), load {:.2}",
            sample.at_s,
            sample.rss_mib,
            sample.fds,
            sample.http_sockets,
            sample.db_sockets,
            sample.threads,
            sample.pool_connections,
            sample.cpu_percent,
            sample.observed_pods,
            sample.desired_pods,
            sample.passes.count,
            sample.passes.max_ms,
            sample.passes.created,
            sample.passes.deleted,
            sample.load1,
        ));
        samples.push(sample);
    }
    let traffic = load.await.context("the load panicked")??;
    progress(format!(
        "soak: load done: {} writes ({} 2xx), {} reads; final pass",
        traffic.writes, traffic.writes_ok, traffic.reads
    ));
    let pass_outcome = sync_now(http, &alsy.base).await?;
    let stored = probe::stored_switches(probe.db()).await?;
    let desired = probe::desired_pods(&stored);
    let observed = probe.observed_pods().await?;
    let last = Final {
        pass_outcome,
        observed: observed.len(),
        desired: desired.len(),
        missing: desired.difference(&observed).count(),
        extra: observed.difference(&desired).count(),
        lost: traffic.ledger.lost(&stored),
        checked: traffic.ledger.len(),
        sample: probe.sample(start.elapsed().as_secs_f64()).await?,
    };
    Ok((traffic, samples, last))
}

/// `POST /api/v1/sync`: runs a pass now; returns its outcome and counts.
async fn sync_now(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let answer = http
        .post(format!("{base}/api/v1/sync"))
        .send()
        .await
        .context("POST /api/v1/sync")?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.context("reading the pass report")?;
    let report = &body["data"];
    let count = |key: &str| report[key].as_array().map(Vec::len).unwrap_or(0);
    let summary = format!(
        "{} in {} ms: {} created, {} deleted, {} failed",
        report["outcome"].as_str().unwrap_or("?"),
        report["duration_ms"],
        count("created"),
        count("deleted"),
        count("failed")
    );
    if !status.is_success() {
        bail!("POST /api/v1/sync answered {status}: {summary}");
    }
    Ok(summary)
}

/// Joins each window's load with the sample taken at its end.
fn rows(traffic: &Traffic, samples: &[Sample]) -> Vec<Row> {
    traffic
        .windows
        .iter()
        .zip(samples)
        .scan(0.0, |previous, (load, s)| {
            let seconds = s.at_s - *previous;
            *previous = s.at_s;
            Some((load, s, seconds))
        })
        .map(|(load, s, seconds)| Row {
            minute: s.at_s / 60.0,
            seconds,
            requests: load.requests,
            errors: load.errors(),
            p50_ms: load.latencies.quantile_ms(0.5),
            p99_ms: load.latencies.quantile_ms(0.99),
            max_ms: load.latencies.max_ms(),
            sample: s.clone(),
        })
        .collect()
}
