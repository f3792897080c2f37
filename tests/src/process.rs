//! The alsy binary started as a process of its own, with exactly the environment a test gives it,
//! its stdout (the JSON log) collected line by line; killed when dropped.
//!
//! The binary is built by cargo here, once per test run, rather than picked up from `target/`:
//! `cargo test --workspace` does not rebuild `target/*/alsy`, so a binary found there may be
//! older than the code under test, and a test would pass or fail on code that no longer exists.
//! Cargo's own freshness check decides; when the binary is current the build is a no-op.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;

/// Builds the `alsy` binary with `cargo build --locked -p alsy` plus `extra` (the same target
/// folder as this test run), and returns the executable cargo reports. Panics with cargo's
/// output when the build fails: a test that needs the binary cannot run without it.
fn build(extra: &[&str]) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--locked", "-p", "alsy", "--bin", "alsy"])
        .args(extra)
        .args(["--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    let command = format!("cargo build --locked -p alsy {}", extra.join(" "));
    assert!(
        output.status.success(),
        "`{command}` failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("`{command}` reported no alsy executable"))
}

/// The debug `alsy` binary, built from the current sources (a no-op when it is current).
pub fn alsy_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build(&[])).clone()
}

/// The release `alsy` binary, as the Dockerfile and `.ci/run` build it, built from the current
/// sources (a no-op after `cargo build --release --locked -p alsy`; a full release build if there
/// was none).
pub fn release_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build(&["--release"])).clone()
}

/// A running alsy process.
pub struct AlsyProcess {
    /// The process.
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The thread copying stdout into `stdout`; it ends when the pipe closes.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl AlsyProcess {
    /// Starts `binary` with `args` and only the variables of `env`.
    pub fn start(binary: &Path, env: &[(String, String)], args: &[&str]) -> AlsyProcess {
        let mut child = Command::new(binary)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the alsy binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let pipe = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        AlsyProcess {
            child,
            stdout,
            reader: Some(reader),
        }
    }

    /// Every line the process wrote, once it has exited: waits until the reader has seen the
    /// pipe close, since a process can exit before its last lines are read.
    pub fn all_lines(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }

    /// Every line written to stdout so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every stdout line, parsed as a JSON object; panics on a line that is not one.
    pub fn json_lines(&self) -> Vec<serde_json::Map<String, Value>> {
        self.lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON log line ({e}): {l}"))
            })
            .collect()
    }
}

impl Drop for AlsyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 for a process that must be told its address in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}
