//! The `alsy` executable as an operator runs it: found in the target folder, started with exactly
//! the environment a test gives it on a free loopback port, its output kept in a file, killed when
//! dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The built `alsy` binary: the newer of the release build (what `.ci/run` and the Dockerfile
/// build) and the debug build `cargo test --workspace` makes, so a stale one is not picked.
/// `None` if neither exists.
pub fn alsy_binary() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    ["release", "debug"]
        .into_iter()
        .map(|profile| target.join(profile).join("alsy"))
        .filter_map(|binary| {
            let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok()?;
            Some((built, binary))
        })
        .max_by_key(|(built, _)| *built)
        .map(|(_, binary)| binary)
}

/// A running `alsy` process.
pub struct AlsyProcess {
    child: Child,
    output: PathBuf,
    base: String,
}

impl AlsyProcess {
    /// Starts `binary` with only `env` (plus `ALSY__HTTP__ADDRESS` on a free port), stdout and
    /// stderr to a file next to `output_dir`'s other files.
    pub fn start(binary: &Path, env: &[(&str, &str)], output_dir: &Path) -> AlsyProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let output = output_dir.join(format!("alsy-{port}.log"));
        let out = File::create(&output).expect("create the output file");
        let child = Command::new(binary)
            .env_clear()
            .envs(env.iter().copied())
            .env("ALSY__HTTP__ADDRESS", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("share the output file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        AlsyProcess {
            child,
            output,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Everything it printed so far, a line each (JSON log lines on stdout).
    pub fn output(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for AlsyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
