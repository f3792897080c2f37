//! Starting etcd and kube-apiserver once per test run, with the flags envtest uses: free loopback
//! ports, a token file with one admin token, RBAC,
//! a service-account signing key made here (for the TokenRequest API), an audit log of every
//! request, and the ServiceAccount admission plugin off (it would want token controllers).

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use tokio::time::Instant;

use super::processes::{is_alive, spawn_for_the_run};
use super::{ADMIN_USER, ALSY_USER, Envtest};

/// A cold start on a busy machine takes far longer than the 3 s it takes on an idle one.
const START_DEADLINE: Duration = Duration::from_secs(120);

/// Every request, at `Metadata` level (who, what, which object, which answer), once complete.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n\
     omitStages: [RequestReceived, ResponseStarted]\nrules:\n- level: Metadata\n";

/// Starts both processes from `assets` and waits until the API server is ready.
pub(super) async fn start(assets: &Path) -> Result<Envtest, String> {
    let dir = std::env::temp_dir().join(format!("alsy-envtest-{}", std::process::id()));
    remove_stale_runs();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok::<PathBuf, String>(path)
    };
    let key = rcgen::KeyPair::generate().map_err(|e| format!("service-account key: {e}"))?;
    let private_key = write("sa.key", &key.serialize_pem())?;
    let public_key = write("sa.pub", &key.public_key_pem())?;
    let (admin_token, alsy_token) = (random_token(), random_token());
    let tokens = write(
        "tokens.csv",
        &format!(
            "{admin_token},{ADMIN_USER},{ADMIN_USER},system:masters\n\
             {alsy_token},{ALSY_USER},{ALSY_USER},system:masters\n"
        ),
    )?;
    let audit_policy = write("audit-policy.yaml", AUDIT_POLICY)?;
    let audit_log = dir.join("audit.log");

    let (etcd_client, etcd_peer, api_port) = (free_port()?, free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{etcd_client}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    let etcd_args = [
        "--name=envtest".to_owned(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=envtest={peer_url}"),
        "--unsafe-no-fsync".to_owned(),
    ];
    let etcd_log = dir.join("etcd.log");
    let etcd = spawn_for_the_run(&assets.join("etcd"), &etcd_args, &etcd_log)
        .map_err(|e| format!("start {}/etcd: {e}", assets.display()))?;
    let api_args = [
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={api_port}"),
        format!("--cert-dir={}", dir.join("certs").display()),
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!("--service-account-key-file={}", public_key.display()),
        format!(
            "--service-account-signing-key-file={}",
            private_key.display()
        ),
        format!("--token-auth-file={}", tokens.display()),
        "--authorization-mode=RBAC".to_owned(),
        "--allow-privileged=true".to_owned(),
        "--disable-admission-plugins=ServiceAccount".to_owned(),
        format!("--audit-policy-file={}", audit_policy.display()),
        format!("--audit-log-path={}", audit_log.display()),
    ];
    let api_log = dir.join("kube-apiserver.log");
    let api = spawn_for_the_run(&assets.join("kube-apiserver"), &api_args, &api_log)
        .map_err(|e| format!("start {}/kube-apiserver: {e}", assets.display()))?;

    let envtest = Envtest {
        url: format!("https://127.0.0.1:{api_port}"),
        ca: dir.join("certs").join("apiserver.crt"),
        admin_token,
        alsy_token,
        audit_log,
        dir,
    };
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if envtest.ca.exists() && is_ready(&envtest).await {
            return Ok(envtest);
        }
        for (pid, log) in [(etcd, &etcd_log), (api, &api_log)] {
            if !is_alive(pid) {
                return Err(format!("{} exited:\n{}", log.display(), tail(log)));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "kube-apiserver not ready after {START_DEADLINE:?}:\n{}",
                tail(&api_log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/readyz` says ok (etcd reachable, RBAC's bootstrap roles in place) and the `default`
/// namespace exists.
async fn is_ready(envtest: &Envtest) -> bool {
    let Ok(client) = envtest.try_client("default", &envtest.admin_token).await else {
        return false;
    };
    let readyz = warp::http::Request::get("/readyz").body(Vec::new());
    let Ok(readyz) = readyz else { return false };
    let ready = client.request_text(readyz).await.is_ok_and(|t| t == "ok");
    ready && Api::<Namespace>::all(client).get("default").await.is_ok()
}

/// A port free on 127.0.0.1 now (the kernel's choice for port 0). Another process could take it
/// before ours binds it; envtest itself picks ports this way.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("find a free port: {e}"))
}

/// 32 hex digits from the standard library's per-process random hash keys: the token guards a
/// loopback API server for the length of one test run.
fn random_token() -> String {
    let half = || RandomState::new().hash_one(std::process::id());
    format!("{:016x}{:016x}", half(), half())
}

/// Data directories of earlier runs whose process is gone (killed before it could clean up).
fn remove_stale_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("alsy-envtest-"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !is_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
