//! A port for whoever watches passes from outside (the metrics): after every pass it gets the
//! report and the sizes the pass saw, so it never has to read storage or the runtime itself.

use crate::report::PassReport;

/// What a pass read, for gauges: `None` for a pass that could not read its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassFigures {
    /// Stored clients.
    pub clients: usize,
    /// Pods that should run (held clients' excluded).
    pub desired_pods: usize,
    /// Managed pods the runtime reported.
    pub observed_pods: usize,
}

/// Told about every finished pass.
pub trait PassObserver: Send + Sync {
    /// Called once per pass, after its summary is logged.
    fn pass_finished(&self, report: &PassReport, figures: Option<PassFigures>);
}
