//! The API bench as an A/B: two alsy binaries (before and after a change) under the same
//! closed-loop loads, in the same run, interleaved round by round with the order alternating
//! (AB, BA, AB, …) so that the machine's noise and any drift hit both; the table gives every
//! round and the medians. No pgbench: only the two binaries are compared.

use std::path::PathBuf;

use clap::Args;

use crate::cpu::{CpuSnapshot, Niceness};
use crate::database::{BenchDatabase, PgServer};
use crate::load::{Mix, closed_loop};
use crate::report::{Table, rate, verdict};
use crate::{Options, api, progress};

/// How much lower the after binary's median throughput may be.
const ALLOWED_DROP: f64 = 0.05;
const MIXES: [Mix; 3] = [Mix::Write, Mix::Read, Mix::Mixed];

/// The A/B's own knobs; `--alsy-bin` is the after binary, and `--with-token` applies to it only
/// (`--before-with-token` to the before one).
#[derive(Args, Clone)]
pub struct AbArgs {
    /// The binary to compare against (before the change).
    #[arg(long)]
    pub before: PathBuf,
    /// What the before binary is, for the table (a commit, say).
    #[arg(long, default_value = "before")]
    pub before_label: String,
    /// What the after binary (`--alsy-bin`) is, for the table.
    #[arg(long, default_value = "after")]
    pub after_label: String,
    /// Give the before binary a tokens file and a bearer token too (it must know `alsy token`).
    #[arg(long)]
    pub before_with_token: bool,
    /// Rounds; each runs both binaries, the order alternating between rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Before,
    After,
}

/// One binary's run in one round: per load, req/s, CPU µs per request (alsy's, PostgreSQL's)
/// and errors.
struct Run {
    round: usize,
    side: Side,
    load1: f64,
    rps: [f64; 3],
    cpu_us: [f64; 3],
    pg_us: [f64; 3],
    errors: u64,
    priority: String,
}

/// Runs the rounds; returns the section for `RESULTS.md`.
pub async fn run(server: &PgServer, options: &Options, args: &AbArgs) -> anyhow::Result<String> {
    if args.rounds == 0 {
        anyhow::bail!("--rounds must be at least 1");
    }
    let mut runs = Vec::new();
    for round in 1..=args.rounds {
        let order = if round % 2 == 1 {
            [Side::Before, Side::After]
        } else {
            [Side::After, Side::Before]
        };
        for side in order {
            runs.push(one(server, options, args, round, side).await?);
        }
    }
    Ok(render(options, args, &runs))
}

async fn one(
    server: &PgServer,
    options: &Options,
    args: &AbArgs,
    round: usize,
    side: Side,
) -> anyhow::Result<Run> {
    let (binary, token, label) = match side {
        Side::Before => (&args.before, args.before_with_token, &args.before_label),
        Side::After => (&options.alsy_bin, options.with_token, &args.after_label),
    };
    progress(format!("api-ab: round {round}, {label}"));
    let db = BenchDatabase::create(server, "api_ab").await?;
    let outcome = async {
        let (http, alsy) = api::launch(&db, options, binary, token).await?;
        let measured = measure(options, &db, &http, &alsy, round, side).await;
        if measured.is_err() {
            eprintln!("alsy's last output:\n{}", alsy.output());
        }
        alsy.stop().await?;
        measured
    }
    .await;
    db.drop_now().await?;
    outcome
}

async fn measure(
    options: &Options,
    db: &BenchDatabase,
    http: &reqwest::Client,
    alsy: &crate::process::AlsyProcess,
    round: usize,
    side: Side,
) -> anyhow::Result<Run> {
    let spec = api::prepare(db, options, http, alsy).await?;
    let mut run = Run {
        round,
        side,
        load1: load_average(),
        rps: [0.0; 3],
        cpu_us: [0.0; 3],
        pg_us: [0.0; 3],
        errors: 0,
        priority: Niceness::take(alsy.pid()).describe(),
    };
    for (i, mix) in MIXES.into_iter().enumerate() {
        let before = CpuSnapshot::take(alsy.pid());
        let result = closed_loop(http, &spec, mix).await?;
        let cpu = CpuSnapshot::take(alsy.pid()).since(&before);
        run.rps[i] = result.rps();
        let per_request =
            |used: std::time::Duration| used.as_secs_f64() * 1e6 / result.requests.max(1) as f64;
        run.cpu_us[i] = per_request(cpu.alsy);
        run.pg_us[i] = per_request(cpu.postgres);
        run.errors += result.errors();
        progress(format!(
            "api-ab:   {}: {:.0} req/s, CPU/req {:.0} µs alsy, {:.0} µs PostgreSQL, {} errors{}",
            mix.label(),
            run.rps[i],
            run.cpu_us[i],
            run.pg_us[i],
            result.errors(),
            result
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ));
    }
    Ok(run)
}

