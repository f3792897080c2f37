//! Kubernetes resource quantities (`500m`, `2`, `512Mi`, `1e3`), as the API server accepts them.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A Kubernetes quantity greater than zero, kept in the exact form the client gave.
///
/// Shared (`Arc<str>`): every pod of a client carries its client's value, and a pass over 100k
/// clients builds 300k pods.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity(Arc<str>);

/// Longest quantity accepted; real ones are a handful of characters.
const MAX_LEN: usize = 64;

const BINARY_SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL_SUFFIXES: [&str; 10] = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];

impl Quantity {
    /// Parses `<sign><digits>[.<digits>]<suffix>` per Kubernetes' quantity grammar and rejects
    /// zero and negative values. The error says what is wrong, without the field name.
    pub fn parse(raw: &str) -> Result<Quantity, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        let invalid =
            || format!("`{raw}` is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 1G)");
        let (negative, unsigned) = match raw.as_bytes()[0] {
            b'-' => (true, &raw[1..]),
            b'+' => (false, &raw[1..]),
            _ => (false, raw),
        };
        let number_len = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_len);
        if !is_decimal(number) || !is_suffix(suffix) {
            return Err(invalid());
        }
        if negative || !number.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return Err("must be greater than zero".into());
        }
        Ok(Quantity(raw.into()))
    }

    /// The quantity as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `1`, `1.5`, `.5`, `5.` — digits with at most one point and at least one digit.
fn is_decimal(s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let points = s.bytes().filter(|b| *b == b'.').count();
    digits > 0 && points <= 1 && digits + points == s.len()
}

fn is_suffix(s: &str) -> bool {
    if BINARY_SUFFIXES.contains(&s) || DECIMAL_SUFFIXES.contains(&s) {
        return true;
    }
    // decimalExponent: e|E followed by a signed integer.
    let Some(exponent) = s.strip_prefix(['e', 'E']) else {
        return false;
    };
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_kubernetes_accepts() {
        for ok in [
            "500m", "2", "0.5", ".5", "5.", "512Mi", "1G", "1Gi", "100k", "1e3", "1E-2", "+1",
            "250u", "1n", "3Ei",
        ] {
            assert_eq!(
                Quantity::parse(ok).map(|q| q.to_string()),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in [
            "m", "abc", "1.2.3", "1 Gi", "1gi", "1KB", "1e", "1e+", "Mi", "1Mi ", "--1", "1,5",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(err.contains("not a Kubernetes quantity"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_zero_and_negative_values() {
        for bad in ["0", "0m", "0.000", "-1", "-500m", "0Gi"] {
            assert_eq!(
                Quantity::parse(bad),
                Err("must be greater than zero".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_empty_and_overlong_input() {
        assert_eq!(Quantity::parse(""), Err("must not be empty".into()));
        assert!(
            Quantity::parse(&"1".repeat(65))
                .unwrap_err()
                .contains("at most 64")
        );
    }
}
