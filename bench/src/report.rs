//! Markdown output: tables, and RESULTS.md, whose sections a run replaces one by one so that
//! `alsy-bench kube` alone keeps the API and reconciliation tables of an earlier run.

use std::path::Path;

use anyhow::Context;

/// A markdown table built row by row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table in GitHub markdown.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<&str> = (0..self.header.len())
                .map(|i| cells.get(i).map(String::as_str).unwrap_or(""))
                .collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&self.header);
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// Milliseconds with a precision that suits the magnitude.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 1000.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A rate with thousands kept readable.
pub fn rate(value: f64) -> String {
    format!("{value:.0}")
}

/// A verdict cell: the value, and whether it meets its target.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

const MACHINE: &str = "## Machine (last run of api, reconcile, kube or watch)\n\n";

const TITLE: &str = "# alsy benchmark results\n\n\
Written by `cargo run --release -p alsy-bench -- all` (see README.md for what each number means).\n";

/// Replaces the given sections of the results file, keeping the sections this run did not
/// measure; replaces the machine description above the first three benches' tables only when
/// `machine` is given (the soak and the restart bench carry their own, so either alone leaves it
/// as it was).
pub fn write_results(
    path: &Path,
    machine: Option<&str>,
    sections: &[(&str, String)],
) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let old_machine = old
        .split_once(MACHINE)
        .and_then(|(_, rest)| rest.split("<!-- section:").next())
        .map(|m| m.trim().to_string() + "\n");
    let machine = machine
        .map(str::to_string)
        .or(old_machine)
        .unwrap_or_default();
    let mut out = format!("{TITLE}\n{MACHINE}{machine}\n");
    for name in [
        "api",
        "api-ab",
        "reconcile",
        "kube",
        "watch",
        "converge",
        // Written by hand (issue 10's growth factors compared); kept as it is.
        "converge-factors",
        "soak",
        "restart",
        // Written by hand (issue 12's before/after run); kept as it is.
        "catalogue",
    ] {
        let body = sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| body.clone())
            .or_else(|| section(&old, name).map(str::to_string));
        if let Some(body) = body {
            out.push_str(&format!(
                "<!-- section:{name} -->\n{}\n<!-- /section:{name} -->\n\n",
                body.trim_end()
            ));
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The body of a section of an earlier results file.
fn section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = format!("<!-- section:{name} -->\n");
    let end = format!("<!-- /section:{name} -->");
    let from = text.find(&start)? + start.len();
    let to = from + text[from..].find(&end)?;
    Some(&text[from..to])
}
