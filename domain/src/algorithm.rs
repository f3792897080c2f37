//! The execution algorithms a client can run, by name, and the switches that say which are on.
//!
//! An algorithm is only a validated name (`VWAP`, `X`, `POV2`): which names a deployment runs is
//! configuration, the [`crate::Catalogue`]. A name is at most 15 ASCII characters, so it is kept
//! inline and copied like an integer: the reconciler compares hundreds of thousands of them a pass.

use std::fmt;

use serde::{Serialize, Serializer};

/// The longest algorithm name: 15 characters, so that `{name}-{client id}` always fits a
/// 63-character DNS-1123 pod name.
const MAX_LEN: usize = 15;

/// A name's characters, zero-padded, and its length in the last byte. Read as one big-endian
/// integer, the bytes compare as the names do (a zero pads below any character), so comparing
/// two names is one integer comparison: `plan` compares hundreds of thousands a pass.
#[derive(Clone, Copy)]
struct Inline([u8; MAX_LEN + 1]);

impl Inline {
    /// A letter of the given case, then letters of that case or digits.
    const fn parse(raw: &str, lower_case: bool) -> Option<Inline> {
        const fn letter(b: u8, lower_case: bool) -> bool {
            match lower_case {
                true => b.is_ascii_lowercase(),
                false => b.is_ascii_uppercase(),
            }
        }
        let raw = raw.as_bytes();
        if raw.is_empty() || raw.len() > MAX_LEN || !letter(raw[0], lower_case) {
            return None;
        }
        let mut bytes = [0; MAX_LEN + 1];
        let mut i = 0;
        while i < raw.len() {
            if !(letter(raw[i], lower_case) || raw[i].is_ascii_digit()) {
                return None;
            }
            bytes[i] = raw[i];
            i += 1;
        }
        bytes[MAX_LEN] = raw.len() as u8;
        Some(Inline(bytes))
    }

