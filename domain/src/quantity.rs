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

    /// The value in billionths (`1` is 1,000,000,000; `500m` is 500,000,000), rounded up as
    /// Kubernetes rounds, saturating at `u128::MAX` for absurdly large values. Exact for every
    /// quantity a pod can use, so caps compare without floating-point surprises.
    pub fn nanos(&self) -> u128 {
        let unsigned = self.0.strip_prefix('+').unwrap_or(&self.0);
        let number_len = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let mantissa = whole
            .bytes()
            .chain(fraction.bytes())
            .fold(0u128, |m, digit| {
                m.saturating_mul(10)
                    .saturating_add(u128::from(digit - b'0'))
            });
        let (exp10, exp2): (i64, u32) = match suffix {
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "" => (0, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            exponent => (
                exponent[1..]
                    .parse::<i64>()
                    .unwrap_or(if exponent[1..].starts_with('-') {
                        -1000
                    } else {
                        1000
                    })
                    .clamp(-1000, 1000),
                0,
            ),
        };
        let value = mantissa.saturating_mul(1u128 << exp2);
        let scale = exp10 + 9 - fraction.len() as i64;
        if scale >= 0 {
            let factor = u32::try_from(scale)
                .ok()
                .and_then(|s| 10u128.checked_pow(s))
                .unwrap_or(u128::MAX);
            value.saturating_mul(factor)
        } else {
            match u32::try_from(-scale)
                .ok()
                .and_then(|s| 10u128.checked_pow(s))
            {
                Some(divisor) => value.div_ceil(divisor),
                // Smaller than any representable unit but greater than zero: round up to 1.
                None => u128::from(value > 0),
            }
        }
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
    fn values_compare_exactly_across_suffixes() {
        let nanos = |q: &str| Quantity::parse(q).unwrap().nanos();
        assert_eq!(nanos("2"), nanos("2000m"));
        assert_eq!(nanos("1Ki"), nanos("1024"));
        assert_eq!(nanos("1k"), nanos("1e3"));
        assert_eq!(nanos("0.5"), nanos("500m"));
        assert_eq!(nanos(".5Gi"), nanos("512Mi"));
        assert_eq!(nanos("1E-2"), nanos("10m"));
        assert_eq!(nanos("+1"), 1_000_000_000);
        assert_eq!(nanos("1n"), 1);
        assert!(nanos("2001m") > nanos("2"));
        assert!(nanos("1G") < nanos("1Gi"));
        assert_eq!(nanos("1e-30"), 1);
        assert_eq!(nanos("9e999"), u128::MAX);
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
