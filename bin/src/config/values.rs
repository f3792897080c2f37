//! Parsers for the values of settings, each returning what was expected when the text does not
//! fit, and the redaction of secrets in the database URL.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The longest duration accepted anywhere: longer ones are typos, and timers overflow far past it.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Whether a zero duration means something for this setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    /// Zero is meaningful (a debounce of zero turns nudges off).
    Allowed,
    /// Zero makes no sense (a timeout of zero).
    Refused,
}

/// A human-readable duration: `500ms`, `30s`, `5m`, `1h 30m`.
pub(crate) fn duration(raw: &str, zero: Zero) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(raw.trim())
        .map_err(|_| "expected a duration like 500ms, 30s, 5m".to_owned())?;
    if parsed.is_zero() && zero == Zero::Refused {
        return Err("must be greater than zero".into());
    }
    if parsed > MAX_DURATION {
        return Err("must be at most 365d".into());
    }
    Ok(parsed)
}

/// A whole number within `min..=max`.
pub(crate) fn count(raw: &str, min: u32, max: u32) -> Result<u32, String> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected an integer from {min} to {max}"))
}

/// An IP address and port to listen on.
pub(crate) fn address(raw: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(raw.trim())
        .map_err(|_| "expected IP:PORT, like 0.0.0.0:8080 or [::]:8080".to_owned())
}

/// One of a fixed set of lower-case words.
pub(crate) fn one_of<T: Copy>(raw: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let wanted = raw.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("expected one of {}", names.join(", "))
        })
}

/// A PostgreSQL URL, checked with the driver's own parser.
pub(crate) fn postgres_url(raw: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected a URL like postgres://user:password@host:5432/database";
    let raw = raw.trim();
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(EXPECTED.into());
    }
    let config = tokio_postgres::Config::from_str(raw).map_err(|e| {
        // The driver's messages never echo the URL, so they cannot leak the password.
        format!("{EXPECTED} ({e})")
    })?;
    if config.get_hosts().is_empty() {
        return Err(format!("{EXPECTED} (no host)"));
    }
    Ok(raw.to_owned())
}

/// A file that exists (checked at start, so a typo stops the process with exit code 2 rather
/// than surfacing as a failed connection). Empty means "not set".
pub(crate) fn file_path(raw: &str) -> Result<Option<std::path::PathBuf>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(raw);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(Some(path)),
        Ok(_) => Err("expected a file, found a directory".into()),
        Err(e) => Err(format!("cannot read the file: {e}")),
    }
}

/// A Kubernetes namespace: a DNS-1123 label. Empty means "not set".
pub(crate) fn namespace(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bytes = raw.as_bytes();
    let label_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if bytes.len() <= 63
        && bytes.iter().all(label_char)
        && ends_ok(bytes.first())
        && ends_ok(bytes.last())
    {
        Ok(Some(raw.to_owned()))
    } else {
        Err("expected a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_human_readable() {
        assert_eq!(
            duration("500ms", Zero::Refused),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(duration("5m", Zero::Refused), Ok(Duration::from_secs(300)));
        assert_eq!(
            duration("1h 30m", Zero::Refused),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(
            duration("5 parsecs", Zero::Refused),
            Err("expected a duration like 500ms, 30s, 5m".into())
        );
        assert!(duration("30", Zero::Refused).is_err());
        assert!(duration("", Zero::Refused).is_err());
    }

    #[test]
    fn zero_durations_only_where_they_mean_something() {
        assert_eq!(duration("0s", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(duration("0", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            duration("0s", Zero::Refused),
            Err("must be greater than zero".into())
        );
        assert!(duration("1000y", Zero::Allowed).is_err());
    }

    #[test]
    fn counts_have_bounds() {
        assert_eq!(count("16", 1, 1024), Ok(16));
        for bad in ["0", "1025", "-1", "x", "1.5", ""] {
            assert!(count(bad, 1, 1024).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_ip_and_port() {
        assert!(address("0.0.0.0:8080").is_ok());
        assert!(address("[::]:8080").is_ok());
        assert!(address("127.0.0.1:0").is_ok());
        for bad in ["8080", "localhost:8080", "0.0.0.0", "0.0.0.0:99999"] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choices_are_case_insensitive() {
        let kinds = [("postgres", 1), ("memory", 2)];
        assert_eq!(one_of("Memory", &kinds), Ok(2));
        assert_eq!(
            one_of("mysql", &kinds),
            Err("expected one of postgres, memory".into())
        );
    }

    #[test]
    fn postgres_urls_are_checked() {
        assert!(postgres_url("postgres://postgres@localhost:5432/postgres").is_ok());
        assert!(postgres_url("postgresql://u:p@db.internal/alsy?sslmode=disable").is_ok());
        for bad in [
            "mysql://x@y/z",
            "localhost:5432",
            "host=localhost user=x",
            "postgres://u@h:notaport/db",
        ] {
            assert!(postgres_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert_eq!(namespace(""), Ok(None));
        assert_eq!(namespace("trading-prod"), Ok(Some("trading-prod".into())));
        for bad in ["Trading", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(namespace(bad).is_err(), "{bad}");
        }
    }
}
