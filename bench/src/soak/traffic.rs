//! The soak's traffic: status writes and reads, each kind at a fixed rate with no coordinated
//! omission (wrk2's rule, our own schedule): request `i` is due at `start + offset + i × period`
//! and is sent then in a task of its own, whether or not earlier answers have come back; its
//! latency runs from that due time to the end of the body, so a stall is charged to every
//! request it delays. Percentiles come from `hdrhistogram` (the bench's [`Latencies`]).
//!
//! Each writer owns a disjoint set of clients and writes them in a fixed cycle, flipping one
//! switch each time, so every write changes the desired pods and a client's writes are spaced a
//! whole cycle apart (far longer than the request timeout): the order of a client's writes is the
//! order they were sent, and the ledger knows which value the database must hold at the end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::load::Latencies;

/// A client's three switches, in the order VWAP, TWAP, HFT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches(pub [bool; 3]);

impl Switches {
    /// The `PUT /api/v1/status/{id}` body.
    fn body(self) -> String {
        let [vwap, twap, hft] = self.0;
        format!(r#"{{"VWAP":{vwap},"TWAP":{twap},"HFT":{hft}}}"#)
    }

    /// The same with one switch turned over.
    fn flipped(self, which: usize) -> Switches {
        let mut next = self;
        next.0[which] = !next.0[which];
        next
    }
}

/// The load's shape.
pub struct TrafficSpec {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Status writes per second, all writers together.
    pub write_rate: f64,
    /// Reads per second.
    pub read_rate: f64,
    /// Writer tasks; the clients are split between them.
    pub writers: usize,
    /// How long requests are scheduled.
    pub duration: Duration,
    /// Width of a reporting window.
    pub window: Duration,
    /// The per-request timeout the HTTP client enforces.
    pub timeout: Duration,
}

/// What one window of scheduled time saw (a request belongs to the window it was due in).
pub struct WindowLoad {
    /// Answered or failed requests due in this window.
    pub requests: u64,
    /// Latency of every answered request, from its due time.
    pub latencies: Latencies,
    /// Non-2xx answers.
    pub non_2xx: u64,
    /// Requests with no answer (connection error, timeout).
    pub transport: u64,
}

impl WindowLoad {
    fn new() -> anyhow::Result<WindowLoad> {
        Ok(WindowLoad {
            requests: 0,
            latencies: Latencies::new()?,
            non_2xx: 0,
            transport: 0,
        })
    }

    /// Non-2xx answers plus requests with no answer.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.transport
    }
}

/// The outcome of the whole load.
pub struct Traffic {
    /// One entry per window, in order.
    pub windows: Vec<WindowLoad>,
    /// Status writes sent, and answered 2xx.
    pub writes: u64,
    pub writes_ok: u64,
    /// Reads sent.
    pub reads: u64,
    /// The first failure, to make a failing run explain itself.
    pub first_error: Option<String>,
    /// What each client's switches must be at the end.
    pub ledger: Ledger,
}

/// A client's writes as far as the load knows: the last one answered 2xx (or the seeded value),
/// and the later ones whose fate is unknown (no answer, or an error status).
struct Entry {
    confirmed: (u64, Switches),
    uncertain: Vec<(u64, Switches)>,
}

/// What the database must hold for every client at the end of the load.
pub struct Ledger(HashMap<i64, Entry>);

/// A client whose stored switches are none of the values the load allows.
#[derive(Debug)]
pub struct LostWrite {
    pub id: i64,
    pub expected: Switches,
    pub found: Option<Switches>,
}

impl Ledger {
    fn new(seeded: &HashMap<i64, Switches>) -> Ledger {
        Ledger(
            seeded
                .iter()
                .map(|(&id, &s)| {
                    (
                        id,
                        Entry {
                            confirmed: (0, s),
                            uncertain: Vec::new(),
                        },
                    )
                })
                .collect(),
        )
    }

