//! `Gate`: holds calls until a test opens it, and tells the test when they have arrived — so a
//! test orders its steps by a condition, never by latency.

use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default)]
struct State {
    open: bool,
    arrived: usize,
}

/// A gate, closed until [`Gate::open`]; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    state: Arc<watch::Sender<State>>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every held call (and every later one) through.
    pub fn open(&self) {
        self.state.send_modify(|state| state.open = true);
    }

    /// Counts this call as arrived, then waits until the gate is open.
    pub async fn pass(&self) {
        self.state.send_modify(|state| state.arrived += 1);
        let mut open = self.state.subscribe();
        // The sender lives in `self`, so the channel never closes while we wait.
        let _ = open.wait_for(|state| state.open).await;
    }

    /// Waits until `count` calls have reached the gate.
    pub async fn arrived(&self, count: usize) {
        let mut arrived = self.state.subscribe();
        let _ = arrived.wait_for(|state| state.arrived >= count).await;
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Gate) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }
}

impl Eq for Gate {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_waits_at_the_gate_until_it_opens() {
        let gate = Gate::new();
        let call = tokio::spawn({
            let gate = gate.clone();
            async move { gate.pass().await }
        });
        gate.arrived(1).await;
        assert!(!call.is_finished(), "held while the gate is closed");
        gate.open();
        call.await.unwrap();
        gate.pass().await; // an open gate holds nobody
    }
}
