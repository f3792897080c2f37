//! Pods: the ones the switches ask for ([`DesiredPod`]) and the ones a runtime reports
//! ([`ObservedPod`]), both named by [`PodName`].

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use compact_str::CompactString;
use serde::Serialize;

use crate::{Algorithm, ClientId, ImageRef, Priority, Quantity, Version};

/// A pod's name: a DNS-1123 label. alsy's own pods are named `{algorithm}-{client_id}` (`vwap-1`).
///
/// Kept inline up to 24 bytes (`compact_str`), as long as a `String` and without its allocation:
/// a pass over 100k clients names 300k desired pods and copies 300k observed ones, and each of
/// them would otherwise be an allocation and a free. Longer names (a 15-letter algorithm with a
/// large id, a foreign pod) live on the heap, as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PodName(CompactString);

/// By the name's bytes, as `str` orders. Written out rather than derived: `CompactString`'s own
/// `Ord` is not inlined into other crates, and a pass compares names millions of times (its
/// `BTreeMap`s and sorts of 300k pods). In the 100k-client reconcile bench that call was 1.55
/// billion of 10.5 billion instructions (callgrind); inlined, the same compares cost 0.5 billion
/// fewer (bench/RESULTS.md, "6. Issue 12: before and after the catalogue").
impl Ord for PodName {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl PartialOrd for PodName {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PodName {
    /// The name of `algorithm`'s pod for `client`: `vwap-1`.
    pub fn of(algorithm: Algorithm, client: ClientId) -> PodName {
        // Built by hand rather than with `format!`: a pass names every desired pod.
        let mut name = CompactString::const_new("");
        name.push_str(algorithm.slug().as_str());
        // Writing to a CompactString cannot fail.
        let _ = write!(name, "-{client}");
        PodName(name)
    }

    /// Accepts any DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and
    /// ending with a letter or digit): the runtime may report pods alsy did not name.
    pub fn parse(raw: &str) -> Option<PodName> {
        let bytes = raw.as_bytes();
        let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.iter().all(|b| ok(b) || *b == b'-')
            && ok(&bytes[0])
            && ok(&bytes[bytes.len() - 1]);
        valid.then(|| PodName(CompactString::new(raw)))
    }

    /// The algorithm and client this name stands for, if it has alsy's `{algorithm}-{id}` form.
    pub fn owner(&self) -> Option<(Algorithm, ClientId)> {
        let (slug, id) = self.0.split_once('-')?;
        // Any algorithm name, catalogued or not: a pod of an algorithm dropped from the
        // catalogue is still alsy's, and the plan deletes it.
        let algorithm = Algorithm::from_slug(slug)?;
        // Only the canonical spelling names a client: digits without a leading zero (not
        // `vwap-01`, `vwap-+1` or `vwap-0`).
        let canonical = id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0');
        let id = canonical
            .then(|| id.parse().ok())
            .flatten()
            .and_then(ClientId::new)?;
        Some((algorithm, id))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pod that should run: one per algorithm a client has switched on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredPod {
    /// `{algorithm}-{client_id}`.
    pub name: PodName,
    /// The client it runs for.
    pub client_id: ClientId,
    /// The algorithm it runs.
    pub algorithm: Algorithm,
    /// The client's image.
    pub image: ImageRef,
    /// CPU request and limit.
    pub cpu: Quantity,
    /// Memory request and limit.
    pub mem: Quantity,
    /// The client's algorithm version.
    pub version: Version,
    /// The client's priority.
    pub priority: Priority,
    /// For a client marked `need_restart`: the `updated_at` read with the mark. The pod created
    /// for it carries this value, so a later pass can tell the replacement (same mark) from the
    /// pod it replaces (none, or an older mark). `None` for a client not marked.
    pub restart_mark: Option<SystemTime>,
}

/// A pod's lifecycle phase as the runtime reports it (Kubernetes' `status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PodPhase {
    /// Accepted, not yet running.
    Pending,
    /// Running.
    Running,
    /// Exited successfully and will not restart.
    Succeeded,
    /// Exited with failure and will not restart.
    Failed,
    /// The runtime cannot tell.
    Unknown,
    /// Being deleted (Kubernetes: `deletionTimestamp` set), whatever it was before: it is gone
    /// once its grace period ends. Never deleted again, and its successor waits until it is gone.
    Terminating,
}

impl PodPhase {
    /// The pod has stopped for good and must be replaced to run again.
    pub fn is_terminated(self) -> bool {
        matches!(self, PodPhase::Failed | PodPhase::Succeeded)
    }