    /// Write number `seq` (counted from 1 per client) of `switches` to `id` ended, answered 2xx
    /// or not. Order of arrival does not matter: the sequence numbers decide.
    fn record(&mut self, id: i64, seq: u64, switches: Switches, ok: bool) {
        let Some(entry) = self.0.get_mut(&id) else {
            return;
        };
        if ok {
            if seq > entry.confirmed.0 {
                entry.confirmed = (seq, switches);
                entry.uncertain.retain(|(s, _)| *s > seq);
            }
        } else if seq > entry.confirmed.0 {
            entry.uncertain.push((seq, switches));
        }
    }

    /// Clients checked.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Every client whose stored value is neither its last 2xx write nor a later write whose
    /// outcome the load could not know.
    pub fn lost(&self, stored: &HashMap<i64, Switches>) -> Vec<LostWrite> {
        let mut lost: Vec<LostWrite> = self
            .0
            .iter()
            .filter_map(|(&id, entry)| {
                let found = stored.get(&id).copied();
                let allowed = found == Some(entry.confirmed.1)
                    || entry.uncertain.iter().any(|(_, s)| Some(*s) == found);
                (!allowed).then_some(LostWrite {
                    id,
                    expected: entry.confirmed.1,
                    found,
                })
            })
            .collect();
        lost.sort_by_key(|l| l.id);
        lost
    }
}

enum Sent {
    Write {
        id: i64,
        seq: u64,
        switches: Switches,
    },
    Read,
}

struct Done {
    sent: Sent,
    due: Instant,
    latency: Duration,
    outcome: Result<reqwest::StatusCode, String>,
}

/// Runs the load from `start` for `spec.duration` against clients whose switches are
/// `seeded`, and returns once every request sent has been answered or has timed out.
pub async fn run(
    http: &reqwest::Client,
    spec: &TrafficSpec,
    seeded: &HashMap<i64, Switches>,
    start: Instant,
) -> anyhow::Result<Traffic> {
    let mut ids: Vec<(i64, Switches)> = seeded.iter().map(|(&id, &s)| (id, s)).collect();
    ids.sort_by_key(|(id, _)| *id);
    ids.shuffle(&mut StdRng::seed_from_u64(0x50a4));
    let per_writer = ids.len() / spec.writers.max(1);
    let writer_period = Duration::from_secs_f64(spec.writers as f64 / spec.write_rate);
    if per_writer == 0 || writer_period * per_writer as u32 <= spec.timeout * 2 {
        bail!(
            "{} clients over {} writers at {} writes/s would write a client again within twice the \
             request timeout: the order of its writes would be unknown; use more clients or fewer writes",
            ids.len(),
            spec.writers,
            spec.write_rate
        );
    }
    let end = start + spec.duration;
    let (tx, rx) = mpsc::unbounded_channel::<Done>();
    let windows = (spec.duration.as_secs_f64() / spec.window.as_secs_f64()).ceil() as usize;
    let collector = tokio::spawn(collect(
        rx,
        Ledger::new(seeded),
        start,
        spec.window,
        windows,
    ));
    let base: Arc<str> = spec.base.as_str().into();
    for (w, owned) in ids.chunks(per_writer).take(spec.writers).enumerate() {
        let schedule = Schedule {
            first: start + writer_period.mul_f64(w as f64 / spec.writers as f64),
            period: writer_period,
            end,
        };
        tokio::spawn(writer(
            http.clone(),
            base.clone(),
            owned.to_vec(),
            schedule,
            w as u64,
            tx.clone(),
        ));
    }
    let ids_for_reads: Vec<i64> = ids.iter().map(|(id, _)| *id).collect();
    let schedule = Schedule {
        first: start,
        period: Duration::from_secs_f64(1.0 / spec.read_rate),
        end,
    };
    tokio::spawn(reader(http.clone(), base, ids_for_reads, schedule, tx));
    collector.await.context("the load collector panicked")?
}

