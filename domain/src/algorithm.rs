//! The execution algorithms a client can run, and the row of switches that says which are on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An execution algorithm; each one that is on runs as its own pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    /// Volume-weighted average price.
    Vwap,
    /// Time-weighted average price.
    Twap,
    /// High-frequency trading.
    Hft,
}

impl Algorithm {
    /// Every algorithm, in the order the API lists them.
    pub const ALL: [Algorithm; 3] = [Algorithm::Vwap, Algorithm::Twap, Algorithm::Hft];

    /// The name the API and the logs use: `VWAP`, `TWAP`, `HFT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Vwap => "VWAP",
            Algorithm::Twap => "TWAP",
            Algorithm::Hft => "HFT",
        }
    }

    /// The lower-case form used in pod names and labels: `vwap`, `twap`, `hft`.
    pub fn slug(self) -> &'static str {
        match self {
            Algorithm::Vwap => "vwap",
            Algorithm::Twap => "twap",
            Algorithm::Hft => "hft",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm `{0}` (expected VWAP, TWAP or HFT)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Accepts either case: `VWAP` or `vwap`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| s == a.as_str() || s == a.slug())
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// A client's switches: which of its algorithms are on. Every algorithm is off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlgorithmStatus {
    /// VWAP is on.
    #[serde(rename = "VWAP")]
    pub vwap: bool,
    /// TWAP is on.
    #[serde(rename = "TWAP")]
    pub twap: bool,
    /// HFT is on.
    #[serde(rename = "HFT")]
    pub hft: bool,
}

impl AlgorithmStatus {
    /// Whether `algorithm` is switched on.
    pub fn is_on(&self, algorithm: Algorithm) -> bool {
        match algorithm {
            Algorithm::Vwap => self.vwap,
            Algorithm::Twap => self.twap,
            Algorithm::Hft => self.hft,
        }
    }

    /// Switches `algorithm` on or off.
    pub fn set(&mut self, algorithm: Algorithm, on: bool) {
        match algorithm {
            Algorithm::Vwap => self.vwap = on,
            Algorithm::Twap => self.twap = on,
            Algorithm::Hft => self.hft = on,
        }
    }

    /// The algorithms that are on, in [`Algorithm::ALL`] order.
    pub fn enabled(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL.into_iter().filter(move |a| self.is_on(*a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse_in_either_case() {
        assert_eq!("VWAP".parse(), Ok(Algorithm::Vwap));
        assert_eq!("twap".parse(), Ok(Algorithm::Twap));
        assert_eq!("HFT".parse(), Ok(Algorithm::Hft));
        assert!("Vwap".parse::<Algorithm>().is_err());
        assert!("".parse::<Algorithm>().is_err());
    }

    #[test]
    fn every_algorithm_is_off_by_default() {
        assert_eq!(AlgorithmStatus::default().enabled().count(), 0);
    }

    #[test]
    fn enabled_lists_exactly_the_switches_that_are_on() {
        let mut status = AlgorithmStatus::default();
        status.set(Algorithm::Vwap, true);
        status.set(Algorithm::Hft, true);
        assert_eq!(
            status.enabled().collect::<Vec<_>>(),
            vec![Algorithm::Vwap, Algorithm::Hft]
        );
        status.set(Algorithm::Vwap, false);
        assert_eq!(status.enabled().collect::<Vec<_>>(), vec![Algorithm::Hft]);
    }
}
