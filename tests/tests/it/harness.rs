//! What the test support itself promises: the `alsy` binary that tests start is built from the
//! sources under test, and the test API server's kubeconfigs go when the server does.

use std::path::Path;
use std::time::SystemTime;

use alsy_tests::kube_server::KubeServer;
use alsy_tests::process::alsy_binary;

/// The newest modification time of the files below `dir` that cargo builds `alsy` from.
fn newest_source(dir: &Path) -> Option<(SystemTime, String)> {
    let mut newest: Option<(SystemTime, String)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let found = if path.is_dir() {
            newest_source(&path)
        } else {
            let name = path.file_name()?.to_str()?;
            let built_from =
                name.ends_with(".rs") || name.ends_with(".sql") || name == "Cargo.toml";
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            modified
                .filter(|_| built_from)
                .map(|time| (time, path.display().to_string()))
        };
        if found.as_ref().map(|f| f.0) > newest.as_ref().map(|n| n.0) {
            newest = found;
        }
    }
    newest
}

#[test]
fn the_alsy_binary_tests_start_is_not_older_than_its_sources() {
    let binary = alsy_binary();
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in [
        "domain",
        "app",
        "adapters-http",
        "adapters-postgres",
        "adapters-k8s",
        "adapters-fake",
        "bin",
    ] {
        let (changed, file) = newest_source(&workspace.join(krate)).unwrap();
        assert!(
            changed <= built,
            "{} is older than {file}: tests would run code that is no longer there",
            binary.display()
        );
    }
}

#[tokio::test]
async fn the_test_servers_kubeconfigs_are_removed_with_it() {
    let server = KubeServer::start().await;
    let paths = [
        server.write_kubeconfig("one"),
        server.write_kubeconfig("two"),
    ];
    assert!(paths.iter().all(|p| p.is_file()));
    drop(server);
    for path in paths {
        assert!(!path.exists(), "{} was left behind", path.display());
    }
}
