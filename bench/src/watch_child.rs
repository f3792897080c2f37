//! The store-memory part of the watch bench: the parent holds the test API server with many pods;
//! each child process (`watch-store-child`) builds one kind of store over it and reports its
//! memory as JSON, so that no two stores, and not the server, share a process.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde::{Deserialize, Serialize};

use alsy_app::PodRuntime;
use alsy_domain::{
    Catalogue, ClientId, DesiredPod, ImageRef, PodName, Priority, Quantity, Version,
};
use alsy_k8s::{KubeRuntime, KubeSettings, MANAGED_SELECTOR, PodSecurity, pod_manifest};
use alsy_tests::kube_server::KubeServer;

use crate::progress;

const NS: &str = "alsy-store";

/// Which store a child builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum StoreMode {
    /// The Kubernetes runtime with the watch off: the process without a store.
    None,
    /// alsy's watch-fed store.
    Lean,
    /// kube's `reflector::store` of full `Pod` objects.
    KubeReflector,
}

impl StoreMode {
    pub fn describe(self) -> &'static str {
        match self {
            StoreMode::None => "no store (watch off)",
            StoreMode::Lean => "alsy's pod store",
            StoreMode::KubeReflector => "kube reflector of full Pods",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            StoreMode::None => "none",
            StoreMode::Lean => "lean",
            StoreMode::KubeReflector => "kube-reflector",
        }
    }
}

/// Arguments of the hidden `watch-store-child` command.
#[derive(clap::Args)]
pub struct ChildArgs {
    /// Points at the parent's test API server.
    #[arg(long)]
    kubeconfig: std::path::PathBuf,
    #[arg(long, value_enum)]
    mode: StoreMode,
    /// Pods the server holds.
    #[arg(long)]
    pods: usize,
}

/// What a child measured.
#[derive(Serialize, Deserialize)]
pub struct StoreReport {
    /// Pods the store held once synced (0 without a store).
    pub pods: usize,
    /// From the start of the watch to the store answering.
    pub sync: Duration,
    /// One `list()` from the synced store.
    pub list: Option<Duration>,
    /// VmRSS after the sync, freed pages returned (see [`measure`]), KiB.
    pub rss_kib: u64,
    /// VmHWM, KiB.
    pub peak_kib: u64,
}

impl StoreReport {
    pub fn rss_mb(&self) -> f64 {
        self.rss_kib as f64 * 1024.0 / 1e6
    }
    pub fn peak_mb(&self) -> f64 {
        self.peak_kib as f64 * 1024.0 / 1e6
    }
}

fn desired(id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).expect("a positive client id");
    let algorithm = Catalogue::DEFAULT[id as usize % Catalogue::DEFAULT.len()];
    DesiredPod {
        name: PodName::of(algorithm, client_id),
        client_id,
        algorithm,
        image: ImageRef::parse("ghcr.io/acme/algo:1.0").expect("a valid image"),
        cpu: Quantity::parse("500m").expect("a valid quantity"),
        mem: Quantity::parse("512Mi").expect("a valid quantity"),
        version: Version::parse(1).expect("a valid version"),
        priority: Priority::parse(0.5).expect("a valid priority"),
        // Every pod carries a restart mark, as after a restart of every client: the most the
        // watch decodes and the store keeps.
        restart_mark: Some(
            std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_secs(1_700_000_000 + id as u64),
        ),
    }
}

/// Starts a test API server holding `pods` of alsy's pods and runs a child of `mode` on it.
pub async fn measure(mode: StoreMode, pods: usize) -> anyhow::Result<StoreReport> {
    let server = KubeServer::start().await;
    // The watch history would hold a serialised copy of every pod inserted.
    server.set_watch_history(100);
    for n in 0..pods {
        let manifest = pod_manifest(&desired(n as i64 + 1), PodSecurity::default());
        server.insert_pod(NS, manifest);
    }
    let kubeconfig = server.write_kubeconfig(NS);
    let exe = std::env::current_exe().context("finding alsy-bench's own path")?;
    let child = tokio::process::Command::new(exe)
        .args([
            "watch-store-child",
            "--mode",
            mode.arg(),
            "--pods",
            &pods.to_string(),
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        // jemalloc returns freed pages at once instead of after its 10-s decay, so the RSS read
        // after the sync is what the store holds, not the list pages freed a moment before.
        .env("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(900), child)
        .await
        .context("the store child ran for more than 15 minutes")?
        .context("starting the store child")?;
    let _ = std::fs::remove_file(&kubeconfig);
    if !out.status.success() {
        bail!("the store child failed with {}", out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading the store child's report")
}

/// The child: builds its store, waits for it to sync, prints the report.
pub async fn run(args: ChildArgs) -> anyhow::Result<()> {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let settings = KubeSettings {
        qps: 0,
        // The first list of 300k pods takes its time; the runtime's list waits that long for it.
        request_timeout: Duration::from_secs(600),
        watch: args.mode == StoreMode::Lean,
        ..KubeSettings::default()
    };
    let began = Instant::now();
    let mut report = StoreReport {
        pods: 0,
        sync: Duration::ZERO,
        list: None,
        rss_kib: 0,
        peak_kib: 0,
    };
    // Kept alive until measured.
    let runtime = KubeRuntime::from_kubeconfig(&args.kubeconfig, &settings, &log)
        .await
        .context("building the Kubernetes runtime")?;
    let mut reflector_store = None;
    match args.mode {
        StoreMode::None => {}
        StoreMode::Lean => {
            let listed = runtime.list().await.context("the first list")?;
            report.sync = began.elapsed();
            report.pods = listed.len();
            drop(listed);
            let clock = Instant::now();
            let listed = runtime.list().await.context("a list from the store")?;
            report.list = Some(clock.elapsed());
            drop(listed);
        }
        StoreMode::KubeReflector => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
            let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(config)?, NS);
            let (reader, writer) = reflector::store();
            let config = watcher::Config::default().labels(MANAGED_SELECTOR);
            let stream = reflector(writer, watcher(pods, config)).default_backoff();
            tokio::spawn(stream.for_each(|_| async {}));
            reader
                .wait_until_ready()
                .await
                .context("the reflector never synced")?;
            report.sync = began.elapsed();
            report.pods = reader.state().len();
            reflector_store = Some(reader);
        }
    }
    if args.mode != StoreMode::None && report.pods != args.pods {
        bail!("the store holds {} pods, not {}", report.pods, args.pods);
    }
    progress(format!(
        "watch-store-child {}: synced {} pods",
        args.mode.arg(),
        report.pods
    ));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    report.rss_kib = field_kib(&status, "VmRSS:");
    report.peak_kib = field_kib(&status, "VmHWM:");
    println!("{}", serde_json::to_string(&report)?);
    drop((runtime, reflector_store));
    Ok(())
}

fn field_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
