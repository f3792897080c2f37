//! alsy-bench: measures alsy's HTTP API against pgbench, reconciliation at 1k–100k clients, the
//! Kubernetes runtime against the test API server, alsy as a watching controller (requests, drift
//! heal latency, store memory), convergence under injected failures, and a soak of minutes (with SVG charts); prints markdown tables and
//! keeps them in `bench/RESULTS.md`. See `bench/README.md` for what each number means.

mod api;
mod api_ab;
mod converge;
mod cpu;
mod database;
mod kube;
mod load;
mod machine;
mod pgbench;
mod process;
mod reconcile;
mod reconcile_child;
mod report;
mod restart;
mod soak;
mod sql;
mod timed;
mod watch;
mod watch_child;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::database::PgServer;

/// Benchmarks for alsy. Every load is bounded in time and sent to 127.0.0.1 only.
#[derive(Parser)]
#[command(name = "alsy-bench")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP API (alsy subprocess on PostgreSQL) against pgbench.
    Api,
    /// Two alsy binaries under the API loads, interleaved round by round (A/B); not part of `all`.
    ApiAb(api_ab::AbArgs),
    /// Reconcile passes at 1k, 10k and 100k clients, each size in a child process.
    Reconcile,
    /// One pass creating pods through the Kubernetes test API server.
    Kube,
    /// A restart of many clients on kube-apiserver (envtest) with a grace period on deletions.
    Restart,
    /// alsy watching the test API server: requests per pass, drift heal latency, store memory.
    Watch,
    /// api, reconcile, kube and watch (the default; the soak and the restart are not included).
    All,
    /// 100 clients × 3 pods against an API server refusing 30 % of creates and deletes; not part
    /// of `all`.
    Converge,
    /// The assignment's load for minutes, passes churning pods: growth, lost writes, SVG charts.
    Soak(soak::SoakArgs),
    /// One size of the reconcile bench; started by `reconcile`, prints JSON.
    #[command(hide = true)]
    ReconcileChild(reconcile_child::ChildArgs),
    /// One store of the watch bench; started by `watch`, prints JSON.
    #[command(hide = true)]
    WatchStoreChild(watch_child::ChildArgs),
}

/// Options shared by every bench.
#[derive(Args, Clone)]
pub struct Options {
    /// PostgreSQL host (loopback only).
    #[arg(long, global = true, default_value = "127.0.0.1")]
    pg_host: String,
    /// PostgreSQL port.
    #[arg(long, global = true, default_value_t = 5432)]
    pg_port: u16,
    /// PostgreSQL user (trust authentication).
    #[arg(long, global = true, default_value = "postgres")]
    pg_user: String,
    /// Where the tables are kept; sections of benches not run are left as they were.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"))]
    results: PathBuf,
    /// Print the tables without touching the results file.
    #[arg(long, global = true)]
    no_write: bool,
    /// The alsy binary the API bench starts.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/alsy"))]
    pub alsy_bin: PathBuf,
    /// Clients seeded for the API bench.
    #[arg(long, global = true, default_value_t = 10_000)]
    pub api_clients: u64,
    /// Concurrent HTTP workers and pgbench sessions.
    #[arg(long, global = true, default_value_t = 16)]
    pub concurrency: usize,
    /// Length of each measured load (at least 10 s for the published table).
    #[arg(long, global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured mixed load before the first measurement.
    #[arg(long, global = true, default_value = "3s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Run the alsy under test with a tokens file and send a bearer token with every request
    /// (`alsy token` mints it), to measure the cost of authentication.
    #[arg(long, global = true)]
    pub with_token: bool,
    /// `ALSY__STORAGE__MAX_CONNS` for the alsy under test; unset keeps alsy's default.
    #[arg(long, global = true)]
    pub max_conns: Option<u32>,
    /// Client counts of the reconcile bench.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "1000,10000,100000"
    )]
    pub sizes: Vec<u64>,
    /// Times the raw desired-state SELECT runs through psql (the median is reported).
    #[arg(long, global = true, default_value_t = 5)]
    pub select_runs: usize,
    /// Pods the Kubernetes bench creates.
    #[arg(long, global = true, default_value_t = 1000)]
    pub pods: usize,
    /// Latency the Kubernetes test API server adds to every request in the second run.
    #[arg(long, global = true, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub kube_latency: Duration,
    /// Clients (three pods each) the restart bench restarts.
    #[arg(long, global = true, default_value_t = 100)]
    pub restart_clients: usize,
    /// How long the restart bench's stand-in kubelet takes to finish a deletion.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    pub restart_grace: Duration,
    /// Clients (three pods each) of the watch bench's alsy.
    #[arg(long, global = true, default_value_t = 334)]
    pub watch_clients: u64,
    /// Pods deleted from outside, one at a time, for the drift heal latency.
    #[arg(long, global = true, default_value_t = 120)]
    pub heal_trials: usize,
    /// Pods the watch bench's store-memory children hold.
    #[arg(long, global = true, default_value_t = 300_000)]
    pub store_pods: usize,
    /// Pods for the comparison with kube's reflector of full pods (0: none).
    #[arg(long, global = true, default_value_t = 300_000)]
    pub reflector_pods: usize,
    /// Runs of the convergence bench, each with its own seed.
    #[arg(long, global = true, default_value_t = 5)]
    pub converge_runs: usize,
    /// Clients of the convergence bench (three pods each).
    #[arg(long, global = true, default_value_t = 100)]
    pub converge_clients: usize,
}

