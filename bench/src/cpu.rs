//! CPU time from /proc, to split a load's cost between alsy, PostgreSQL and the load generator.

use std::time::Duration;

/// CPU time (user + system) used so far by alsy, by every PostgreSQL process (backends that
/// already exited included, through the postmaster's reaped-children times) and by this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    /// The alsy subprocess.
    pub alsy: Duration,
    /// All of PostgreSQL.
    pub postgres: Duration,
    /// The bench itself (the load generator).
    pub bench: Duration,
    /// The bench's exited children: pgbench (and psql).
    pub children: Duration,
}

impl CpuSnapshot {
    /// Reads the counters now; a process that cannot be read counts as zero.
    pub fn take(alsy_pid: u32) -> CpuSnapshot {
        CpuSnapshot {
            alsy: stat(&alsy_pid.to_string())
                .map(|s| s.own)
                .unwrap_or_default(),
            postgres: postgres(),
            bench: stat("self").map(|s| s.own).unwrap_or_default(),
            children: stat("self").map(|s| s.reaped_children).unwrap_or_default(),
        }
    }

    /// What was used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        CpuSnapshot {
            alsy: self.alsy.saturating_sub(earlier.alsy),
            postgres: self.postgres.saturating_sub(earlier.postgres),
            bench: self.bench.saturating_sub(earlier.bench),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

struct Stat {
    comm: String,
    ppid: u32,
    own: Duration,
    reaped_children: Duration,
    nice: i64,
}

/// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces, so fields are
/// counted from the closing one.
fn stat(pid: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = clock_ticks();
    let seconds = |t: u64| Duration::from_secs_f64(t as f64 / ticks);
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        own: seconds(tick(11) + tick(12)),
        reaped_children: seconds(tick(13) + tick(14)),
        nice: fields.get(16)?.parse().ok()?,
    })
}

/// The scheduling priority (nice) of the bench, of alsy and of PostgreSQL's postmaster: on a
/// shared machine a run at a raised priority says so next to its figures.
#[derive(Debug, Clone, Copy)]
pub struct Niceness {
    pub bench: Option<i64>,
    pub alsy: Option<i64>,
    pub postgres: Option<i64>,
}

impl Niceness {
    /// Reads them now (`None` for what cannot be read).
    pub fn take(alsy_pid: u32) -> Niceness {
        let postmaster = postgres_processes()
            .into_iter()
            .find(|(_, s)| stat(&s.ppid.to_string()).is_none_or(|p| p.comm != "postgres"))
            .map(|(_, s)| s.nice);
        Niceness {
            bench: stat("self").map(|s| s.nice),
            alsy: stat(&alsy_pid.to_string()).map(|s| s.nice),
            postgres: postmaster,
        }
    }

    /// `nice -15 for the bench, …` in words.
    pub fn describe(&self) -> String {
        let show = |v: Option<i64>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
        format!(
            "nice {} for the bench, {} for alsy, {} for PostgreSQL",
            show(self.bench),
            show(self.alsy),
            show(self.postgres)
        )
    }
}

fn postgres_processes() -> Vec<(u32, Stat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(&pid.to_string())?)))
        .filter(|(_, s)| s.comm == "postgres")
        .collect()
}

/// Every `postgres` process, plus the children the postmaster reaped (exited backends).
fn postgres() -> Duration {
    let all = postgres_processes();
    let is_postgres = |pid: u32| all.iter().any(|(p, _)| *p == pid);
    all.iter()
        .map(|(_, s)| {
            if is_postgres(s.ppid) {
                s.own
            } else {
                s.own + s.reaped_children
            }
        })
        .sum()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
