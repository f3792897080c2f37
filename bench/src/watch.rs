//! Bench 5, alsy as a controller (see this crate's README.md): the release binary with its
//! default settings (1 s debounce, 5 min interval, concurrency 16, 50 requests/s, the watch on),
//! on PostgreSQL, against the Kubernetes test API server of `alsy-tests` in this process:
//! - the requests its first pass sends (about 1,000 pods), and those of passes that change nothing;
//! - drift heal latency: a managed pod deleted from outside (a kube client's DELETE) until alsy's
//!   create of its successor reaches the server, over many trials;
//! - and, in child processes, the memory of the pod store at 300k pods (`watch_child.rs`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::Value;
use tokio::time::Instant;

use alsy_tests::kube_server::{KubeServer, Verb};

use crate::database::{BenchDatabase, PgServer};
use crate::process::{AlsyProcess, load_client};
use crate::report::{Table, ms, verdict};
use crate::watch_child::{self, StoreMode, StoreReport};
use crate::{Options, progress, reconcile};

const NS: &str = "alsy-bench";

/// What the controller run measured.
struct Controller {
    pods: usize,
    first_pass: Duration,
    first_requests: Requests,
    quiet_passes: usize,
    quiet_requests: usize,
    heal: Vec<Duration>,
}

/// Requests the API server received, by kind.
#[derive(Default)]
struct Requests {
    lists: usize,
    watches: usize,
    creates: usize,
    other: usize,
}

impl Requests {
    fn of(server: &KubeServer, skip: usize) -> Requests {
        let mut counted = Requests::default();
        for request in server.requests_after(skip) {
            match request.verb {
                Some(Verb::List) => counted.lists += 1,
                Some(Verb::Watch) => counted.watches += 1,
                Some(Verb::Create) => counted.creates += 1,
                _ => counted.other += 1,
            }
        }
        counted
    }

    fn total(&self) -> usize {
        self.lists + self.watches + self.creates + self.other
    }
}

/// Runs the controller measurement and the store-memory children.
pub async fn run(server: &PgServer, options: &Options) -> anyhow::Result<String> {
    let controller = controller(server, options).await?;
    let mut stores = Vec::new();
    for (mode, pods) in [
        (StoreMode::None, options.store_pods),
        (StoreMode::Lean, options.store_pods),
        (StoreMode::KubeReflector, options.reflector_pods),
    ] {
        if pods == 0 {
            continue;
        }
        progress(format!(
            "watch: store memory at {pods} pods: {}",
            mode.describe()
        ));
        let report = watch_child::measure(mode, pods).await?;
        progress(format!(
            "watch:   RSS {:.0} MB, peak {:.0} MB, synced in {:.1} s",
            report.rss_mb(),
            report.peak_mb(),
            report.sync.as_secs_f64()
        ));
        stores.push((mode, report));
    }
    Ok(render(&controller, &stores, options))
}

async fn controller(pg: &PgServer, options: &Options) -> anyhow::Result<Controller> {
    let clients = options.watch_clients;
    let db = BenchDatabase::create(pg, "watch").await?;
    let log = slog::Logger::root(slog::Discard, slog::o!());
    alsy_postgres::migrate(&reconcile::settings(db.url()), &log)
        .await
        .context("running alsy's migrations")?;
    db.seed(clients, true).await?;
    let result = measure(&db, options).await;
    db.drop_now().await?;
    result
}

async fn measure(db: &BenchDatabase, options: &Options) -> anyhow::Result<Controller> {
    let server = Arc::new(KubeServer::start().await);
    server.set_created_phase("Running");
    let kubeconfig = server.write_kubeconfig(NS);
    let env = vec![
        ("ALSY__STORAGE__KIND", "postgres".to_string()),
        ("ALSY__STORAGE__URL", db.url()),
        ("ALSY__RUNTIME__KIND", "kubernetes".to_string()),
        ("ALSY__K8S__KUBECONFIG", kubeconfig.display().to_string()),
    ];
    let http = load_client(4, Duration::from_secs(120))?;
    progress(format!(
        "watch: alsy with default settings on the test API server, {} clients × 3 algorithms",
        options.watch_clients
    ));
    let alsy = AlsyProcess::start(&options.alsy_bin, &env, &http).await?;
    let outcome = drive(&alsy, &server, &http, options).await;
    let _ = std::fs::remove_file(&kubeconfig);
    alsy.stop().await?;
    outcome
}

/// The last pass's report, once there is one.
async fn last_report(http: &reqwest::Client, base: &str) -> anyhow::Result<Option<Value>> {
    let reply = http.get(format!("{base}/api/v1/sync")).send().await?;
    if !reply.status().is_success() {
        return Ok(None);
    }
    let body: Value = reply.json().await?;
    Ok(Some(body["data"].clone()).filter(|d| !d.is_null()))
}

