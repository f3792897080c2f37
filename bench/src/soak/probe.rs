//! What the soak samples every window besides the load itself: the alsy process from /proc
//! (RSS, open file descriptors, threads, CPU), the machine's load average, alsy's connections in
//! `pg_stat_activity`, the passes alsy logged (`pass finished` lines of its JSON log), and the
//! fake runtime's pods against the pods the database asks for.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::traffic::Switches;
use crate::cpu::CpuSnapshot;

/// One sample, taken at the end of a window.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_s: f64,
    /// alsy's resident set (VmRSS), MiB.
    pub rss_mib: f64,
    /// Entries of /proc/PID/fd.
    pub fds: u64,
    /// Of those, TCP connections accepted on alsy's HTTP port.
    pub http_sockets: u64,
    /// Of those, TCP connections to PostgreSQL.
    pub db_sockets: u64,
    /// `Threads` of /proc/PID/status.
    pub threads: u64,
    /// alsy's CPU use over the window, in % of one core.
    pub cpu_percent: f64,
    /// The 1-minute load average of the machine.
    pub load1: f64,
    /// Connections to the soak's database other than the bench's own.
    pub pool_connections: u64,
    /// Pods `GET /api/v1/pods` lists.
    pub observed_pods: usize,
    /// Pods the database asks for (one per switch that is on).
    pub desired_pods: usize,
    /// Passes that finished in the window.
    pub passes: PassStats,
    /// WARN, ERROR or CRITICAL lines alsy logged in the window.
    pub warnings: u64,
}

/// The `pass finished` lines of one window.
#[derive(Debug, Clone, Default)]
pub struct PassStats {
    pub count: u64,
    pub max_ms: f64,
    pub total_ms: f64,
    pub created: u64,
    pub deleted: u64,
    pub restarted: u64,
    pub failed: u64,
    /// Passes whose outcome was not `completed`.
    pub not_completed: u64,
}

impl PassStats {
    /// Mean pass duration, ms (0 without passes).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        }
    }
}

/// Takes the samples; keeps its place in alsy's log and its CPU counter between them.
pub struct Probe {
    pid: u32,
    http_port: u16,
    pg_port: u16,
    base: String,
    http: reqwest::Client,
    db: tokio_postgres::Client,
    log: PathBuf,
    log_offset: u64,
    partial: String,
    cpu: (std::time::Instant, Duration),
}

impl Probe {
    /// A probe of alsy `pid` serving `base`, whose output goes to `log`, on database `db`.
    pub fn new(
        pid: u32,
        (http_port, pg_port): (u16, u16),
        base: String,
        http: reqwest::Client,
        db: tokio_postgres::Client,
        log: PathBuf,
    ) -> Probe {
        Probe {
            pid,
            http_port,
            pg_port,
            base,
            http,
            db,
            log,
            log_offset: 0,
            partial: String::new(),
            cpu: (std::time::Instant::now(), CpuSnapshot::take(pid).alsy),
        }
    }

    /// Skips what alsy logged so far (start-up and the initial pass are not part of the soak).
    pub fn skip_log(&mut self) -> anyhow::Result<()> {
        self.read_new_log()?;
        Ok(())
    }

    /// Resets the CPU counter, so the first window's CPU starts with the load.
    pub fn restart_cpu(&mut self) {
        self.cpu = (std::time::Instant::now(), CpuSnapshot::take(self.pid).alsy);
    }