impl Options {
    fn server(&self) -> anyhow::Result<PgServer> {
        PgServer::checked(self.pg_host.clone(), self.pg_port, self.pg_user.clone())
    }
}

/// Prints a progress line on stderr with the time since the bench started.
pub fn progress(message: impl std::fmt::Display) {
    static START: OnceLock<Instant> = OnceLock::new();
    let since = START.get_or_init(Instant::now).elapsed();
    eprintln!("[{:>6.1}s] {message}", since.as_secs_f64());
}

/// The allocator alsy's binary runs with (bin/src/main.rs): the benches that run alsy's code in
/// this process (reconcile, kube, watch-store, restart) measure it as it ships. With glibc's
/// malloc the 100k-client no-change pass spent about a quarter of its samples in malloc and free.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let options = cli.options;
    let command = cli.command.unwrap_or(Command::All);
    if let Command::ReconcileChild(args) = command {
        return reconcile_child::run(args).await;
    }
    if let Command::WatchStoreChild(args) = command {
        return watch_child::run(args).await;
    }
    progress("alsy-bench starting");
    let server = options.server()?;
    let machine = machine::Machine::describe(&server.cli_args()).markdown();
    let (api, reconcile, kube, watch) = match command {
        Command::Api => (true, false, false, false),
        Command::Reconcile => (false, true, false, false),
        Command::Kube => (false, false, true, false),
        Command::Watch => (false, false, false, true),
        Command::Soak(_) | Command::Restart | Command::ApiAb(_) | Command::Converge => {
            (false, false, false, false)
        }
        _ => (true, true, true, true),
    };
    let mut sections: Vec<(&str, String)> = Vec::new();
    let mut failed: Vec<&str> = Vec::new();
    let mut keep = |name: &'static str, outcome: anyhow::Result<String>| match outcome {
        Ok(body) => sections.push((name, body)),
        Err(e) => {
            progress(format!("{name} bench failed: {e:#}"));
            failed.push(name);
        }
    };
    if api {
        keep("api", api::run(&server, &options).await);
    }
    if reconcile {
        keep("reconcile", reconcile::run(&server, &options).await);
    }
    if kube {
        keep("kube", kube::run(&options).await);
    }
    if let Command::Restart = command {
        let outcome = restart::run(&options)
            .await
            .map(|section| format!("{section}\n### Machine\n\n{machine}"));
        keep("restart", outcome);
    }
    if watch {
        keep("watch", watch::run(&server, &options).await);
    }
    if let Command::ApiAb(args) = &command {
        let outcome = api_ab::run(&server, &options, args)
            .await
            .map(|section| format!("{section}\n### Machine\n\n{machine}"));
        keep("api-ab", outcome);
    }
    if let Command::Converge = command {
        let outcome = converge::run(&server, &options)
            .await
            .map(|section| format!("{section}\n### Machine\n\n{machine}"));
        keep("converge", outcome);
    }
    let mut soak_checks = Vec::new();
    if let Command::Soak(args) = &command {
        let outcome = soak::run(&server, &options, args).await.map(|soaked| {
            soak_checks = soaked.checks;
            format!("{}\n### Machine\n\n{machine}", soaked.section)
        });
        keep("soak", outcome);
    }
    println!("## Machine\n\n{machine}");
    for (_, body) in &sections {
        println!("{body}");
    }
    if !options.no_write && !sections.is_empty() {
        // The soak, the restart bench, the A/B and convergence carry their own machine
        // description.
        let on_its_own = matches!(
            command,
            Command::Soak(_) | Command::Restart | Command::ApiAb(_) | Command::Converge
        );
        let shared_machine = (!on_its_own).then_some(machine.as_str());
        report::write_results(&options.results, shared_machine, &sections)?;
        progress(format!("tables written to {}", options.results.display()));
    }
    if !soak_checks.is_empty() {
        println!("soak checks:\n{}", soak_checks.join("\n"));
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "failed: {} (the results file keeps their earlier tables)",
            failed.join(", ")
        );
    }
    Ok(())
}