/// Due times `first + i × period` before `end`.
struct Schedule {
    first: Instant,
    period: Duration,
    end: Instant,
}

impl Schedule {
    fn due(&self, i: u64) -> Option<Instant> {
        let at = self.first + self.period.mul_f64(i as f64);
        (at < self.end).then_some(at)
    }
}

async fn writer(
    http: reqwest::Client,
    base: Arc<str>,
    mut owned: Vec<(i64, Switches)>,
    schedule: Schedule,
    seed: u64,
    tx: mpsc::UnboundedSender<Done>,
) {
    let mut rng = StdRng::seed_from_u64(0xf11b ^ seed);
    let mut i = 0u64;
    while let Some(due) = schedule.due(i) {
        tokio::time::sleep_until(due.into()).await;
        let slot = (i % owned.len() as u64) as usize;
        let seq = i / owned.len() as u64 + 1;
        let (id, current) = owned[slot];
        let switches = current.flipped(rng.random_range(0..3));
        owned[slot].1 = switches;
        let request = http
            .put(format!("{base}/api/v1/status/{id}"))
            .header("content-type", "application/json")
            .body(switches.body());
        send(request, Sent::Write { id, seq, switches }, due, tx.clone());
        i += 1;
    }
}

async fn reader(
    http: reqwest::Client,
    base: Arc<str>,
    ids: Vec<i64>,
    schedule: Schedule,
    tx: mpsc::UnboundedSender<Done>,
) {
    let mut rng = StdRng::seed_from_u64(0x4ead);
    let mut i = 0u64;
    while let Some(due) = schedule.due(i) {
        tokio::time::sleep_until(due.into()).await;
        let id = ids[rng.random_range(0..ids.len())];
        send(
            http.get(format!("{base}/api/v1/clients/{id}")),
            Sent::Read,
            due,
            tx.clone(),
        );
        i += 1;
    }
}

/// Sends in a task of its own, so that a slow answer never delays the next due request.
fn send(
    request: reqwest::RequestBuilder,
    sent: Sent,
    due: Instant,
    tx: mpsc::UnboundedSender<Done>,
) {
    tokio::spawn(async move {
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|_| status)
            }
            Err(e) => Err(e),
        };
        let latency = due.elapsed();
        // The receiver lives until every sender is gone: a failed send cannot happen.
        let _ = tx.send(Done {
            sent,
            due,
            latency,
            outcome: outcome.map_err(|e| e.to_string()),
        });
    });
}

async fn collect(
    mut rx: mpsc::UnboundedReceiver<Done>,
    mut ledger: Ledger,
    start: Instant,
    window: Duration,
    windows: usize,
) -> anyhow::Result<Traffic> {
    let mut per_window = (0..windows)
        .map(|_| WindowLoad::new())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut writes, mut writes_ok, mut reads) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    while let Some(done) = rx.recv().await {
        let index = (done.due.duration_since(start).as_secs_f64() / window.as_secs_f64()) as usize;
        let slot = &mut per_window[index.min(windows - 1)];
        slot.requests += 1;
        let ok = match &done.outcome {
            Ok(status) => {
                slot.latencies
                    .0
                    .saturating_record((done.latency.as_micros() as u64).max(1));
                if !status.is_success() {
                    slot.non_2xx += 1;
                    first_error.get_or_insert_with(|| format!("HTTP {status}"));
                }
                status.is_success()
            }
            Err(e) => {
                slot.transport += 1;
                first_error.get_or_insert_with(|| format!("transport: {e}"));
                false
            }
        };
        match done.sent {
            Sent::Write { id, seq, switches } => {
                writes += 1;
                writes_ok += u64::from(ok);
                ledger.record(id, seq, switches, ok);
            }
            Sent::Read => reads += 1,
        }
    }
    Ok(Traffic {
        windows: per_window,
        writes,
        writes_ok,
        reads,
        first_error,
        ledger,
    })
}
