//! Small builders shared by the tests: valid client specs and API bodies, pod names, a pod that is
//! not alsy's, and waiting on a condition with a deadline instead of sleeping.

use std::future::Future;
use std::time::Duration;

use alsy_domain::{Algorithm, AlgorithmStatus, ClientId, ClientSpec, ClientSpecInput, PodName};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

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

/// The switches of the default catalogue: VWAP, TWAP and HFT on or off.
pub fn switches(vwap: bool, twap: bool, hft: bool) -> AlgorithmStatus {
    named_switches(&[("VWAP", vwap), ("TWAP", twap), ("HFT", hft)])
}

/// Switches by algorithm name.
pub fn named_switches(switches: &[(&str, bool)]) -> AlgorithmStatus {
    switches
        .iter()
        .map(|(name, on)| (Algorithm::parse(name).expect("an algorithm name"), *on))
        .collect()
}

/// The pod name of `algorithm` for `client`.
pub fn pod(algorithm: Algorithm, client: ClientId) -> PodName {
    PodName::of(algorithm, client)
}

/// A Kubernetes pod that alsy does not manage (no alsy label): one container `main` running
/// `image`. Tests add what they need (labels, resources, a status) to the fields.
pub fn foreign_pod(name: &str, image: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// A valid client body for `name`, as the API takes it.
pub fn client_body(name: &str) -> Value {
    json!({
        "name": name,
        "version": 1,
        "image": "ghcr.io/acme/algo:1.0",
        "cpu": "500m",
        "mem": "512Mi",
        "priority": 0.26
    })
}

/// A valid client body with `field` set to `value`.
pub fn client_with(field: &str, value: Value) -> Value {
    let mut body = client_body("Jimbo");
    body[field] = value;
    body
}

/// A valid client body without `field`.
pub fn client_without(field: &str) -> Value {
    let mut body = client_body("Jimbo");
    body.as_object_mut().map(|o| o.remove(field));
    body
}

/// The slack an upper bound on a duration allows: generous, because the suite runs on loaded
/// 2-core machines. A test bounds a call by `its timeout + LOAD_MARGIN` only where the call would
/// otherwise wait far longer (a hang of 30 s or more, or forever), so the bound still proves that
/// the timeout, not the hang, ended it. How fast things are belongs to the benchmarks.
pub const LOAD_MARGIN: Duration = Duration::from_secs(10);

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
