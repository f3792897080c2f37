//! Convergence under a flaky API server. The release binary with alsy's default sync
//! settings (5-minute interval, 1 s debounce, retries between 1 s and 5 min) on PostgreSQL,
//! against the Kubernetes test API server refusing 30 % of creates and deletes at random (half
//! 500, half 429 with `Retry-After: 1`). 100 clients switch all three algorithms on through the
//! API; the bench counts the pods the server holds until all 300 exist. Each run has its own seed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use alsy_tests::kube_server::{KubeServer, Verb};

use crate::database::{BenchDatabase, PgServer};
use crate::process::{AlsyProcess, load_client};
use crate::report::{Table, verdict};
use crate::{Options, progress};

/// The target: every pod within 30 s of the last write.
const TARGET: Duration = Duration::from_secs(30);
/// Share of creates and deletes the API server refuses.
const FAILURE_RATE: f64 = 0.3;
/// Longest a run waits: short of the 5-minute interval, so an interval pass never helps.
const GIVE_UP: Duration = Duration::from_secs(240);
const NAMESPACE: &str = "alsy-bench";

struct Run {
    seed: u64,
    /// Time the 100 creates and 100 status writes took.
    writes: Duration,
    /// From the last status write until every pod existed; `None` if that never happened.
    converged: Option<Duration>,
    /// Pods that existed 10, 30 and 60 s after the last write.
    at: [usize; 3],
    injected: u64,
    create_requests: usize,
    /// Passes by trigger, from alsy's log.
    passes: Vec<(String, usize)>,
    /// The pod whose create came last, and when each of its creates arrived, in seconds from
    /// the last write (negative: before it): the gaps are its retry waits.
    slowest: Option<(String, Vec<f64>)>,
}

/// Runs `options.converge_runs` runs, each against a fresh API server and database.
pub async fn run(server: &PgServer, options: &Options) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    for n in 0..options.converge_runs {
        let seed = 1000 + n as u64;
        let db = BenchDatabase::create(server, "converge").await?;
        let result = measure(&db, options, seed).await;
        db.drop_now().await?;
        let run = result?;
        progress(format!(
            "converge: seed {seed}: {} pods converged in {}",
            options.converge_clients * 3,
            run.converged
                .map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
        ));
        runs.push(run);
    }
    Ok(render(&runs, options))
}

async fn measure(db: &BenchDatabase, options: &Options, seed: u64) -> anyhow::Result<Run> {
    let clients = options.converge_clients;
    let pods = clients * 3;
    let kube = KubeServer::start().await;
    kube.set_created_phase("Running");
    kube.fail_randomly(&[Verb::Create, Verb::Delete], FAILURE_RATE, seed);
    let kubeconfig = kube.write_kubeconfig(NAMESPACE);
    let http = load_client(16, Duration::from_secs(10))?;
    // Every sync setting at its default: the point is what an operator gets out of the box.
    let env = vec![
        ("ALSY__STORAGE__KIND", "postgres".to_string()),
        ("ALSY__STORAGE__URL", db.url()),
        ("ALSY__RUNTIME__KIND", "kubernetes".to_string()),
        ("ALSY__K8S__KUBECONFIG", kubeconfig.display().to_string()),
        ("ALSY__LOG__LEVEL", "info".to_string()),
    ];
    let alsy = AlsyProcess::start(&options.alsy_bin, &env, &http).await?;
    let outcome = drive(&alsy, &kube, &http, clients, pods).await;
    let passes = passes_by_trigger(alsy.log_path());
    if outcome.is_err() {
        eprintln!("alsy's last output:\n{}", alsy.output());
    }
    alsy.stop().await?;
    let _ = std::fs::remove_file(&kubeconfig);
    let (written, writes, converged, at) = outcome?;
    let creates: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::Create))
        .collect();
    let create_requests = creates.len();
    let mut by_pod: std::collections::HashMap<String, Vec<Instant>> = Default::default();
    for create in creates {
        if let Some(pod) = create.pod {
            by_pod.entry(pod).or_default().push(create.at.into_std());
        }
    }
    let since_written = |at: Instant| match at.checked_duration_since(written) {
        Some(after) => after.as_secs_f64(),
        None => -written.duration_since(at).as_secs_f64(),
    };
    let slowest = by_pod
        .into_iter()
        .max_by_key(|(_, times)| times.last().copied())
        .map(|(pod, times)| (pod, times.into_iter().map(since_written).collect()));
    Ok(Run {
        seed,
        writes,
        converged,
        at,
        injected: kube.random_failures_injected(),
        create_requests,
        passes,
        slowest,
    })
}

