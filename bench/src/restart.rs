//! Bench 5: a restart of many clients on a real API server whose pods take a grace period to go.
//! kube-apiserver and etcd from `KUBEBUILDER_ASSETS` (envtest), the tests' stand-in kubelet
//! running the pods and finishing each deletion `--restart-grace` after it was asked for, alsy's
//! `Watcher` over `KubeRuntime` (default rate limit and concurrency) and an in-memory store.
//! It measures how long the pass that begins the restart takes (what `POST /api/v1/sync`
//! waits for), when the last old pod is gone, when the last replacement runs and when the last
//! restart mark is acknowledged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use tokio::time::Instant;

use alsy_app::{ClientRepository, PassOutcome, Reconciler, SyncSettings, Watcher};
use alsy_domain::{AlgorithmStatus, Catalogue, ClientId, ClientSpec, ClientSpecInput};
use alsy_fake::{InMemoryRepository, LocalPassLock};
use alsy_k8s::{KubeRuntime, KubeSettings, MANAGED_SELECTOR};
use alsy_tests::envtest::{Envtest, StandInKubelet};

use crate::report::Table;
use crate::{Options, progress};

/// alsy's default `ALSY__SYNC__CONCURRENCY`.
const CONCURRENCY: usize = 16;
/// How often the bench looks at the pods (its own requests, as the test admin).
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// Give up if the pods have not settled by then.
const GIVE_UP: Duration = Duration::from_secs(600);

struct Measured {
    clients: usize,
    pods: usize,
    pass: Duration,
    restarted: usize,
    terminating: usize,
    failed: usize,
    old_gone: Duration,
    last_running: Duration,
    acknowledged: Duration,
}

/// Runs the restart bench once.
pub async fn run(options: &Options) -> anyhow::Result<String> {
    let envtest = Envtest::try_shared().await.map_err(anyhow::Error::msg)?;
    let namespace = envtest.namespace("alsy-bench-restart", &[]).await;
    let client = envtest.client().await;
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let kubelet = StandInKubelet::start(client, &namespace, options.restart_grace);
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let kubeconfig = envtest.write_alsy_kubeconfig(&namespace);
    let settings = KubeSettings {
        namespace: Some(namespace.clone()),
        ..KubeSettings::default()
    };
    let runtime = KubeRuntime::from_kubeconfig(&kubeconfig, &settings, &log)
        .await
        .context("building the Kubernetes runtime")?;
    let repo = InMemoryRepository::new();
    let ids = seed(&repo, options.restart_clients).await?;
    let pods = ids.len() * 3;
    let reconciler = Reconciler::new(
        Arc::new(repo.clone()),
        Arc::new(runtime),
        Arc::new(LocalPassLock::new()),
        CONCURRENCY,
        &log,
    );
    let config = SyncSettings {
        interval: Duration::from_secs(3600),
        ..SyncSettings::default()
    };
    let watcher = Watcher::start(reconciler, config, &log);
    progress(format!("restart: starting {pods} pods"));
    let started = Instant::now();
    let old = wait_for(&pods_api, started, |listed| {
        running(listed, &HashSet::new()) == pods
    })
    .await?;
    let old_uids: HashSet<String> = old.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    progress(format!(
        "restart: {pods} pods running after {:.1} s; marking {} clients for restart",
        started.elapsed().as_secs_f64(),
        ids.len()
    ));

    for id in &ids {
        let client = repo.get(*id).await.context("reading a client")?;
        repo.set_status(*id, client.status, true)
            .await
            .context("marking a client for restart")?;
    }
    let began = Instant::now();
    let report = watcher
        .handle()
        .sync_now()
        .await
        .context("the watcher stopped")?;
    let pass = began.elapsed();
    if report.outcome != PassOutcome::Completed {
        bail!("the restart pass did not complete: {:?}", report.outcome);
    }
    progress(format!(
        "restart: the pass returned after {:.2} s ({} restarted, {} terminating, {} failed)",
        pass.as_secs_f64(),
        report.restarted.len(),
        report.terminating.len(),
        report.failed.len()
    ));

    let mut old_gone = None;
    wait_for(&pods_api, began, |listed| {
        if old_gone.is_none() && !listed.iter().any(|p| is_old(p, &old_uids)) {
            old_gone = Some(began.elapsed());
        }
        running(listed, &old_uids) == pods
    })
    .await?;
    let last_running = began.elapsed();
    let mut acknowledged = last_running;
    loop {
        let marked = count_marked(&repo, &ids).await?;
        if marked == 0 {
            break;
        }
        if began.elapsed() > GIVE_UP {
            bail!("{marked} clients still marked for restart");
        }
        tokio::time::sleep(LOOK_EVERY).await;
        acknowledged = began.elapsed();
    }
    progress(format!(
        "restart: last replacement running {:.1} s after the restart began, acknowledged by {:.1} s",
        last_running.as_secs_f64(),
        acknowledged.as_secs_f64()
    ));
    watcher.stop().await;
    drop(kubelet);
    let _ = std::fs::remove_file(&kubeconfig);
    let measured = Measured {
        clients: ids.len(),
        pods,
        pass,
        restarted: report.restarted.len(),
        terminating: report.terminating.len(),
        failed: report.failed.len(),
        old_gone: old_gone.unwrap_or(last_running),
        last_running,
        acknowledged,
    };
    Ok(render(&measured, options.restart_grace, settings.qps))
}

