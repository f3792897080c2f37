//! Bench 1: alsy's HTTP API on PostgreSQL (release binary as a subprocess, fake runtime, no
//! reconciliation during the load) against pgbench running the statements each endpoint runs.

use std::time::Duration;

use anyhow::Context;

use crate::cpu::CpuSnapshot;
use crate::database::{BenchDatabase, PgServer};
use crate::load::{LoadResult, LoadSpec, Mix, closed_loop};
use crate::pgbench::{PgbenchLoad, PgbenchRun};
use crate::process::{AlsyProcess, postgres_fake_env};
use crate::report::{Table, ms, rate, verdict};
use crate::{Options, pgbench, progress, sql};

/// What the original assignment asked for: requests per second of each kind, and the latency.
const REQUIRED_RPS_PER_KIND: f64 = 100.0;
const REQUIRED_LATENCY_MS: f64 = 200.0;

/// Runs the API bench in a fresh database, and drops the database whatever happened.
pub async fn run(server: &PgServer, options: &Options) -> anyhow::Result<String> {
    let db = BenchDatabase::create(server, "api").await?;
    progress(format!("api: database {} created", db.name()));
    let result = measure(&db, options).await;
    db.drop_now().await?;
    progress("api: database dropped");
    result
}

struct Measured {
    mix: Mix,
    alsy: LoadResult,
    alsy_cpu: CpuSnapshot,
    pgbench: PgbenchRun,
    pgbench_cpu: CpuSnapshot,
}

/// Mints a write token with the binary under test and writes its tokens file; returns the
/// token and the file.
fn mint_token(alsy: &std::path::Path) -> anyhow::Result<(String, std::path::PathBuf)> {
    let out = std::process::Command::new(alsy)
        .args(["token", "bench", "write"])
        .output()
        .with_context(|| format!("running {} token", alsy.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("`alsy token` printed no {prefix:?} line: {text}"))
    };
    let (token, line) = (field("token:")?, field("line:")?);
    let file = std::env::temp_dir().join(format!("alsy-bench-tokens-{}", std::process::id()));
    std::fs::write(&file, format!("{line}\n")).context("writing the tokens file")?;
    Ok((token, file))
}

async fn measure(db: &BenchDatabase, options: &Options) -> anyhow::Result<String> {
    let (http, alsy) = launch(db, options, &options.alsy_bin, options.with_token).await?;
    let outcome = load_all(db, options, &http, &alsy).await;
    let peak_rss = alsy.peak_rss_mib();
    if outcome.is_err() {
        eprintln!("alsy's last output:\n{}", alsy.output());
    }
    alsy.stop().await?;
    let (measured, seeded) = outcome?;
    Ok(render(&measured, options, seeded, peak_rss))
}

/// Starts `binary` on database `db` as the API bench runs it (fake runtime, no reconcile pass
/// during the load, log level warn), with a tokens file when `with_token`; returns it and an HTTP
/// client that sends the token with every request.
pub async fn launch(
    db: &BenchDatabase,
    options: &Options,
    binary: &std::path::Path,
    with_token: bool,
) -> anyhow::Result<(reqwest::Client, AlsyProcess)> {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut env = postgres_fake_env(db.url(), options.max_conns);
    env.extend([
        // No reconcile pass competes with the load: no nudges, and the interval outlasts the run.
        ("ALSY__SYNC__DEBOUNCE", "0".to_string()),
        ("ALSY__SYNC__INTERVAL", "24h".to_string()),
        ("ALSY__LOG__LEVEL", "warn".to_string()),
    ]);
    if with_token {
        let (token, file) = mint_token(binary)?;
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the minted token is not a header value")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
        env.push(("ALSY__AUTH__TOKENS_FILE", file.display().to_string()));
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.concurrency)
        .timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    progress(format!("api: starting {}", binary.display()));
    let alsy = AlsyProcess::start(binary, &env, &http).await?;
    Ok((http, alsy))
}

