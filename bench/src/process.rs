//! The alsy binary as a subprocess: started on a free loopback port, watched for readiness,
//! measured (CPU time, peak RSS from /proc), and stopped with SIGTERM.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A running alsy.
pub struct AlsyProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:port`.
    pub base: String,
    log_path: std::path::PathBuf,
}

impl AlsyProcess {
    /// Starts `binary` with `env` on a free port of 127.0.0.1 and waits (≤ 60 s) until
    /// `GET /api/ready` answers 200. Its stdout and stderr go to a file kept for diagnosis.
    pub async fn start(
        binary: &Path,
        env: &[(&str, String)],
        http: &reqwest::Client,
    ) -> anyhow::Result<AlsyProcess> {
        if !binary.is_file() {
            bail!(
                "{} does not exist: run `cargo build --release -p alsy` first (or pass --alsy-bin)",
                binary.display()
            );
        }
        let port = free_port()?;
        let log_path =
            std::env::temp_dir().join(format!("alsy-bench-{}-alsy.log", std::process::id()));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(binary);
        command
            .env("ALSY__HTTP__ADDRESS", format!("127.0.0.1:{port}"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("alsy exited at once")?;
        let mut process = AlsyProcess {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log_path,
        };
        process.wait_ready(http).await?;
        Ok(process)
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().context("polling alsy")? {
                bail!(
                    "alsy exited with {status} before it was ready; its output:\n{}",
                    self.output()
                );
            }
            let ready = http.get(format!("{}/api/ready", self.base)).send().await;
            if matches!(&ready, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "alsy was not ready within 60 s; its output:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The tail of what alsy printed.
    pub fn output(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The file its stdout and stderr go to (removed by [`AlsyProcess::stop`]).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Peak resident set size (VmHWM) in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
            .map(|kib| kib as f64 / 1024.0)
            .unwrap_or(0.0)
    }

    /// SIGTERM, then up to 15 s for a graceful exit, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for alsy to exit")?;
            }
            Err(_) => {
                self.child.kill().await.context("killing alsy")?;
                eprintln!("alsy did not stop within 15 s of SIGTERM and was killed");
            }
        }
        let _ = std::fs::remove_file(&self.log_path);
        Ok(())
    }
}

/// An HTTP client for loads on 127.0.0.1: no proxy, no Nagle delay, up to `idle` keep-alive
/// connections, every request bounded by `timeout`.
pub fn load_client(idle: usize, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(idle)
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

/// The environment of an alsy on PostgreSQL database `url` with the fake runtime, with
/// `ALSY__STORAGE__MAX_CONNS` when `max_conns` is given; each bench adds its sync and log settings.
pub fn postgres_fake_env(url: String, max_conns: Option<u32>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("ALSY__STORAGE__KIND", "postgres".to_string()),
        ("ALSY__STORAGE__URL", url),
        ("ALSY__RUNTIME__KIND", "fake".to_string()),
    ];
    if let Some(max) = max_conns {
        env.push(("ALSY__STORAGE__MAX_CONNS", max.to_string()));
    }
    env
}

/// `VmHWM` from the text of /proc/*/status, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}
