//! The soak's pictures: SVG line charts drawn with `plotters` (SVG backend only, no system fonts:
//! text is left to the browser that shows the file).

use std::path::Path;

use anyhow::Context;
use plotters::chart::DualCoordChartContext;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::Row;

const SIZE: (u32, u32) = (900, 420);

/// A named series of `(minute, value)` points and its colour.
struct Line<'a> {
    label: &'a str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

fn line<'a>(
    label: &'a str,
    colour: RGBColor,
    rows: &[Row],
    value: impl Fn(&Row) -> f64,
) -> Line<'a> {
    Line {
        label,
        colour,
        points: rows.iter().map(|r| (r.minute, value(r))).collect(),
    }
}

/// Writes the three charts into `dir`; returns their file names.
pub fn draw_all(dir: &Path, rows: &[Row], p99_target_ms: f64) -> anyhow::Result<Vec<String>> {
    let names = ["soak-latency.svg", "soak-resources.svg", "soak-passes.svg"];
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    latency(&dir.join(names[0]), rows, p99_target_ms)?;
    resources(&dir.join(names[1]), rows)?;
    passes(&dir.join(names[2]), rows)?;
    Ok(names.map(String::from).to_vec())
}

fn canvas(path: &Path) -> anyhow::Result<DrawingArea<SVGBackend<'_>, Shift>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).context("drawing a chart")?;
    Ok(root)
}

fn x_range(rows: &[Row]) -> std::ops::Range<f64> {
    0.0..rows.last().map(|r| r.minute).unwrap_or(1.0).max(0.5)
}

fn top(lines: &[Line<'_>], floor: f64) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(floor, f64::max)
        * 1.5
}

/// p50, p99 and max per window (log scale), the p99 target, and the machine's load average.
fn latency(path: &Path, rows: &[Row], target: f64) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let lines = [
        line("p50", BLUE, rows, |r| r.p50_ms),
        line("p99", RED, rows, |r| r.p99_ms),
        line("max", MAGENTA, rows, |r| r.max_ms),
    ];
    let load = [line("load average (1 min), right axis", BLACK, rows, |r| {
        r.sample.load1
    })];
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency per 10 s window, from each request's scheduled time",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(x_range(rows), (0.1f64..top(&lines, target)).log_scale())
        .context("drawing the latency chart")?
        .set_secondary_coord(x_range(rows), 0f64..top(&load, 2.0));
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("ms (log scale)")
        .draw()
        .context("drawing the latency chart's axes")?;
    chart
        .configure_secondary_axes()
        .y_desc("load average")
        .draw()
        .context("drawing the latency chart's axes")?;
    for l in &lines {
        let colour = l.colour;
        chart
            .draw_series(LineSeries::new(l.points.clone(), colour.stroke_width(2)))
            .context("drawing a latency line")?
            .label(l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    let (x0, x1) = (x_range(rows).start, x_range(rows).end);
    chart
        .draw_series(LineSeries::new(
            vec![(x0, target), (x1, target)],
            RED.mix(0.5).stroke_width(1),
        ))
        .context("drawing the target line")?
        .label(format!("p99 target {target} ms"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.5)));
    chart
        .draw_secondary_series(LineSeries::new(load[0].points.clone(), BLACK.mix(0.35)))
        .context("drawing the load average")?
        .label(load[0].label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.35)));
    legend_and_present(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// RSS on the left axis; file descriptors, threads and pool connections on the right.
fn resources(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let rss = [line("RSS MiB (left axis)", BLUE, rows, |r| {
        r.sample.rss_mib
    })];
    let counts = [
        line("open fds", RED, rows, |r| r.sample.fds as f64),
        line("fds other than TCP connections", CYAN, rows, |r| {
            r.other_fds() as f64
        }),
        line("HTTP connections", BLACK, rows, |r| {
            r.sample.http_sockets as f64
        }),
        line("threads", GREEN, rows, |r| r.sample.threads as f64),
        line("database connections", MAGENTA, rows, |r| {
            r.sample.pool_connections as f64
        }),
    ];
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "alsy process: memory, file descriptors, threads",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(x_range(rows), 0f64..top(&rss, 1.0))
        .context("drawing the resources chart")?
        .set_secondary_coord(x_range(rows), 0f64..top(&counts, 1.0));
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("RSS, MiB")
        .draw()
        .context("drawing the resources chart's axes")?;
    chart
        .configure_secondary_axes()
        .y_desc("count")
        .draw()
        .context("drawing the resources chart's axes")?;
    let colour = rss[0].colour;
    chart
        .draw_series(LineSeries::new(
            rss[0].points.clone(),
            colour.stroke_width(2),
        ))
        .context("drawing RSS")?
        .label(rss[0].label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    for l in &counts {
        let colour = l.colour;
        chart
            .draw_secondary_series(LineSeries::new(l.points.clone(), colour.stroke_width(2)))
            .context("drawing a count")?
            .label(l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

/// Pass duration (longest and mean per window) on the left; pods created and deleted on the right.
fn passes(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let durations = [
        line("longest pass ms", RED, rows, |r| r.sample.passes.max_ms),
        line("mean pass ms", BLUE, rows, |r| r.sample.passes.mean_ms()),
    ];
    let pods = [
        line("pods created (right axis)", GREEN, rows, |r| {
            r.sample.passes.created as f64
        }),
        line("pods deleted (right axis)", MAGENTA, rows, |r| {
            r.sample.passes.deleted as f64
        }),
    ];
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Reconcile passes per 10 s window (interval 10 s + nudges)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(x_range(rows), 0f64..top(&durations, 1.0))
        .context("drawing the passes chart")?
        .set_secondary_coord(x_range(rows), 0f64..top(&pods, 10.0));
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("pass duration, ms")
        .draw()
        .context("drawing the passes chart's axes")?;
    chart
        .configure_secondary_axes()
        .y_desc("pods per window")
        .draw()
        .context("drawing the passes chart's axes")?;
    for l in &durations {
        let colour = l.colour;
        chart
            .draw_series(LineSeries::new(l.points.clone(), colour.stroke_width(2)))
            .context("drawing a pass line")?
            .label(l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    for l in &pods {
        let colour = l.colour;
        chart
            .draw_secondary_series(LineSeries::new(l.points.clone(), colour.mix(0.6)))
            .context("drawing a pod count")?
            .label(l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    legend_and_present(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

fn legend_and_present<'a, 'b: 'a, X, Y, X2, Y2>(
    chart: &mut DualCoordChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>, Cartesian2d<X2, Y2>>,
    root: &DrawingArea<SVGBackend<'b>, Shift>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    X2: Ranged<ValueType = f64>,
    Y2: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .context("drawing a legend")?;
    root.present().context("writing a chart")?;
    Ok(())
}