/// Seeds the API bench's clients and runs the unmeasured warm-up; returns the load to measure.
pub async fn prepare(
    db: &BenchDatabase,
    options: &Options,
    http: &reqwest::Client,
    alsy: &AlsyProcess,
) -> anyhow::Result<LoadSpec> {
    // alsy ran its migrations at start-up; the clients go in with two set-based INSERTs.
    progress(format!(
        "api: seeding {} clients with SQL",
        options.api_clients
    ));
    let (first, last) = db.seed(options.api_clients, false).await?;
    let mut spec = LoadSpec {
        base: alsy.base.clone(),
        ids: first..=last,
        concurrency: options.concurrency,
        duration: options.warmup,
    };
    progress(format!("api: warm-up, {:?} of mixed load", options.warmup));
    let warmup = closed_loop(http, &spec, Mix::Mixed).await?;
    if warmup.requests == 0 || warmup.errors() == warmup.requests {
        anyhow::bail!(
            "every warm-up request failed: {}",
            warmup.first_error.unwrap_or_default()
        );
    }
    spec.duration = options.duration;
    Ok(spec)
}

async fn load_all(
    db: &BenchDatabase,
    options: &Options,
    http: &reqwest::Client,
    alsy: &AlsyProcess,
) -> anyhow::Result<(Vec<Measured>, u64)> {
    let spec = prepare(db, options, http, alsy).await?;
    let (first, last) = (*spec.ids.start(), *spec.ids.end());
    let pg_load = PgbenchLoad {
        clients: options.concurrency,
        threads: 2,
        duration: options.duration,
    };
    let mut measured = Vec::new();
    for mix in [Mix::Write, Mix::Read, Mix::Mixed] {
        progress(format!(
            "api: alsy {}, {:?} at concurrency {}",
            mix.label(),
            options.duration,
            options.concurrency
        ));
        let cpu_before = CpuSnapshot::take(alsy.pid());
        let result = closed_loop(http, &spec, mix).await?;
        let alsy_cpu = CpuSnapshot::take(alsy.pid()).since(&cpu_before);
        progress(format!(
            "api:   {:.0} req/s, p99 {:.2} ms, {} errors{}",
            result.rps(),
            result.latencies.quantile_ms(0.99),
            result.errors(),
            result
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ));
        progress(format!("api: pgbench for {}", mix.label()));
        let script = match mix {
            Mix::Write => vec![("write", sql::PGBENCH_WRITE)],
            Mix::Read => vec![("read", sql::PGBENCH_READ)],
            Mix::Mixed => vec![("write", sql::PGBENCH_WRITE), ("read", sql::PGBENCH_READ)],
        };
        let name = match mix {
            Mix::Write => "write",
            Mix::Read => "read",
            Mix::Mixed => "mixed",
        };
        let cpu_before = CpuSnapshot::take(alsy.pid());
        let pg = tokio::task::block_in_place(|| {
            pgbench::run(db, name, &script, (first, last), &pg_load)
        })?;
        let pgbench_cpu = CpuSnapshot::take(alsy.pid()).since(&cpu_before);
        progress(format!(
            "api:   pgbench {:.0} tps, p99 {:.2} ms",
            pg.tps,
            pg.latencies.quantile_ms(0.99)
        ));
        measured.push(Measured {
            mix,
            alsy: result,
            alsy_cpu,
            pgbench: pg,
            pgbench_cpu,
        });
    }
    Ok((measured, options.api_clients))
}

