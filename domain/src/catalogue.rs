//! The catalogue: which algorithms this deployment runs (`ALSY__SYNC__ALGORITHMS`). A desk adds
//! an algorithm by configuration, not by a new release of alsy.

use std::fmt;
use std::sync::Arc;

use crate::{Algorithm, InvalidAlgorithm};

/// The algorithms a deployment runs: 1 to 32 distinct names, in the order configured (the order
/// the API lists them). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    /// As configured.
    listed: Arc<[Algorithm]>,
    /// The same, sorted, for lookups.
    sorted: Arc<[Algorithm]>,
}

/// Why a list of names is not a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// No name at all.
    #[error("no algorithm named; expected a comma-separated list such as VWAP,TWAP,HFT")]
    Empty,
    /// More names than [`Catalogue::MAX`].
    #[error("{0} algorithms named; at most {max} are allowed", max = Catalogue::MAX)]
    TooMany(usize),
    /// A name given twice.
    #[error("algorithm {0} is named twice")]
    Duplicate(Algorithm),
    /// A name that is not one.
    #[error(transparent)]
    Invalid(#[from] InvalidAlgorithm),
}

impl Catalogue {
    /// The most algorithms a catalogue holds.
    pub const MAX: usize = 32;

    /// The catalogue when none is configured: VWAP, TWAP and HFT.
    pub const DEFAULT: [Algorithm; 3] = [
        Algorithm::named("VWAP"),
        Algorithm::named("TWAP"),
        Algorithm::named("HFT"),
    ];

    /// A catalogue of `algorithms`, in that order.
    pub fn new(algorithms: Vec<Algorithm>) -> Result<Catalogue, CatalogueError> {
        match algorithms.len() {
            0 => return Err(CatalogueError::Empty),
            n if n > Self::MAX => return Err(CatalogueError::TooMany(n)),
            _ => {}
        }
        let mut sorted = algorithms.clone();
        sorted.sort();
        if let Some(twice) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(CatalogueError::Duplicate(twice[0]));
        }
        Ok(Catalogue {
            listed: algorithms.into(),
            sorted: sorted.into(),
        })
    }

    /// Parses a comma-separated list, `VWAP,TWAP,HFT`; blanks around a name are ignored.
    pub fn parse(list: &str) -> Result<Catalogue, CatalogueError> {
        if list.trim().is_empty() {
            return Err(CatalogueError::Empty);
        }
        let algorithms = list
            .split(',')
            .map(|name| Algorithm::parse(name.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Catalogue::new(algorithms)
    }

    /// The algorithms, in the order configured.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.listed
    }

    /// Whether this deployment runs `algorithm`.
    pub fn contains(&self, algorithm: Algorithm) -> bool {
        self.sorted.binary_search(&algorithm).is_ok()
    }

    /// The algorithm a request key names: its name (`VWAP`) or its lower-case form (`vwap`),
    /// if the catalogue has it.
    pub fn find(&self, key: &str) -> Option<Algorithm> {
        Algorithm::parse(key)
            .ok()
            .or_else(|| Algorithm::from_slug(key))
            .filter(|algorithm| self.contains(*algorithm))
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue {
            listed: Catalogue::DEFAULT.into(),
            sorted: {
                let mut sorted = Catalogue::DEFAULT;
                sorted.sort();
                sorted.into()
            },
        }
    }
}

/// `VWAP,TWAP,HFT`: the form the setting takes.
impl fmt::Display for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, algorithm) in self.listed.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(algorithm.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_vwap_twap_hft_in_that_order() {
        assert_eq!(Catalogue::default().to_string(), "VWAP,TWAP,HFT");
        assert_eq!(Catalogue::parse("VWAP,TWAP,HFT"), Ok(Catalogue::default()));
    }

    #[test]
    fn a_list_keeps_its_order_and_ignores_blanks_around_names() {
        let catalogue = Catalogue::parse(" X, Y ,Z").unwrap();
        assert_eq!(catalogue.to_string(), "X,Y,Z");
        assert!(catalogue.contains(Algorithm::named("Y")));
        assert!(!catalogue.contains(Algorithm::named("VWAP")));
    }

    #[test]
    fn a_bad_list_says_what_is_wrong() {
        assert_eq!(Catalogue::parse(""), Err(CatalogueError::Empty));
        assert_eq!(Catalogue::parse(" "), Err(CatalogueError::Empty));
        assert_eq!(
            Catalogue::parse("X,,Y"),
            Err(CatalogueError::Invalid(InvalidAlgorithm(String::new())))
        );
        assert_eq!(
            Catalogue::parse("X,vwap"),
            Err(CatalogueError::Invalid(InvalidAlgorithm("vwap".into())))
        );
        assert_eq!(
            Catalogue::parse("X,Y,X"),
            Err(CatalogueError::Duplicate(Algorithm::named("X")))
        );
        let many: Vec<String> = (0..33).map(|i| format!("A{i}")).collect();
        assert_eq!(
            Catalogue::parse(&many.join(",")),
            Err(CatalogueError::TooMany(33))
        );
        assert!(Catalogue::parse(&many[..32].join(",")).is_ok());
    }

    #[test]
    fn find_takes_the_name_or_its_lower_case_form_of_a_catalogued_algorithm() {
        let catalogue = Catalogue::parse("X,POV2").unwrap();
        assert_eq!(catalogue.find("POV2"), Some(Algorithm::named("POV2")));
        assert_eq!(catalogue.find("pov2"), Some(Algorithm::named("POV2")));
        assert_eq!(catalogue.find("Pov2"), None);
        assert_eq!(catalogue.find("VWAP"), None);
    }
}