/// The machine's 1-minute load average (0 if /proc cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn percent(change: f64) -> String {
    format!("{:+.1} %", change * 100.0)
}

fn render(options: &Options, args: &AbArgs, runs: &[Run]) -> String {
    let label = |side: Side| match side {
        Side::Before => args.before_label.as_str(),
        Side::After => args.after_label.as_str(),
    };
    let mut rounds = Table::new(&[
        "round",
        "binary",
        "load avg at start",
        "write req/s",
        "read req/s",
        "mixed req/s",
        "alsy CPU µs/req (write/read/mixed)",
        "PostgreSQL CPU µs/req (write/read/mixed)",
        "errors",
    ]);
    for r in runs {
        rounds.row(vec![
            r.round.to_string(),
            label(r.side).to_string(),
            format!("{:.2}", r.load1),
            rate(r.rps[0]),
            rate(r.rps[1]),
            rate(r.rps[2]),
            format!(
                "{:.0} / {:.0} / {:.0}",
                r.cpu_us[0], r.cpu_us[1], r.cpu_us[2]
            ),
            format!("{:.0} / {:.0} / {:.0}", r.pg_us[0], r.pg_us[1], r.pg_us[2]),
            r.errors.to_string(),
        ]);
    }
    let side = |s: Side| runs.iter().filter(move |r| r.side == s);
    let mut medians = Table::new(&[
        "load",
        "before req/s (median)",
        "after req/s (median)",
        "change of the medians",
        "median of the rounds' after/before",
        "alsy CPU µs/req before → after (medians)",
        "PostgreSQL CPU µs/req before → after (medians)",
        "target: ≤ 5 % lower",
    ]);
    for (i, mix) in MIXES.into_iter().enumerate() {
        let before = median(side(Side::Before).map(|r| r.rps[i]).collect());
        let after = median(side(Side::After).map(|r| r.rps[i]).collect());
        let paired = median(
            (1..=args.rounds)
                .filter_map(|round| {
                    let of = |s: Side| runs.iter().find(|r| r.round == round && r.side == s);
                    Some(of(Side::After)?.rps[i] / of(Side::Before)?.rps[i] - 1.0)
                })
                .collect(),
        );
        let change = after / before - 1.0;
        medians.row(vec![
            mix.label().to_string(),
            rate(before),
            rate(after),
            percent(change),
            percent(paired),
            format!(
                "{:.0} → {:.0}",
                median(side(Side::Before).map(|r| r.cpu_us[i]).collect()),
                median(side(Side::After).map(|r| r.cpu_us[i]).collect())
            ),
            format!(
                "{:.0} → {:.0}",
                median(side(Side::Before).map(|r| r.pg_us[i]).collect()),
                median(side(Side::After).map(|r| r.pg_us[i]).collect())
            ),
            verdict(change >= -ALLOWED_DROP).to_string(),
        ]);
    }
    format!(
        "## 1b. HTTP API: before and after a change (A/B)\n\n\
         `cargo run --release -p alsy-bench -- api-ab --before {} --before-label '{}' --after-label '{}'{}{} --rounds {}`\n\n\
         Two alsy binaries under the API bench's closed-loop loads ({} keep-alive workers, {:?} per load after a \
         {:?} mixed warm-up, {} clients seeded with SQL, fake runtime, no reconcile pass during the load, log level \
         warn), each run on a fresh database, interleaved in one run: round 1 runs before then after, round 2 after \
         then before, and so on, so that the machine's noise and drift reach both. `{}` is `--alsy-bin`{}{}. \
         CPU is user + system time from /proc per answered request: alsy's process, and all of PostgreSQL's (backends, background workers and the exited backends the postmaster reaped). Scheduling priority: {}.\n\n{}\n### Medians\n\n{}",
        args.before.display(),
        args.before_label,
        args.after_label,
        if args.before_with_token {
            " --before-with-token"
        } else {
            ""
        },
        if options.with_token {
            " --with-token"
        } else {
            ""
        },
        args.rounds,
        options.concurrency,
        options.duration,
        options.warmup,
        options.api_clients,
        args.after_label,
        if options.with_token {
            ", run with a tokens file and a bearer token on every request"
        } else {
            ""
        },
        if args.before_with_token {
            "; the before binary too"
        } else {
            ""
        },
        runs.first().map_or("unknown", |r| r.priority.as_str()),
        rounds.markdown(),
        medians.markdown(),
    )
}
