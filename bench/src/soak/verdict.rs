//! The soak's pass/fail lines and its section of `RESULTS.md`.

use super::traffic::Traffic;
use super::{Final, Row, SoakArgs};
use crate::report::{Table, ms};

/// Growth is measured from this point (or the middle of a shorter run): start-up, the first
/// connections and the allocator's first arenas are not a leak.
const SETTLED_S: f64 = 120.0;
/// RSS may grow this much after settling.
const RSS_GROWTH_LIMIT: f64 = 0.05;
/// The windows whose highest RSS the growth check compares.
const RSS_WINDOW_S: f64 = 60.0;

/// One pass/fail line.
pub struct Check {
    pub name: &'static str,
    /// `None` when the run was too short to tell.
    pub passed: Option<bool>,
    pub detail: String,
}

impl Check {
    /// `PASS`/`FAIL`/`N/A`, the check, and what was measured.
    pub fn line(&self) -> String {
        let verdict = match self.passed {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "N/A ",
        };
        format!("{verdict}  {}: {}", self.name, self.detail)
    }
}

/// Index of the first sample at or after the settling point.
fn settled(rows: &[Row]) -> Option<usize> {
    let end = rows.last()?.minute * 60.0;
    let from = SETTLED_S.min(end / 2.0);
    rows.iter().position(|r| r.minute * 60.0 >= from)
}

/// RSS growth after settling, as the least-squares line through every sample from the settling
/// point on: its value at the end against its value at the settling point. The allocator hands
/// memory back between passes, so single samples swing by ±3 MiB (±8 %) with what runs at the
/// moment of the sample. Comparing two samples, or the peaks of two minutes (six samples each),
/// measures that swing as much as any growth; the line through all of them (50 in 10 minutes)
/// averages it out, and a leak, which keeps climbing, tilts it. The peaks are reported too.
struct RssGrowth {
    /// The line's value at the settling point and at the end, MiB; its slope, MiB per minute.
    fitted_start: f64,
    fitted_end: f64,
    slope_per_min: f64,
    /// How far the samples stray from the line (standard deviation), MiB.
    scatter: f64,
    early: f64,
    early_until_s: f64,
    late: f64,
    late_span_s: f64,
    growth: f64,
    /// The single sample at the settling point, and the highest one after it.
    sample: f64,
    highest: f64,
    highest_at_s: f64,
}

