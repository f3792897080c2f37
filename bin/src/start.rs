//! Starting the whole service from its settings, and stopping it gracefully: storage, pod
//! runtime, reconciler and watcher, the use cases, and the HTTP server on its listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alsy_app::{
    ClientRepository, PassLock, PodRuntime, Reconciler, Service, Watcher, WatcherHandle,
};
use alsy_fake::{FakePodRuntime, InMemoryRepository, LocalPassLock};
use anyhow::{Context, anyhow};
use slog::{Logger, error, info, o, warn};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{RuntimeKind, Settings, StorageKind};
use crate::wiring;

/// Adapters to use instead of those the settings name, so tests can hold the fakes they drive.
#[derive(Clone, Default)]
pub struct Overrides {
    /// Storage and its reconcile lock, instead of `ALSY__STORAGE__KIND`'s.
    pub storage: Option<(Arc<dyn ClientRepository>, Arc<dyn PassLock>)>,
    /// The pod runtime, instead of `ALSY__RUNTIME__KIND`'s.
    pub runtime: Option<Arc<dyn PodRuntime>>,
}

/// The running service.
pub struct Running {
    local_addr: SocketAddr,
    service: Service,
    watcher: Watcher,
    server: JoinHandle<()>,
    // Held for its Drop: the tokens file is watched while the service runs.
    _tokens_reload: Option<crate::tokens::Reloading>,
    stop_http: oneshot::Sender<()>,
    shutdown_timeout: Duration,
    log: Logger,
}

/// Builds every part from `settings` (or `overrides`), binds `ALSY__HTTP__ADDRESS`, starts the
/// watcher (its first pass runs at once) and serves the API. Fails, naming what and why, when
/// storage or the runtime cannot be reached or the address cannot be bound.
pub async fn start(
    settings: Settings,
    log: Logger,
    overrides: Overrides,
) -> anyhow::Result<Running> {
    let main_log = log.new(o!("component" => "main"));
    let (repo, lock) = match overrides.storage {
        Some(storage) => storage,
        None => match settings.storage.kind {
            StorageKind::Memory => {
                info!(
                    main_log,
                    "storage: in memory; data lasts as long as the process"
                );
                (
                    Arc::new(InMemoryRepository::new()) as Arc<dyn ClientRepository>,
                    Arc::new(LocalPassLock::new()) as Arc<dyn PassLock>,
                )
            }
            StorageKind::Postgres => wiring::postgres(&settings.storage.postgres, &log).await?,
        },
    };
    let runtime: Arc<dyn PodRuntime> = match overrides.runtime {
        Some(runtime) => runtime,
        None => match settings.runtime.kind {
            RuntimeKind::Fake => {
                info!(
                    main_log,
                    "pod runtime: fake; pods are remembered, nothing runs"
                );
                Arc::new(FakePodRuntime::new())
            }
            RuntimeKind::Kubernetes => wiring::kubernetes(&settings.k8s, &log).await?,
        },
    };
    let (auth, tokens_reload) =
        crate::tokens::authenticator(settings.auth.tokens_file.as_ref(), &main_log)?;
    let policy = Arc::new(settings.policy.clone());
    if policy.images.is_empty() {
        warn!(
            main_log,
            "no image policy (ALSY__POLICY__IMAGES): clients may run any image"
        );
    }
    let metrics = alsy_http::Metrics::new();
    // Bind before the watcher starts, so a taken port stops start-up before any pod is touched.
    let address = settings.http.address;
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (ALSY__HTTP__ADDRESS)"))?;
    let local_addr = listener.local_addr().context("reading the bound address")?;

    let reconciler = Reconciler::new(
        repo.clone(),
        runtime.clone(),
        lock,
        settings.sync.concurrency,
        &log,
    )
    .with_policy(policy.clone())
    .with_catalogue(settings.sync.algorithms.clone())
    .with_backoff(settings.sync.retry)
    .with_observer(Arc::new(metrics.clone()));
    let watcher = Watcher::start(reconciler, settings.sync.clone(), &log);
    let service = Service::new(repo, runtime, watcher.handle())
        .with_policy(policy)
        .with_catalogue(settings.sync.algorithms);
    let routes = alsy_http::routes(service.clone(), auth, metrics, &log);
    let http = settings.http;
    let (stop_http, stopped) = oneshot::channel::<()>();
    let http_log = log.clone();
    let server = tokio::spawn(async move {
        let shutdown = async {
            // A dropped sender (the `Running` dropped without shutdown) also stops the server.
            let _ = stopped.await;
        };
        alsy_http::serve(listener, routes, http, shutdown, &http_log).await;
    });
    info!(main_log, "serving the API"; "address" => %local_addr);
    Ok(Running {
        local_addr,
        service,
        watcher,
        server,
        _tokens_reload: tokens_reload,
        stop_http,
        shutdown_timeout: settings.http.shutdown_timeout,
        log: main_log,
    })
}

impl Running {
    /// The address the API listens on (the real port when the settings said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://IP:PORT` of the API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The watcher, to nudge it or run a pass directly.
    pub fn watcher(&self) -> WatcherHandle {
        self.watcher.handle()
    }

    /// The use cases, as the API calls them.
    pub fn service(&self) -> Service {
        self.service.clone()
    }

    /// Stops gracefully within `ALSY__HTTP__SHUTDOWN_TIMEOUT`: the server stops accepting and
    /// lets requests in flight finish, while the watcher takes no new pass and lets the running
    /// one finish. Past the deadline, open connections are aborted and a running pass is left to
    /// be picked up by the next start-up pass; that is logged and returned as an error.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let timeout = self.shutdown_timeout;
        info!(self.log, "shutting down";
            "timeout" => humantime::format_duration(timeout).to_string());
        let deadline = tokio::time::Instant::now() + timeout;
        let _ = self.stop_http.send(());
        let mut server = self.server;
        let (http, watcher) = tokio::join!(
            tokio::time::timeout_at(deadline, &mut server),
            tokio::time::timeout_at(deadline, self.watcher.stop()),
        );
        let mut cut_short = Vec::new();
        match http {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(self.log, "the HTTP server task failed"; "error" => %e),
            Err(_) => {
                server.abort();
                cut_short.push("requests still in flight were aborted");
            }
        }
        if watcher.is_err() {
            cut_short.push("the running reconcile pass was abandoned (the next pass redoes it)");
        }
        if cut_short.is_empty() {
            info!(self.log, "shut down cleanly");
            return Ok(());
        }
        let what = cut_short.join("; ");
        warn!(self.log, "shutdown deadline passed"; "timeout" => humantime::format_duration(timeout).to_string(), "cut_short" => &what);
        Err(anyhow!(
            "shutdown took longer than {} (ALSY__HTTP__SHUTDOWN_TIMEOUT): {what}",
            humantime::format_duration(timeout)
        ))
    }
}