    /// One sample now.
    pub async fn sample(&mut self, at_s: f64) -> anyhow::Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading alsy's /proc status (has it exited?)")?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let sockets: Vec<u64> = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .context("listing alsy's file descriptors")?
            .map(|entry| {
                entry
                    .ok()
                    .and_then(|e| std::fs::read_link(e.path()).ok())
                    .and_then(|target| socket_inode(&target.to_string_lossy()))
                    .unwrap_or(0)
            })
            .collect();
        let fds = sockets.len() as u64;
        let (http_sockets, db_sockets) = self.connections(&sockets);
        let now = (std::time::Instant::now(), CpuSnapshot::take(self.pid).alsy);
        let cpu_percent = (now.1.saturating_sub(self.cpu.1)).as_secs_f64()
            / now.0.duration_since(self.cpu.0).as_secs_f64().max(1e-9)
            * 100.0;
        self.cpu = now;
        let load1 = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let pool_connections = self
            .db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .context("counting connections in pg_stat_activity")?
            .get::<_, i64>(0) as u64;
        let (passes, warnings) = self.read_new_log()?;
        Ok(Sample {
            at_s,
            rss_mib: field("VmRSS:") as f64 / 1024.0,
            fds,
            http_sockets,
            db_sockets,
            threads: field("Threads:"),
            cpu_percent,
            load1,
            pool_connections,
            observed_pods: self.observed_pods().await?.len(),
            desired_pods: desired_pods(&stored_switches(&self.db).await?).len(),
            passes,
            warnings,
        })
    }

    /// The bench's own connection to the soak's database.
    pub fn db(&self) -> &tokio_postgres::Client {
        &self.db
    }

    /// `(client id, algorithm)` of every pod `GET /api/v1/pods` lists.
    pub async fn observed_pods(&self) -> anyhow::Result<BTreeSet<(i64, String)>> {
        let answer = self
            .http
            .get(format!("{}/api/v1/pods", self.base))
            .send()
            .await
            .context("GET /api/v1/pods")?;
        if !answer.status().is_success() {
            bail!("GET /api/v1/pods answered {}", answer.status());
        }
        let body: serde_json::Value = answer.json().await.context("reading the pod list")?;
        let pods = body["data"]
            .as_array()
            .context("GET /api/v1/pods: `data` is not a list")?;
        pods.iter()
            .map(|pod| {
                let id = pod["client_id"].as_i64();
                let algorithm = pod["algorithm"].as_str();
                match (id, algorithm) {
                    (Some(id), Some(a)) => Ok((id, a.to_string())),
                    _ => bail!("a pod without client id or algorithm: {pod}"),
                }
            })
            .collect()
    }

    /// Counts alsy's TCP connections on its HTTP port and to PostgreSQL's, by matching the
    /// socket inodes of its fds (0 for other fds) with /proc/PID/net/tcp and tcp6.
    fn connections(&self, inodes: &[u64]) -> (u64, u64) {
        let mine: std::collections::HashSet<u64> =
            inodes.iter().copied().filter(|&i| i != 0).collect();
        let (mut http, mut db) = (0, 0);
        for table in ["tcp", "tcp6"] {
            let text = std::fs::read_to_string(format!("/proc/{}/net/{table}", self.pid))
                .unwrap_or_default();
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let port = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| u16::from_str_radix(p, 16).ok())
                };
                let inode = fields.get(9).and_then(|i| i.parse::<u64>().ok());
                // State 0A is LISTEN: the listening socket is not a connection.
                if !inode.is_some_and(|i| mine.contains(&i)) || fields.get(3) == Some(&"0A") {
                    continue;
                }
                if port(1) == Some(self.http_port) {
                    http += 1;
                } else if port(2) == Some(self.pg_port) {
                    db += 1;
                }
            }
        }
        (http, db)
    }

    /// Reads alsy's log from where the last call stopped: the `pass finished` lines and the
    /// count of WARN-or-worse lines.
    fn read_new_log(&mut self) -> anyhow::Result<(PassStats, u64)> {
        let mut file = std::fs::File::open(&self.log)
            .with_context(|| format!("opening alsy's log {}", self.log.display()))?;
        file.seek(SeekFrom::Start(self.log_offset))
            .context("seeking in alsy's log")?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).context("reading alsy's log")?;
        self.log_offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        // Keep a line alsy has not finished writing for the next call.
        let complete = self.partial.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let text: String = self.partial.drain(..complete).collect();
        let mut passes = PassStats::default();
        let mut warnings = 0;
        for line in text.lines() {
            if ["\"WARN\"", "\"ERROR\"", "\"CRITICAL\""]
                .iter()
                .any(|level| line.contains(&format!("\"level\":{level}")))
            {
                warnings += 1;
            }
            if !line.contains("\"msg\":\"pass finished\"") {
                continue;
            }
            let event: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("alsy logged a line that is not JSON: {line}"))?;
            let count = |key: &str| event[key].as_u64().unwrap_or(0);
            let ms = event["duration_ms"].as_f64().unwrap_or(0.0);
            passes.count += 1;
            passes.max_ms = passes.max_ms.max(ms);
            passes.total_ms += ms;
            passes.created += count("created");
            passes.deleted += count("deleted");
            passes.restarted += count("restarted");
            passes.failed += count("failed");
            if event["outcome"].as_str() != Some("completed") {
                passes.not_completed += 1;
            }
        }
        Ok((passes, warnings))
    }
}

/// The inode of a `socket:[N]` fd target.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every client's switches as the database holds them.
pub async fn stored_switches(
    db: &tokio_postgres::Client,
) -> anyhow::Result<HashMap<i64, Switches>> {
    let rows = db
        .query(
            "SELECT client_id, coalesce((switches ->> 'VWAP')::boolean, false), \
             coalesce((switches ->> 'TWAP')::boolean, false), \
             coalesce((switches ->> 'HFT')::boolean, false) FROM algorithm_status",
            &[],
        )
        .await
        .context("reading the switches")?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), Switches([r.get(1), r.get(2), r.get(3)])))
        .collect())
}

/// The pods the switches ask for, as `(client id, algorithm)` the way the API names them.
pub fn desired_pods(switches: &HashMap<i64, Switches>) -> BTreeSet<(i64, String)> {
    switches
        .iter()
        .flat_map(|(&id, s)| {
            ["VWAP", "TWAP", "HFT"]
                .iter()
                .zip(s.0)
                .filter(|(_, on)| *on)
                .map(move |(name, _)| (id, name.to_string()))
        })
        .collect()
}
