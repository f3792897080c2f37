//! What the numbers were measured on: cores, memory, CPU model, PostgreSQL and rustc versions, date.

use std::process::Command;

/// The machine a run measured, as printed above the tables.
pub struct Machine {
    /// `nproc`.
    pub cores: String,
    /// `MemTotal` from /proc/meminfo, in GiB.
    pub memory: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// The server's `server_version`, through psql.
    pub postgres: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The kernel (`uname -sr`).
    pub kernel: String,
    /// When the run started (UTC).
    pub date: String,
}

impl Machine {
    /// Reads everything it can; what can't be read says so instead of failing the bench.
    pub fn describe(psql_args: &[String]) -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut psql: Vec<&str> = psql_args.iter().map(String::as_str).collect();
        psql.extend(["-X", "-A", "-t", "-c", "SHOW server_version"]);
        Machine {
            cores: output("nproc", &[]),
            memory,
            cpu,
            postgres: output("psql", &psql),
            rustc: output("rustc", &["--version"]),
            kernel: output("uname", &["-sr"]),
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }

    /// The machine as a markdown list.
    pub fn markdown(&self) -> String {
        format!(
            "- date: {}\n- cores (nproc): {}\n- memory: {}\n- CPU: {}\n- kernel: {}\n- PostgreSQL: {}\n- rustc: {}\n",
            self.date, self.cores, self.memory, self.cpu, self.kernel, self.postgres, self.rustc
        )
    }
}

/// The trimmed stdout of a command, or `unknown` when it cannot run.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
