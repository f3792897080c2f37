//! Drives pgbench with custom scripts (one per alsy endpoint) and reads its per-transaction log,
//! so PostgreSQL's own ceiling is reported with the same statistics as alsy's.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;

use crate::database::BenchDatabase;
use crate::load::Latencies;

/// One pgbench script run.
pub struct PgbenchRun {
    /// Transactions per second, excluding connection set-up.
    pub tps: f64,
    /// Transactions completed.
    pub transactions: u64,
    /// Failed transactions pgbench reported.
    pub failed: u64,
    /// Latency of each transaction, from pgbench's `-l` log.
    pub latencies: Latencies,
}

/// How hard pgbench pushes.
pub struct PgbenchLoad {
    /// `-c`: sessions.
    pub clients: usize,
    /// `-j`: pgbench threads.
    pub threads: usize,
    /// `-T`.
    pub duration: Duration,
}

/// Runs `scripts` (pgbench's script language, each picked with equal weight) in prepared mode
/// against `db`; each script starts with `\set id random(first, last)` over the seeded ids.
pub fn run(
    db: &BenchDatabase,
    name: &str,
    scripts: &[(&str, &str)],
    (first, last): (i64, i64),
    load: &PgbenchLoad,
) -> anyhow::Result<PgbenchRun> {
    let dir = scratch_dir(name)?;
    let mut files = Vec::new();
    for (script_name, body) in scripts {
        let path = dir.join(format!("{script_name}.sql"));
        let text = format!("\\set id random({first}, {last})\n{}\n", body.trim());
        std::fs::write(&path, text).context("writing a pgbench script")?;
        files.push("-f".to_string());
        files.push(format!("{}@1", path.display()));
    }
    let prefix = dir.join("log");
    let mut args = db.psql_args();
    args.extend([
        "-n".into(), // no vacuum of pgbench's own tables: there are none
        "-M".into(),
        "prepared".into(), // diesel-async caches prepared statements too
        "-c".into(),
        load.clients.to_string(),
        "-j".into(),
        load.threads.to_string(),
        "-T".into(),
        load.duration.as_secs().max(1).to_string(),
        "-l".into(),
        "--log-prefix".into(),
        prefix.display().to_string(),
    ]);
    args.extend(files);
    let out = Command::new("pgbench")
        .args(&args)
        .output()
        .context("running pgbench (is postgresql-client installed?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench {name} failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .context("pgbench printed no `tps = ` line")?;
    let transactions =
        number_after(&stdout, "number of transactions actually processed:").unwrap_or(0);
    let failed = number_after(&stdout, "number of failed transactions:").unwrap_or(0);
    let latencies = read_logs(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(PgbenchRun {
        tps,
        transactions,
        failed,
        latencies,
    })
}

fn number_after(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|l| l.split_whitespace().next()?.split('/').next()?.parse().ok())
}

/// Every line of pgbench's `-l` log is `client_id transaction_no time script_no epoch epoch_us`,
/// `time` being the transaction's latency in microseconds.
fn read_logs(dir: &PathBuf) -> anyhow::Result<Latencies> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .context("creating a latency histogram")?;
    for entry in std::fs::read_dir(dir).context("listing pgbench's logs")? {
        let path = entry.context("listing pgbench's logs")?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("log"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                histogram.saturating_record(us.max(1));
            }
        }
    }
    Ok(Latencies(histogram))
}

fn scratch_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("alsy-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