    fn name(&self) -> &[u8] {
        &self.0[..usize::from(self.0[MAX_LEN])]
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse`), so this never falls back.
        std::str::from_utf8(self.name()).unwrap_or_default()
    }

    fn key(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// The same name with its letters in the other case.
    fn to_case(mut self, lower_case: bool) -> Inline {
        for b in &mut self.0[..MAX_LEN] {
            match lower_case {
                true => b.make_ascii_lowercase(),
                false => b.make_ascii_uppercase(),
            }
        }
        self
    }
}

impl PartialEq for Inline {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Inline {}

impl PartialOrd for Inline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Inline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::hash::Hash for Inline {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

/// An execution algorithm: a name matching `[A-Z][A-Z0-9]{0,14}`. Each one that is on for a
/// client runs as its own pod. Ordered by name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Algorithm(Inline);

/// A string that is not an algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an algorithm name (an upper-case letter, then up to 14 upper-case letters or digits)"
)]
pub struct InvalidAlgorithm(pub String);

impl Algorithm {
    /// The longest name, in characters.
    pub const MAX_LEN: usize = MAX_LEN;

    /// Parses a name: `[A-Z][A-Z0-9]{0,14}`.
    pub fn parse(raw: &str) -> Result<Algorithm, InvalidAlgorithm> {
        Inline::parse(raw, false)
            .map(Algorithm)
            .ok_or_else(|| InvalidAlgorithm(raw.to_owned()))
    }

    /// The algorithm a literal names, checked at compile time when used in a `const`.
    ///
    /// # Panics
    /// If `name` is not an algorithm name: use [`Algorithm::parse`] for anything not a literal.
    pub const fn named(name: &'static str) -> Algorithm {
        match Inline::parse(name, false) {
            Some(inline) => Algorithm(inline),
            None => panic!("not an algorithm name"),
        }
    }

    /// The algorithm whose lower-case form (pod names, labels) is `slug`: `vwap` is VWAP.
    pub fn from_slug(slug: &str) -> Option<Algorithm> {
        Inline::parse(slug, true).map(|inline| Algorithm(inline.to_case(false)))
    }

    /// The name the API, the logs and the pods' `ALGORITHM` variable use: `VWAP`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The lower-case form used in pod names and labels: `vwap`.
    pub fn slug(self) -> Slug {
        Slug(self.0.to_case(true))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Algorithm({})", self.as_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An algorithm's name in lower case, as pod names and labels spell it: `vwap`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Slug(Inline);

impl Slug {
    /// The lower-case name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.as_str())
    }
}

/// A client's switches: which algorithms are on. An algorithm without a switch is off, so the
/// default has every algorithm off.
///
/// Storage keeps the switch of an algorithm dropped from the catalogue, for when it returns; it
/// is carried here like any other, and the catalogue decides what runs
/// ([`crate::DesiredState::from_clients`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AlgorithmStatus {
    /// At most one switch per algorithm, sorted by algorithm.
    switches: Vec<(Algorithm, bool)>,
}

impl AlgorithmStatus {
    /// Whether `algorithm` is switched on.
    pub fn is_on(&self, algorithm: Algorithm) -> bool {
        self.position(algorithm).is_ok_and(|at| self.switches[at].1)
    }

    /// Switches `algorithm` on or off.
    pub fn set(&mut self, algorithm: Algorithm, on: bool) {
        match self.position(algorithm) {
            Ok(at) => self.switches[at].1 = on,
            Err(at) => self.switches.insert(at, (algorithm, on)),
        }
    }

    /// The algorithms that are on, in name order.
    pub fn enabled(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.switches.iter().filter(|(_, on)| *on).map(|(a, _)| *a)
    }

    /// Every switch given, on or off, in name order.
    pub fn switches(&self) -> impl Iterator<Item = (Algorithm, bool)> + '_ {
        self.switches.iter().copied()
    }

    fn position(&self, algorithm: Algorithm) -> Result<usize, usize> {
        self.switches.binary_search_by(|(a, _)| a.cmp(&algorithm))
    }
}

impl FromIterator<(Algorithm, bool)> for AlgorithmStatus {
    /// A later switch of the same algorithm wins.
    fn from_iter<I: IntoIterator<Item = (Algorithm, bool)>>(switches: I) -> Self {
        let mut status = AlgorithmStatus::default();
        for (algorithm, on) in switches {
            status.set(algorithm, on);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VWAP: Algorithm = Algorithm::named("VWAP");
    const HFT: Algorithm = Algorithm::named("HFT");

    #[test]
    fn names_are_an_upper_case_letter_then_up_to_14_letters_or_digits() {
        for good in ["X", "VWAP", "POV2", "A23456789012345"] {
            assert_eq!(Algorithm::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "vwap",
            "Vwap",
            "2X",
            "A234567890123456",
            "V-WAP",
            "V WAP",
            "ÄX",
        ] {
            assert_eq!(Algorithm::parse(bad), Err(InvalidAlgorithm(bad.into())));
        }
    }

    #[test]
    fn the_slug_is_the_lower_case_name_and_reads_back() {
        let pov2 = Algorithm::parse("POV2").unwrap();
        assert_eq!(pov2.slug().as_str(), "pov2");
        assert_eq!(Algorithm::from_slug("pov2"), Some(pov2));
        for bad in ["POV2", "2pov", "", "pov-2"] {
            assert_eq!(Algorithm::from_slug(bad), None, "{bad}");
        }
    }

    #[test]
    fn algorithms_are_ordered_by_name() {
        let mut names = ["VWAP", "TWAP", "HFT", "H", "HFT2", "X"]
            .map(|n| Algorithm::parse(n).unwrap())
            .to_vec();
        names.sort();
        let names: Vec<&str> = names.iter().map(Algorithm::as_str).collect();
        assert_eq!(names, ["H", "HFT", "HFT2", "TWAP", "VWAP", "X"]);
    }

    #[test]
    fn every_algorithm_is_off_by_default() {
        let status = AlgorithmStatus::default();
        assert_eq!(status.enabled().count(), 0);
        assert!(!status.is_on(VWAP));
    }

    #[test]
    fn enabled_lists_exactly_the_switches_that_are_on() {
        let mut status = AlgorithmStatus::default();
        status.set(VWAP, true);
        status.set(HFT, true);
        assert_eq!(status.enabled().collect::<Vec<_>>(), vec![HFT, VWAP]);
        status.set(VWAP, false);
        assert_eq!(status.enabled().collect::<Vec<_>>(), vec![HFT]);
        assert_eq!(status.switches().count(), 2, "an off switch is kept");
    }

    #[test]
    fn statuses_with_the_same_switches_are_equal_whatever_the_order_given() {
        let a: AlgorithmStatus = [(VWAP, true), (HFT, false)].into_iter().collect();
        let b: AlgorithmStatus = [(HFT, false), (VWAP, true)].into_iter().collect();
        assert_eq!(a, b);
    }
}