/// `count` clients with all three algorithms on; their ids.
async fn seed(repo: &InMemoryRepository, count: usize) -> anyhow::Result<Vec<ClientId>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let spec = ClientSpec::parse(ClientSpecInput {
            name: format!("restart-client-{n}"),
            version: 1,
            image: "ghcr.io/acme/algo:1.0".into(),
            cpu: "100m".into(),
            mem: "64Mi".into(),
            priority: 0.5,
        })
        .context("the bench's client spec is invalid")?;
        let client = repo.create(&spec).await.context("seeding")?;
        let all: AlgorithmStatus = Catalogue::DEFAULT.iter().map(|a| (*a, true)).collect();
        repo.set_status(client.id, all, false)
            .await
            .context("switching the algorithms on")?;
        ids.push(client.id);
    }
    Ok(ids)
}

async fn count_marked(repo: &InMemoryRepository, ids: &[ClientId]) -> anyhow::Result<usize> {
    let mut marked = 0;
    for id in ids {
        marked += usize::from(
            repo.get(*id)
                .await
                .context("reading a client")?
                .need_restart,
        );
    }
    Ok(marked)
}

fn is_old(pod: &Pod, old: &HashSet<String>) -> bool {
    pod.metadata
        .uid
        .as_ref()
        .is_some_and(|uid| old.contains(uid))
}

/// Pods running, not terminating, and none of `old`.
fn running(listed: &[Pod], old: &HashSet<String>) -> usize {
    listed
        .iter()
        .filter(|p| !is_old(p, old) && p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count()
}

/// Lists alsy's pods every [`LOOK_EVERY`] until `done` says so; the last list.
async fn wait_for(
    pods: &Api<Pod>,
    since: Instant,
    mut done: impl FnMut(&[Pod]) -> bool,
) -> anyhow::Result<Vec<Pod>> {
    let params = ListParams::default().labels(MANAGED_SELECTOR);
    loop {
        let listed = pods.list(&params).await.context("listing the pods")?.items;
        if done(&listed) {
            return Ok(listed);
        }
        if since.elapsed() > GIVE_UP {
            bail!("the pods did not settle within {GIVE_UP:?}");
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

fn render(m: &Measured, grace: Duration, qps: u32) -> String {
    let mut table = Table::new(&[
        "clients × pods",
        "grace s",
        "restart pass s",
        "restarted / terminating / failed",
        "last old pod gone s",
        "last replacement Running s",
        "all acknowledged s",
    ]);
    table.row(vec![
        format!("{} × 3 = {}", m.clients, m.pods),
        grace.as_secs().to_string(),
        format!("{:.2}", m.pass.as_secs_f64()),
        format!("{} / {} / {}", m.restarted, m.terminating, m.failed),
        format!("{:.1}", m.old_gone.as_secs_f64()),
        format!("{:.1}", m.last_running.as_secs_f64()),
        format!("{:.1}", m.acknowledged.as_secs_f64()),
    ]);
    format!(
        "## 5. A restart on kube-apiserver with a {grace}-s grace period\n\n\
         {clients} clients with all three algorithms on ({pods} pods) on a real kube-apiserver with etcd \
         (envtest), the tests' stand-in kubelet running the pods and finishing each deletion {grace} s after it \
         was asked for (as a node does with the default `terminationGracePeriodSeconds`), alsy's `Watcher` and \
         `Reconciler` over `KubeRuntime` at the defaults (concurrency {CONCURRENCY}, {qps} requests/s), an \
         in-memory store. Every client is marked `need_restart`, then one pass is run as `POST /api/v1/sync` \
         runs it. Times are from the start of that pass; the bench lists the pods every {look} ms. The \
         successors are created by the watcher's rechecks (1 s, 2 s, 4 s, then every 5 s while pods \
         terminate).\n\n{}",
        table.markdown(),
        grace = grace.as_secs(),
        clients = m.clients,
        pods = m.pods,
        look = LOOK_EVERY.as_millis(),
    )
}