fn render(measured: &[Measured], options: &Options, seeded: u64, peak_rss: f64) -> String {
    let mut table = Table::new(&[
        "load",
        "alsy req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "pgbench tps",
        "pgbench p50 ms",
        "pgbench p99 ms",
        "alsy/pgbench",
        "target",
    ]);
    for m in measured {
        let ratio = m.alsy.rps() / m.pgbench.tps;
        let target = match m.mix {
            Mix::Write => Some(0.6),
            Mix::Read => Some(0.5),
            Mix::Mixed => None,
        };
        table.row(vec![
            m.mix.label().to_string(),
            rate(m.alsy.rps()),
            ms(m.alsy.latencies.quantile_ms(0.5)),
            ms(m.alsy.latencies.quantile_ms(0.99)),
            ms(m.alsy.latencies.max_ms()),
            format!(
                "{} ({} non-2xx, {} transport)",
                m.alsy.errors(),
                m.alsy.non_2xx,
                m.alsy.transport_errors
            ),
            format!("{} ({} failed)", rate(m.pgbench.tps), m.pgbench.failed),
            ms(m.pgbench.latencies.quantile_ms(0.5)),
            ms(m.pgbench.latencies.quantile_ms(0.99)),
            format!("{ratio:.2}"),
            target
                .map(|t| format!("≥ {t}: {}", verdict(ratio >= t)))
                .unwrap_or_else(|| "—".into()),
        ]);
    }
    let mut cpu = Table::new(&[
        "load",
        "alsy",
        "PostgreSQL (serving alsy)",
        "load generator",
        "total per HTTP request",
        "PostgreSQL (serving pgbench)",
        "pgbench client",
        "total per pgbench transaction",
    ]);
    for m in measured {
        let per = |d: Duration, n: u64| format!("{:.0}", d.as_secs_f64() * 1e6 / n.max(1) as f64);
        let (a, p) = (&m.alsy_cpu, &m.pgbench_cpu);
        let (n, t) = (m.alsy.requests, m.pgbench.transactions);
        cpu.row(vec![
            m.mix.label().to_string(),
            per(a.alsy, n),
            per(a.postgres, n),
            per(a.bench, n),
            per(a.alsy + a.postgres + a.bench, n),
            per(p.postgres, t),
            per(p.children, t),
            per(p.postgres + p.children, t),
        ]);
    }
    let mut checks = Table::new(&["target", "measured", "verdict"]);
    for m in measured {
        let p99 = m.alsy.latencies.quantile_ms(0.99);
        checks.row(vec![
            format!("{}: p99 ≤ 20 ms", m.mix.label()),
            format!("{} ms", ms(p99)),
            verdict(p99 <= 20.0).into(),
        ]);
        checks.row(vec![
            format!("{}: zero errors", m.mix.label()),
            m.alsy.errors().to_string(),
            verdict(m.alsy.errors() == 0).into(),
        ]);
    }
    let mut headroom = Table::new(&["original requirement", "alsy measured", "headroom"]);
    for m in measured {
        let (required, what) = match m.mix {
            Mix::Write => (REQUIRED_RPS_PER_KIND, "100 writes/s at ≤ 200 ms"),
            Mix::Read => (REQUIRED_RPS_PER_KIND, "100 reads/s at ≤ 200 ms"),
            Mix::Mixed => (
                2.0 * REQUIRED_RPS_PER_KIND,
                "100 writes/s + 100 reads/s at ≤ 200 ms",
            ),
        };
        let max_ms = m.alsy.latencies.max_ms();
        headroom.row(vec![
            what.into(),
            format!("{} req/s, max {} ms", rate(m.alsy.rps()), ms(max_ms)),
            format!(
                "{:.1}× the rate; latency {}",
                m.alsy.rps() / required,
                if max_ms <= REQUIRED_LATENCY_MS {
                    "within 200 ms even at the max"
                } else {
                    "**over 200 ms at the max**"
                }
            ),
        ]);
    }
    format!(
        "## 1. HTTP API against pgbench\n\n\
         alsy release binary as a subprocess on 127.0.0.1, PostgreSQL storage (fresh database, {seeded} clients \
         seeded with SQL after alsy's start-up migrations, all algorithms off), fake runtime, \
         `ALSY__SYNC__DEBOUNCE=0` and `ALSY__SYNC__INTERVAL=24h` so that no reconcile pass competes with the load, \
         `ALSY__STORAGE__MAX_CONNS={}`, log level warn. Closed loop: {} keep-alive workers, {:?} per load after a \
         {:?} warm-up, ids uniform over all clients. pgbench: `-M prepared -c {} -j 2 -T {}` with the scripts in \
         `bench/src/sql.rs` (the statements the adapter runs per request). alsy, pgbench, PostgreSQL and the load \
         generator share the machine's cores. alsy peak RSS: {:.0} MiB.\n\n{}\n\
         ### CPU time per request, µs (user + system, from /proc)\n\n{}\n### Targets\n\n{}\n### Headroom over the original assignment\n\n{}",
        options
            .max_conns
            .map(|m| m.to_string())
            .unwrap_or_else(|| "default (10)".into()),
        options.concurrency,
        options.duration,
        options.warmup,
        options.concurrency,
        options.duration.as_secs(),
        peak_rss,
        table.markdown(),
        cpu.markdown(),
        checks.markdown(),
        headroom.markdown(),
    )
}