async fn drive(
    alsy: &AlsyProcess,
    server: &KubeServer,
    http: &reqwest::Client,
    options: &Options,
) -> anyhow::Result<Controller> {
    // The start-up pass: every pod created, at the default 50 requests/s.
    let deadline = Instant::now() + Duration::from_secs(600);
    let first = loop {
        if let Some(report) = last_report(http, &alsy.base).await? {
            break report;
        }
        if Instant::now() > deadline {
            bail!("no start-up pass within 10 minutes: {}", alsy.output());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pods = first["created"].as_array().map_or(0, Vec::len);
    let first_pass = Duration::from_secs_f64(first["duration_ms"].as_f64().unwrap_or(0.0) / 1e3);
    let first_requests = Requests::of(server, 0);
    progress(format!(
        "watch: start-up pass created {pods} pods in {:.1} s with {} requests",
        first_pass.as_secs_f64(),
        first_requests.total()
    ));

    let before = server.requests().len();
    let quiet_passes = 10;
    for _ in 0..quiet_passes {
        let reply = http
            .post(format!("{}/api/v1/sync", alsy.base))
            .send()
            .await?;
        let body: Value = reply.json().await?;
        let acted = ["created", "deleted", "restarted", "failed"]
            .iter()
            .map(|k| body["data"][k].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        if acted > 0 {
            bail!("a pass that should change nothing acted: {body}");
        }
    }
    let quiet_requests = server.requests_after(before).len();
    progress(format!(
        "watch: {quiet_passes} no-change passes sent {quiet_requests} requests"
    ));

    let outsider = outsider(server).await?;
    let mut heal = Vec::new();
    for trial in 0..options.heal_trials {
        // A different pod each time: client ids are 1..=clients, three algorithms each.
        let id = trial % options.watch_clients as usize + 1;
        let algorithm = ["vwap", "twap", "hft"][trial / options.watch_clients as usize % 3];
        let name = format!("{algorithm}-{id}");
        heal.push(heal_once(alsy, server, http, &outsider, &name).await?);
        if (trial + 1) % 20 == 0 {
            progress(format!("watch: {} heal trials done", trial + 1));
        }
    }
    Ok(Controller {
        pods,
        first_pass,
        first_requests,
        quiet_passes,
        quiet_requests,
        heal,
    })
}

async fn outsider(server: &KubeServer) -> anyhow::Result<Api<Pod>> {
    let path = server.write_kubeconfig(NS);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let _ = std::fs::remove_file(&path);
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Api::namespaced(kube::Client::try_from(config)?, NS))
}

/// Deletes `name` from outside; the time until alsy's create of it reaches the server. Returns
/// once the pass that made it has finished, so trials do not overlap.
async fn heal_once(
    alsy: &AlsyProcess,
    server: &KubeServer,
    http: &reqwest::Client,
    outsider: &Api<Pod>,
    name: &str,
) -> anyhow::Result<Duration> {
    let began = Instant::now();
    outsider
        .delete(name, &DeleteParams::default())
        .await
        .with_context(|| format!("deleting {name} from outside"))?;
    let deadline = began + Duration::from_secs(60);
    let created = loop {
        let requests = server.requests_for(name);
        let create = requests
            .iter()
            .rev()
            .find(|r| r.verb == Some(Verb::Create) && r.at > began);
        if let Some(create) = create {
            break create.at;
        }
        if Instant::now() > deadline {
            bail!("{name} was not created again within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    loop {
        let report = last_report(http, &alsy.base).await?.unwrap_or_default();
        let made = report["created"]
            .as_array()
            .is_some_and(|c| c.iter().any(|n| n == name));
        if made {
            break;
        }
        if Instant::now() > deadline {
            bail!("the pass that created {name} again did not finish");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(created - began)
}

/// The `q` quantile of `samples` (sorted in place), nearest rank.
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn render(c: &Controller, stores: &[(StoreMode, StoreReport)], options: &Options) -> String {
    let mut heal = c.heal.clone();
    let (p50, p99, max) = if heal.is_empty() {
        Default::default()
    } else {
        (
            quantile(&mut heal, 0.50),
            quantile(&mut heal, 0.99),
            quantile(&mut heal, 1.0),
        )
    };
    let min = heal.first().copied().unwrap_or_default();
    let r = &c.first_requests;
    let mut requests = Table::new(&[
        "pass",
        "pods created",
        "pass s",
        "LIST",
        "WATCH",
        "POST (create)",
        "other",
        "requests in all",
    ]);
    requests.row(vec![
        "start-up (first) pass".into(),
        c.pods.to_string(),
        format!("{:.1}", c.first_pass.as_secs_f64()),
        r.lists.to_string(),
        r.watches.to_string(),
        r.creates.to_string(),
        r.other.to_string(),
        r.total().to_string(),
    ]);
    requests.row(vec![
        format!("{} passes that change nothing", c.quiet_passes),
        "0".into(),
        "—".into(),
        "".into(),
        "".into(),
        "".into(),
        "".into(),
        format!(
            "{} ({:.1} per pass)",
            c.quiet_requests,
            c.quiet_requests as f64 / c.quiet_passes as f64
        ),
    ]);
    let mut latency = Table::new(&["trials", "min ms", "p50 ms", "p99 ms", "max ms"]);
    latency.row(vec![
        c.heal.len().to_string(),
        ms(min.as_secs_f64() * 1e3),
        ms(p50.as_secs_f64() * 1e3),
        ms(p99.as_secs_f64() * 1e3),
        ms(max.as_secs_f64() * 1e3),
    ]);
    let mut memory = Table::new(&[
        "process",
        "pods held",
        "synced in s",
        "RSS MB (freed pages returned)",
        "above the process without a store, MB",
        "peak RSS MB",
        "list() from the store ms",
    ]);
    let baseline = stores
        .iter()
        .find(|(mode, _)| *mode == StoreMode::None)
        .map(|(_, r)| r.rss_mb())
        .unwrap_or(0.0);
    for (mode, report) in stores {
        memory.row(vec![
            mode.describe().into(),
            report.pods.to_string(),
            if *mode == StoreMode::None {
                "—".into()
            } else {
                format!("{:.1}", report.sync.as_secs_f64())
            },
            format!("{:.0}", report.rss_mb()),
            if *mode == StoreMode::None {
                "—".into()
            } else {
                format!("{:.0}", report.rss_mb() - baseline)
            },
            format!("{:.0}", report.peak_mb()),
            report
                .list
                .map_or("—".into(), |l| ms(l.as_secs_f64() * 1e3)),
        ]);
    }
    let lean = stores
        .iter()
        .find(|(mode, _)| *mode == StoreMode::Lean)
        .map(|(_, r)| r.rss_mb() - baseline);
    let reflector = match stores
        .iter()
        .find(|(mode, _)| *mode == StoreMode::KubeReflector)
    {
        Some((_, full)) => format!(
            "\"kube reflector\" is kube's own `reflector::store` of full `Pod` objects at {} pods, \
             what a controller that caches whole pods holds, for comparison: {:.0} MB above the \
             process without a store.",
            full.pods,
            full.rss_mb() - baseline
        ),
        None => "kube's own `reflector::store` of full `Pod` objects was not run for comparison \
                 (`--reflector-pods 0`)."
            .into(),
    };
    let mut checks = Table::new(&["target", "measured", "verdict"]);
    checks.row(vec![
        format!("drift heal p99 ≤ 2 s over ≥ 100 trials"),
        format!(
            "{} ms over {} trials",
            ms(p99.as_secs_f64() * 1e3),
            c.heal.len()
        ),
        verdict(p99 <= Duration::from_secs(2) && c.heal.len() >= 100).into(),
    ]);
    checks.row(vec![
        "requests per no-change pass = 0".into(),
        format!("{:.1}", c.quiet_requests as f64 / c.quiet_passes as f64),
        verdict(c.quiet_requests == 0).into(),
    ]);
    if let Some(lean) = lean {
        checks.row(vec![
            format!(
                "store at {} pods ≤ 150 MB above the process without it",
                options.store_pods
            ),
            format!("{lean:.0} MB"),
            verdict(lean <= 150.0).into(),
        ]);
    }
    format!(
        "## 5. Watching: requests, drift heal latency, store memory\n\n\
         `nice -n -15 cargo run --release -p alsy-bench -- watch --heal-trials {trials} \
         --reflector-pods {reflector_pods}`\n\n\
         The alsy release binary as a subprocess with its default settings (debounce 1 s, interval \
         5 min, concurrency 16, 50 requests/s to the API server, the watch on), PostgreSQL storage \
         seeded with {clients} clients with all three algorithms on, the Kubernetes runtime against \
         the test API server of `alsy-tests` in the bench's process (plain HTTP on 127.0.0.1; new \
         pods report `Running`). Requests are every request the server received.\n\n\
         ### Requests to the API server\n\n{}\n\
         The first pass waits for the watch's first list and answers from the store; its creates \
         go out at the default 50 requests/s. The passes that change nothing are `POST /api/v1/sync`.\n\n\
         ### Drift heal latency\n\n\
         A managed pod deleted by another client of the API server (a `DELETE` through kube), until \
         alsy's `POST` of its successor reaches the server; one trial at a time, a different pod \
         each, the next once the healing pass has finished. The 1 s debounce is the floor: a \
         change nudges a pass as an API write does.\n\n{}\n\
         ### Store memory at {} pods\n\n\
         Each row a child process of its own (`alsy-bench watch-store-child`) against the test API \
         server in the parent holding {} pods built by alsy's manifest: RSS after the first list \
         has synced, with jemalloc (alsy's allocator) returning freed pages at once \
         (`_RJEM_MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0`), and peak RSS (VmHWM), which includes the list pages in \
         flight. \"no store\" is the Kubernetes runtime with the watch off. {}\n\n{}\n\
         ### Targets\n\n{}",
        requests.markdown(),
        latency.markdown(),
        options.store_pods,
        options.store_pods,
        reflector,
        memory.markdown(),
        checks.markdown(),
        clients = options.watch_clients,
        trials = options.heal_trials,
        reflector_pods = options.reflector_pods,
    )
}
