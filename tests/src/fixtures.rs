//! Small builders shared by the tests: valid client specs, ids, pod names, a logger that keeps
//! what it logs, and waiting on a condition with a deadline instead of sleeping.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alsy_domain::{Algorithm, ClientId, ClientSpec, ClientSpecInput, PodName};
use slog::{Drain, Logger, OwnedKVList, Record, o};

/// A valid spec for a client called `name`.
pub fn spec(name: &str) -> ClientSpec {
    ClientSpec::parse(ClientSpecInput {
        name: name.into(),
        version: 1,
        image: "ghcr.io/acme/algo:1.0".into(),
        cpu: "500m".into(),
        mem: "512Mi".into(),
        priority: 0.5,
    })
    .expect("the fixture spec is valid")
}

/// The pod name of `algorithm` for `client`.
pub fn pod(algorithm: Algorithm, client: ClientId) -> PodName {
    PodName::of(algorithm, client)
}

/// One log record as a test sees it: message and every key/value, values rendered as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRecord {
    /// Level as slog names it (`INFO`, `ERRO`, …).
    pub level: String,
    /// The message.
    pub msg: String,
    /// Key/value pairs, the record's own and the logger's.
    pub fields: Vec<(String, String)>,
}

impl LoggedRecord {
    /// The value of `key`, if the record has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A slog drain that keeps every record in memory.
#[derive(Clone, Default)]
pub struct CapturedLogs {
    records: Arc<Mutex<Vec<LoggedRecord>>>,
}

impl CapturedLogs {
    /// A logger writing into this capture.
    pub fn logger(&self) -> Logger {
        Logger::root(self.clone().fuse(), o!())
    }

    /// Everything logged so far.
    pub fn records(&self) -> Vec<LoggedRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Collect(Vec<(String, String)>);

impl slog::Serializer for Collect {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        self.0.push((key.to_string(), val.to_string()));
        Ok(())
    }
}

impl Drain for CapturedLogs {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Collect(Vec::new());
        // Serialising into a Vec cannot fail.
        let _ = slog::KV::serialize(&record.kv(), record, &mut fields);
        let _ = slog::KV::serialize(values, record, &mut fields);
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(LoggedRecord {
                level: record.level().as_short_str().to_owned(),
                msg: record.msg().to_string(),
                fields: fields.0,
            });
        Ok(())
    }
}

/// Polls `condition` until it holds or `deadline` passes; panics naming `what` on timeout.
pub async fn eventually<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A test that cannot run for lack of a resource: fails when `CI=true` (CI must have it),
/// otherwise says `SKIPPED: …` on stderr, past the test harness's output capture, so a skip is
/// never mistaken for a pass.
pub fn skip_unless_ci(reason: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI=true, so {test} fails instead of skipping");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {test} did not run: {reason}"
    );
}