fn rss_growth(rows: &[Row], from: usize) -> RssGrowth {
    let at = |r: &Row| r.minute * 60.0;
    let (start, end) = (at(&rows[from]), at(&rows[rows.len() - 1]));
    // A minute each, or half of what is left after settling in a shorter run.
    let span = RSS_WINDOW_S.min((end - start) / 2.0);
    let highest_in = |lo: f64, hi: f64| {
        rows[from..]
            .iter()
            .filter(|r| (lo..=hi).contains(&at(r)))
            .map(|r| r.sample.rss_mib)
            .fold(0.0, f64::max)
    };
    let early = highest_in(start, start + span);
    let late = highest_in(end - span, end);
    let highest = rows[from..]
        .iter()
        .max_by(|a, b| a.sample.rss_mib.total_cmp(&b.sample.rss_mib))
        .unwrap_or(&rows[from]);
    let points: Vec<(f64, f64)> = rows[from..]
        .iter()
        .map(|r| (at(r), r.sample.rss_mib))
        .collect();
    let (intercept, slope) = least_squares(&points);
    let line = |t: f64| intercept + slope * t;
    let scatter = (points
        .iter()
        .map(|&(t, rss)| (rss - line(t)).powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    RssGrowth {
        fitted_start: line(start),
        fitted_end: line(end),
        slope_per_min: slope * 60.0,
        scatter,
        early,
        early_until_s: start + span,
        late,
        late_span_s: span,
        growth: line(end) / line(start) - 1.0,
        sample: rows[from].sample.rss_mib,
        highest: highest.sample.rss_mib,
        highest_at_s: at(highest),
    }
}

/// The line `y = a + b·x` closest to `points` by least squares, as `(a, b)`; flat through the
/// mean when every `x` is the same.
fn least_squares(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len().max(1) as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for &(x, y) in points {
        covariance += (x - mean_x) * (y - mean_y);
        variance += (x - mean_x).powi(2);
    }
    let slope = if variance > 0.0 {
        covariance / variance
    } else {
        0.0
    };
    (mean_y - slope * mean_x, slope)
}

/// "Flat": the highest of the last three samples is at most max(3, 10 %) above the value at the
/// settling point. Sockets come and go with the load's bursts; a leak keeps climbing.
fn flat(rows: &[Row], from: usize, value: impl Fn(&Row) -> u64) -> (bool, String) {
    let base = value(&rows[from]);
    let tail = rows.len().saturating_sub(3).max(from);
    let end = rows[tail..].iter().map(&value).max().unwrap_or(base);
    let (low, high) = rows[from..]
        .iter()
        .map(&value)
        .fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let allowed = base + 3.max(base / 10);
    (
        end <= allowed,
        format!(
            "{base} at {:.0} s, {end} at the end (allowed ≤ {allowed}), range {low}–{high}",
            rows[from].minute * 60.0
        ),
    )
}

/// The windows over the target: each one when they are few, else how many and the machine's
/// load average while they ran.
fn over_detail(over: &[&Row], windows: usize) -> String {
    if over.is_empty() {
        return String::new();
    }
    if over.len() <= 6 {
        let each: Vec<String> = over
            .iter()
            .map(|r| {
                format!(
                    "{:.0} s ({} ms, load {:.2})",
                    r.minute * 60.0,
                    ms(r.p99_ms),
                    r.sample.load1
                )
            })
            .collect();
        return format!(
            "; over in {} of {windows} windows: {}",
            over.len(),
            each.join(", ")
        );
    }
    let loads = over.iter().map(|r| r.sample.load1);
    let low = loads.clone().fold(f64::MAX, f64::min);
    let high = loads.fold(0.0, f64::max);
    format!(
        "; over in {} of {windows} windows, while the load average was {low:.2}–{high:.2}",
        over.len()
    )
}

/// The five checks the issue asks for.
pub fn checks(rows: &[Row], traffic: &Traffic, last: &Final, target: f64) -> Vec<Check> {
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    let mut out = vec![Check {
        name: "0 errors and 0 lost writes",
        passed: Some(errors == 0 && last.lost.is_empty()),
        detail: format!(
            "{errors} errors in {requests} requests{}; {} lost writes ({} writes answered 2xx, \
             {} clients checked against the database){}",
            traffic
                .first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            last.lost.len(),
            traffic.writes_ok,
            last.checked,
            last.lost
                .first()
                .map(|l| format!(
                    "; first: client {} holds {:?}, expected {:?}",
                    l.id, l.found, l.expected
                ))
                .unwrap_or_default()
        ),
    }];
    let over: Vec<&Row> = rows.iter().filter(|r| r.p99_ms > target).collect();
    let worst = rows.iter().max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    out.push(Check {
        name: "p99 ≤ 20 ms in every window",
        passed: Some(over.is_empty() && !rows.is_empty()),
        detail: match worst {
            None => "no windows".into(),
            Some(w) => format!(
                "worst p99 {} ms in the window ending at {:.0} s (load average {:.2}){}",
                ms(w.p99_ms),
                w.minute * 60.0,
                w.sample.load1,
                over_detail(&over, rows.len())
            ),
        },
    });
    match settled(rows) {
        Some(from) if from + 1 < rows.len() => {
            let rss = rss_growth(rows, from);
            out.push(Check {
                name: "RSS after minute 2 grows ≤ 5 %",
                passed: Some(rss.growth <= RSS_GROWTH_LIMIT),
                detail: format!(
                    "the least-squares line through the {} samples from {:.0} s on goes from \
                     {:.1} to {:.1} MiB ({:+.1} %, {:+.2} MiB per minute; samples within ±{:.1} \
                     MiB of it, one standard deviation). For reference: highest {:.1} MiB in \
                     {:.0}–{:.0} s, highest {:.1} MiB in the last {:.0} s ({:+.1} %); {:.1} MiB at \
                     the end, {:.1} MiB after the final pass; against the single sample at {:.0} s \
                     ({:.1} MiB) the highest after it, {:.1} MiB at {:.0} s, is {:+.1} %",
                    rows.len() - from,
                    rows[from].minute * 60.0,
                    rss.fitted_start,
                    rss.fitted_end,
                    rss.growth * 100.0,
                    rss.slope_per_min,
                    rss.scatter,
                    rss.early,
                    rows[from].minute * 60.0,
                    rss.early_until_s,
                    rss.late,
                    rss.late_span_s,
                    (rss.late / rss.early - 1.0) * 100.0,
                    rows[rows.len() - 1].sample.rss_mib,
                    last.sample.rss_mib,
                    rows[from].minute * 60.0,
                    rss.sample,
                    rss.highest,
                    rss.highest_at_s,
                    (rss.highest / rss.sample - 1.0) * 100.0,
                ),
            });
            let (fds_flat, fds) = flat(rows, from, Row::other_fds);
            let (threads_flat, threads) = flat(rows, from, |r| r.sample.threads);
            let range = |value: fn(&Row) -> u64| {
                let values = rows[from..].iter().map(value);
                let low = values.clone().min().unwrap_or(0);
                format!("{low}–{}", values.max().unwrap_or(0))
            };
            out.push(Check {
                name: "fds and threads flat",
                passed: Some(fds_flat && threads_flat),
                detail: format!(
                    "fds other than TCP connections {fds}; threads {threads}; from {:.0} s on: \
                     HTTP connections {}, database connections {}, all fds {}",
                    rows[from].minute * 60.0,
                    range(|r| r.sample.http_sockets),
                    range(|r| r.sample.db_sockets),
                    range(|r| r.sample.fds),
                ),
            });
        }
        _ => {
            for name in ["RSS after minute 2 grows ≤ 5 %", "fds and threads flat"] {
                out.push(Check {
                    name,
                    passed: None,
                    detail: "the run is too short to tell (fewer than two samples after settling)"
                        .into(),
                });
            }
        }
    }
    out.push(Check {
        name: "observed = desired at the end",
        passed: Some(
            last.missing == 0 && last.extra == 0 && last.pass_outcome.starts_with("completed"),
        ),
        detail: format!(
            "{} pods observed, {} desired, {} missing, {} extra, after the final pass ({})",
            last.observed, last.desired, last.missing, last.extra, last.pass_outcome
        ),
    });
    out
}

/// The soak's section of `RESULTS.md`.
pub fn markdown(
    args: &SoakArgs,
    rows: &[Row],
    traffic: &Traffic,
    last: &Final,
    checks: &[Check],
    charts: &[String],
    priority: &str,
) -> String {
    let mut table = Table::new(&[
        "t s",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "load avg",
        "alsy CPU %",
        "RSS MiB",
        "fds (HTTP/db conns)",
        "threads",
        "db conns (pg_stat_activity)",
        "passes",
        "longest pass ms",
        "pods +/−",
        "pod failures",
        "pods observed/desired",
        "WARN+ lines",
    ]);
    for r in rows {
        table.row(vec![
            format!("{:.0}", r.minute * 60.0),
            format!("{:.0}", r.requests as f64 / r.seconds.max(1e-9)),
            ms(r.p50_ms),
            ms(r.p99_ms),
            ms(r.max_ms),
            r.errors.to_string(),
            format!("{:.2}", r.sample.load1),
            format!("{:.0}", r.sample.cpu_percent),
            format!("{:.1}", r.sample.rss_mib),
            format!(
                "{} ({}/{})",
                r.sample.fds, r.sample.http_sockets, r.sample.db_sockets
            ),
            r.sample.threads.to_string(),
            r.sample.pool_connections.to_string(),
            format!(
                "{} ({} not completed)",
                r.sample.passes.count, r.sample.passes.not_completed
            ),
            format!("{:.1}", r.sample.passes.max_ms),
            format!("+{} −{}", r.sample.passes.created, r.sample.passes.deleted),
            r.sample.passes.failed.to_string(),
            format!("{}/{}", r.sample.observed_pods, r.sample.desired_pods),
            r.sample.warnings.to_string(),
        ]);
    }
    let lines: Vec<String> = checks.iter().map(Check::line).collect();
    let images: Vec<String> = charts
        .iter()
        .map(|name| format!("![{name}]({name})"))
        .collect();
    format!(
        "## 4. Soak: {minutes} minutes of the assignment's load\n\n\
         `cargo build --release -p alsy && cargo run --release -p alsy-bench -- soak --minutes {minutes}`\n\n\
         alsy release binary as a subprocess on PostgreSQL (fresh database, dropped after), fake runtime, \
         {clients} clients seeded with random switches and their pods created by a first pass before the load; \
         `ALSY__SYNC__INTERVAL=10s`, nudges with the default debounce (1 s), log level info (access log and \
         pass lines written). Load: {rate} status writes/s (each flips one switch of a client owned by one of \
         {writers} writers, so every write adds or removes a pod) and {rate} reads/s \
         (`GET /api/v1/clients/{{id}}`), each at a fixed rate with no coordinated omission: a request is sent \
         at its due time in a task of its own, and its latency runs from the due time (our own schedule, \
         wrk2's rule; percentiles by hdrhistogram). A request belongs to the window it was due in. Sampled \
         every 10 s: /proc of alsy, `/proc/loadavg`, alsy's connections in `pg_stat_activity`, its \
         `pass finished` log lines, `GET /api/v1/pods` against the pods the database asks for. \
         {writes} writes ({writes_ok} answered 2xx) and {reads} reads in all. alsy, PostgreSQL and the load \
         generator share the machine's cores with whatever else runs (see the load average); \
         scheduling priority at the start: {priority}.\n\n\
         ### Checks\n\n```\n{checks}\n```\n\n\
         ### Charts\n\n{images}\n\n\
         ### Per window\n\n{table}\n\
         After the final pass: {observed} pods observed, {desired} desired; RSS {rss:.1} MiB, {fds} fds, \
         {threads} threads.\n",
        minutes = args.minutes,
        clients = args.clients,
        rate = args.rate,
        writers = args.writers,
        writes = traffic.writes,
        writes_ok = traffic.writes_ok,
        reads = traffic.reads,
        checks = lines.join("\n"),
        images = images.join("\n"),
        table = table.markdown(),
        observed = last.observed,
        desired = last.desired,
        rss = last.sample.rss_mib,
        fds = last.sample.fds,
        threads = last.sample.threads,
    )
}

#[cfg(test)]
mod tests {
    use super::least_squares;

    #[test]
    fn least_squares_finds_the_line_through_exact_points() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 0.5 * i as f64)).collect();
        let (a, b) = least_squares(&points);
        assert!((a - 3.0).abs() < 1e-9 && (b - 0.5).abs() < 1e-9, "{a} {b}");
    }

    #[test]
    fn least_squares_averages_a_swing_out_and_keeps_a_climb() {
        // ±3 around 36 without a trend: flat; the same swing on a climb of 0.5 per step: climbs.
        let swing = |i: usize| if i.is_multiple_of(2) { 3.0 } else { -3.0 };
        let flat: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 36.0 + swing(i))).collect();
        let climb: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, 36.0 + 0.5 * i as f64 + swing(i)))
            .collect();
        assert!(least_squares(&flat).1.abs() < 0.01);
        assert!((least_squares(&climb).1 - 0.5).abs() < 0.01);
    }

    #[test]
    fn least_squares_is_flat_when_every_x_is_the_same() {
        assert_eq!(least_squares(&[(1.0, 2.0), (1.0, 4.0)]), (3.0, 0.0));
        assert_eq!(least_squares(&[]), (0.0, 0.0));
    }
}
