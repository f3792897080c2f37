//! A closed-loop HTTP load: `concurrency` workers, each sending its next request as soon as the
//! previous answer is read, over keep-alive connections, until a deadline.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Latencies in microseconds.
pub struct Latencies(pub Histogram<u64>);

impl Latencies {
    /// An empty set, from 1 µs to 60 s at 3 significant digits.
    pub fn new() -> anyhow::Result<Latencies> {
        Ok(Latencies(
            Histogram::new_with_bounds(1, 60_000_000, 3).context("creating a latency histogram")?,
        ))
    }

    /// The `q` quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest latency in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }
}

/// Which requests the workers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// `PUT /api/v1/status/{id}` only.
    Write,
    /// `GET /api/v1/clients/{id}` only.
    Read,
    /// Each request a fair coin toss between the two.
    Mixed,
}

impl Mix {
    /// Its name in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Mix::Write => "write: PUT /api/v1/status/{id}",
            Mix::Read => "read: GET /api/v1/clients/{id}",
            Mix::Mixed => "mixed 50/50",
        }
    }
}

/// What a load run saw.
pub struct LoadResult {
    /// Answers read (of any status).
    pub requests: u64,
    /// Answers that were not 2xx.
    pub non_2xx: u64,
    /// Requests that got no answer (connection errors, timeouts).
    pub transport_errors: u64,
    /// The first error seen, to make a failing run explain itself.
    pub first_error: Option<String>,
    /// From the first request to the deadline.
    pub elapsed: Duration,
    /// Latency of every answered request.
    pub latencies: Latencies,
}

impl LoadResult {
    /// Nothing measured yet.
    fn empty() -> anyhow::Result<LoadResult> {
        Ok(LoadResult {
            requests: 0,
            non_2xx: 0,
            transport_errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies: Latencies::new()?,
        })
    }

    /// Answered requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Non-2xx answers plus transport errors.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.transport_errors
    }
}

/// The load's shape.
pub struct LoadSpec {
    /// Base URL, `http://127.0.0.1:port`.
    pub base: String,
    /// Client ids to pick from, uniformly.
    pub ids: RangeInclusive<i64>,
    /// Workers.
    pub concurrency: usize,
    /// How long to keep sending.
    pub duration: Duration,
}

/// Runs `mix` until `spec.duration` has passed; every request is bounded by the client's timeout.
pub async fn closed_loop(
    client: &reqwest::Client,
    spec: &LoadSpec,
    mix: Mix,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let deadline = started + spec.duration;
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|worker| {
            let client = client.clone();
            let base = spec.base.clone();
            let ids = spec.ids.clone();
            tokio::spawn(async move {
                run_worker(client, base, ids, mix, deadline, worker as u64).await
            })
        })
        .collect();
    let mut total = LoadResult::empty()?;
    for worker in workers {
        let part = worker.await.context("a load worker panicked")??;
        total.requests += part.requests;
        total.non_2xx += part.non_2xx;
        total.transport_errors += part.transport_errors;
        total.first_error = total.first_error.or(part.first_error);
        total
            .latencies
            .0
            .add(&part.latencies.0)
            .context("merging latency histograms")?;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn run_worker(
    client: reqwest::Client,
    base: String,
    ids: RangeInclusive<i64>,
    mix: Mix,
    deadline: Instant,
    seed: u64,
) -> anyhow::Result<LoadResult> {
    let mut rng = StdRng::seed_from_u64(0xa15e ^ seed);
    let mut result = LoadResult::empty()?;
    while Instant::now() < deadline {
        let id = rng.random_range(ids.clone());
        let write = match mix {
            Mix::Write => true,
            Mix::Read => false,
            Mix::Mixed => rng.random_bool(0.5),
        };
        let request = if write {
            let body = format!(
                r#"{{"VWAP":{},"TWAP":{},"HFT":{}}}"#,
                rng.random_bool(0.5),
                rng.random_bool(0.5),
                rng.random_bool(0.5)
            );
            client
                .put(format!("{base}/api/v1/status/{id}"))
                .header("content-type", "application/json")
                .body(body)
        } else {
            client.get(format!("{base}/api/v1/clients/{id}"))
        };
        let sent = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|_| status)
            }
            Err(e) => Err(e),
        };
        let latency = sent.elapsed();
        match answer {
            Ok(status) => {
                result.requests += 1;
                result
                    .latencies
                    .0
                    .saturating_record((latency.as_micros() as u64).max(1));
                if !status.is_success() {
                    result.non_2xx += 1;
                    result
                        .first_error
                        .get_or_insert_with(|| format!("HTTP {status} on id {id}"));
                }
            }
            Err(e) => {
                result.transport_errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| format!("transport: {e}"));
            }
        }
    }
    Ok(result)
}
