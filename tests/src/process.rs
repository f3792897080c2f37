//! The alsy binary started as a process of its own, with exactly the environment a test gives it,
//! its stdout (the JSON log) collected line by line; killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// The target directory the workspace builds into.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// `target/release/alsy`, as the Dockerfile builds it.
pub fn release_binary() -> PathBuf {
    target_dir().join("release/alsy")
}

/// A built alsy binary: the release one if there is one, else the debug one; `None` if neither
/// was built (`cargo build -p alsy`).
pub fn any_binary() -> Option<PathBuf> {
    [release_binary(), target_dir().join("debug/alsy")]
        .into_iter()
        .find(|path| path.exists())
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