/// Creates the clients, switches everything on, and watches the pods arrive.
async fn drive(
    alsy: &AlsyProcess,
    kube: &KubeServer,
    http: &reqwest::Client,
    clients: usize,
    pods: usize,
) -> anyhow::Result<(Instant, Duration, Option<Duration>, [usize; 3])> {
    let began = Instant::now();
    for n in 0..clients {
        let body = json!({"name": format!("converge {n}"), "version": 1,
            "image": "ghcr.io/acme/algo:1", "cpu": "100m", "mem": "64Mi", "priority": 0.5});
        let created: Value = http
            .post(format!("{}/api/v1/clients", alsy.base))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["data"]["id"].as_i64().context("data.id")?;
        http.put(format!("{}/api/v1/status/{id}", alsy.base))
            .json(&json!({"VWAP": true, "TWAP": true, "HFT": true}))
            .send()
            .await?
            .error_for_status()?;
    }
    let written = Instant::now();
    let writes = written - began;
    let marks = [10, 30, 60].map(Duration::from_secs);
    let mut at = [0; 3];
    let mut converged = None;
    loop {
        let elapsed = written.elapsed();
        let count = kube.pods(NAMESPACE).len();
        // The last count seen before each mark (after convergence, every later mark's).
        for (slot, mark) in at.iter_mut().zip(marks) {
            if elapsed <= mark {
                *slot = count;
            }
        }
        if count >= pods {
            converged = Some(elapsed);
            break;
        }
        if elapsed > GIVE_UP {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if kube.pods(NAMESPACE).len() > pods {
        bail!("more pods than clients × 3: the bench is wrong");
    }
    Ok((written, writes, converged, at))
}

/// `pass finished` lines of alsy's log, counted by trigger.
fn passes_by_trigger(log: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if value["msg"] == "pass finished" {
            let trigger = value["trigger"].as_str().unwrap_or("?").to_owned();
            *counts.entry(trigger).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

fn render(runs: &[Run], options: &Options) -> String {
    let pods = options.converge_clients * 3;
    let mut table = Table::new(&[
        "seed",
        "writes s",
        "all pods after s",
        "pods at 10 s",
        "at 30 s",
        "at 60 s",
        "failures injected",
        "create requests",
        "passes (trigger × n)",
        "last pod: its creates, s from the last write",
        "target ≤ 30 s",
    ]);
    for run in runs {
        let passes: Vec<String> = run.passes.iter().map(|(t, n)| format!("{t} {n}")).collect();
        table.row(vec![
            run.seed.to_string(),
            format!("{:.1}", run.writes.as_secs_f64()),
            run.converged.map_or("never (> 240 s)".into(), |d| {
                format!("{:.1}", d.as_secs_f64())
            }),
            format!("{}/{pods}", run.at[0]),
            format!("{}/{pods}", run.at[1]),
            format!("{}/{pods}", run.at[2]),
            run.injected.to_string(),
            run.create_requests.to_string(),
            passes.join(", "),
            run.slowest.as_ref().map_or("—".into(), |(pod, times)| {
                let times: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
                format!("{pod}: {}", times.join(", "))
            }),
            verdict(run.converged.is_some_and(|d| d <= TARGET)).to_string(),
        ]);
    }
    let mut times: Vec<f64> = runs
        .iter()
        .map(|r| r.converged.map_or(f64::INFINITY, |d| d.as_secs_f64()))
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let worst = times.last().copied().unwrap_or(f64::NAN);
    format!(
        "## Convergence under injected failures\n\n\
         `alsy-bench converge`: the release binary with the default sync settings (interval 5 m, \
         debounce 1 s, retries 1 s – 5 min) on PostgreSQL, against the \
         Kubernetes test API server refusing {rate:.0} % of creates and deletes at random (half \
         500, half 429 with `Retry-After: 1`), pods `Running` once created. {clients} clients \
         are created and switched all on through the API (\"writes s\"); the clock starts at the \
         last write. Before per-pod retries, this setup had 271 of 300 pods after 60 s (the rest \
         waited for the 5-minute interval).\n\n{}\n\
         Median {median:.1} s, worst {worst:.1} s over {n} runs (target ≤ 30 s).\n",
        table.markdown(),
        rate = FAILURE_RATE * 100.0,
        clients = options.converge_clients,
        n = runs.len(),
    )
}