    /// The Kubernetes spelling: `Pending`, `Running`, …
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
            PodPhase::Terminating => "Terminating",
        }
    }
}

impl fmt::Display for PodPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pod the runtime reports among those alsy manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedPod {
    /// Its name.
    pub name: PodName,
    /// Its phase.
    pub phase: PodPhase,
    /// The restart mark it was created for ([`DesiredPod::restart_mark`]), if any.
    pub restart_mark: Option<SystemTime>,
}

impl ObservedPod {
    /// A pod created for no restart mark.
    pub fn new(name: PodName, phase: PodPhase) -> ObservedPod {
        ObservedPod {
            name,
            phase,
            restart_mark: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: i64) -> ClientId {
        ClientId::new(n).unwrap()
    }

    const VWAP: Algorithm = Algorithm::named("VWAP");

    #[test]
    fn pod_names_are_lower_case_algorithm_dash_client_id() {
        assert_eq!(PodName::of(VWAP, id(1)).as_str(), "vwap-1");
        assert_eq!(PodName::of(Algorithm::named("X"), id(42)).as_str(), "x-42");
        let longest = PodName::of(Algorithm::named("A23456789012345"), id(i64::MAX));
        assert!(
            PodName::parse(longest.as_str()).is_some(),
            "always a valid DNS-1123 label"
        );
    }

    #[test]
    fn names_up_to_24_bytes_are_kept_without_an_allocation() {
        let largest_four_letter = PodName::of(VWAP, id(i64::MAX));
        assert_eq!(largest_four_letter.as_str().len(), 24);
        assert!(!largest_four_letter.0.is_heap_allocated());
        let longest = PodName::of(Algorithm::named("A23456789012345"), id(i64::MAX));
        assert!(longest.0.is_heap_allocated(), "longer names still work");
        assert_eq!(longest.owner().map(|(_, c)| c), Some(id(i64::MAX)));
    }

    #[test]
    fn owner_reads_back_what_of_wrote() {
        for algorithm in ["TWAP", "X", "POV2"].map(|n| Algorithm::parse(n).unwrap()) {
            for n in [1, 10, 17, 100, i64::MAX] {
                let name = PodName::of(algorithm, id(n));
                assert_eq!(name.owner(), Some((algorithm, id(n))), "{name}");
            }
        }
    }

    #[test]
    fn names_in_another_form_have_no_owner() {
        for other in [
            "nginx",
            "vwap-01",
            "vwap-0",
            "vwap-x",
            "2x-1",
            "vwap-1-a",
            "vwap",
            "a23456789012345x-1",
            "vwap-9223372036854775808",
        ] {
            let name = PodName::parse(other).unwrap();
            assert_eq!(name.owner(), None, "{other}");
        }
    }

    #[test]
    fn parse_accepts_only_dns_1123_labels() {
        for bad in ["", "VWAP-1", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert_eq!(PodName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_failed_and_succeeded_pods_are_terminated() {
        assert!(PodPhase::Failed.is_terminated());
        assert!(PodPhase::Succeeded.is_terminated());
        let others = [
            PodPhase::Pending,
            PodPhase::Running,
            PodPhase::Unknown,
            PodPhase::Terminating,
        ];
        for other in others {
            assert!(!other.is_terminated(), "{other}");
        }
    }
}
