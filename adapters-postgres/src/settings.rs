//! How to reach PostgreSQL and size the pool (`ALSY__STORAGE__*`), checked before anything is
//! built, and the per-connection lifetime with jitter that bb8 has no setting for.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use crate::PostgresError;

/// How long a pooled connection lives before it is replaced, before jitter. There is no setting
/// for it; one hour is what pgx (the driver of the Go services alsy replaces) uses by default.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Everything the adapter needs to know about the database and its pool. `Debug` hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// Connections kept open even when idle.
    pub min_conns: u32,
    /// Most connections open at once.
    pub max_conns: u32,
    /// How long start-up waits for the database (and the pool waits for a new connection).
    pub start_timeout: Duration,
    /// Bound on every read (get, list, desired state, ping).
    pub read_timeout: Duration,
    /// Bound on every write (create, update, set status, delete, acknowledge).
    pub write_timeout: Duration,
    /// An idle connection above `min_conns` is closed after this long; zero keeps them open.
    pub idle_timeout: Duration,
    /// A connection lives [`MAX_LIFETIME`] plus a random part of this, so they don't all expire
    /// together.
    pub lifetime_jitter: Duration,
}

impl Default for PostgresSettings {
    /// The defaults README.md's settings table lists for `ALSY__STORAGE__*`.
    fn default() -> Self {
        PostgresSettings {
            url: "postgres://postgres@localhost:5432/postgres".into(),
            min_conns: 1,
            max_conns: 10,
            start_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30 * 60),
            lifetime_jitter: Duration::from_secs(30),
        }
    }
}

impl PostgresSettings {
    /// Checks what bb8 would panic on and what makes no sense, naming the setting at fault.
    pub fn validate(&self) -> Result<(), PostgresError> {
        let invalid = |setting: &'static str, problem: &str| PostgresError::InvalidSetting {
            setting,
            problem: problem.to_owned(),
        };
        if self.max_conns == 0 {
            return Err(invalid("max_conns", "must be at least 1"));
        }
        if self.min_conns > self.max_conns {
            return Err(invalid("min_conns", "must not be greater than max_conns"));
        }
        for (setting, value) in [
            ("start_timeout", self.start_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(setting, "must be greater than zero"));
            }
        }
        if self.lifetime_jitter > MAX_LIFETIME {
            return Err(invalid("lifetime_jitter", "must be at most 1h"));
        }
        Ok(())
    }

    /// The idle timeout bb8 should apply, `None` when idle connections are kept.
    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        (!self.idle_timeout.is_zero()).then_some(self.idle_timeout)
    }

    /// The server-side `statement_timeout`: a backstop so the server also stops work the client
    /// gave up on. The client-side bound is the read or write timeout around each call.
    pub(crate) fn statement_timeout(&self) -> Duration {
        self.read_timeout.max(self.write_timeout)
    }

    /// A fresh connection's lifetime: [`MAX_LIFETIME`] plus a uniformly random share of the jitter.
    pub(crate) fn connection_lifetime(&self) -> Duration {
        MAX_LIFETIME + self.lifetime_jitter.mul_f64(random_fraction())
    }
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("min_conns", &self.min_conns)
            .field("max_conns", &self.max_conns)
            .field("start_timeout", &self.start_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("lifetime_jitter", &self.lifetime_jitter)
            .finish()
    }
}

/// The connection string with its password replaced by `***`: the one redaction used wherever a
/// database URL can reach a log line, an error or `Debug` output. A URL's `user:password@` and any
/// `password=` query parameter (parsed with the `url` crate); a `key=value` string's `password=`
/// pair; a URL that does not parse is hidden whole, since where its password is cannot be known.
pub fn redact_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    if !url.contains("://") {
        return url
            .split(' ')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={HIDDEN}"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        return format!("{scheme}://{HIDDEN} (an unparsable URL, hidden whole)");
    };
    if parsed.password().is_some() {
        // Only a URL that cannot have a password refuses one; it has none to hide then.
        let _ = parsed.set_password(Some(HIDDEN));
    }
    let is_password = |key: &str| key.eq_ignore_ascii_case("password");
    if parsed.query_pairs().any(|(key, _)| is_password(&key)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| match is_password(&key) {
                true => (key.into_owned(), HIDDEN.to_owned()),
                false => (key.into_owned(), value.into_owned()),
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// A number in `[0, 1)`. Jitter needs no strong randomness: std's `RandomState` is randomly
/// keyed per process and per instance, which spares a dependency on `rand`.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PostgresSettings {
        PostgresSettings::default()
    }

    fn rejected(settings: PostgresSettings) -> String {
        settings.validate().unwrap_err().to_string()
    }

    #[test]
    fn debug_and_redaction_hide_the_password() {
        let settings = PostgresSettings {
            url: "postgres://alsy:s3cr%40t@db.example:6432/alsy?sslmode=disable".into(),
            ..settings()
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("s3cr"), "{debug}");
        assert!(debug.contains("postgres://alsy:***@db.example:6432/alsy?sslmode=disable"));
        for kept in [
            "postgres://postgres@localhost/postgres",
            "postgres://localhost",
            "host=localhost user=postgres",
        ] {
            assert_eq!(redact_url(kept), kept);
        }
        for (url, redacted) in [
            (
                "host=db password=s3cret user=alsy",
                "host=db password=*** user=alsy",
            ),
            (
                "postgresql://u:s3cret@a,b:5433/db",
                "postgresql://u:***@a,b:5433/db",
            ),
            (
                "postgres://alsy@db/alsy?password=s3cret&sslmode=require",
                "postgres://alsy@db/alsy?password=***&sslmode=require",
            ),
            (
                "postgres://alsy:s3cret@db/alsy?PASSWORD=s3cret",
                "postgres://alsy:***@db/alsy?PASSWORD=***",
            ),
            ("postgres://a:s3cret:c@h/d", "postgres://a:***@h/d"),
            (
                "postgres://u:s3cret@[::1/db",
                "postgres://*** (an unparsable URL, hidden whole)",
            ),
        ] {
            assert_eq!(redact_url(url), redacted);
            assert!(!redact_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(settings().validate().is_ok());
    }

    #[test]
    fn max_conns_must_be_at_least_one() {
        let message = rejected(PostgresSettings {
            max_conns: 0,
            min_conns: 0,
            ..settings()
        });
        assert!(message.contains("max_conns"), "{message}");
    }

    #[test]
    fn min_conns_must_not_exceed_max_conns() {
        let message = rejected(PostgresSettings {
            min_conns: 11,
            ..settings()
        });
        assert!(message.contains("min_conns"), "{message}");
        assert!(
            PostgresSettings {
                min_conns: 0,
                ..settings()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn timeouts_must_not_be_zero() {
        let zero = Duration::ZERO;
        for (setting, broken) in [
            (
                "start_timeout",
                PostgresSettings {
                    start_timeout: zero,
                    ..settings()
                },
            ),
            (
                "read_timeout",
                PostgresSettings {
                    read_timeout: zero,
                    ..settings()
                },
            ),
            (
                "write_timeout",
                PostgresSettings {
                    write_timeout: zero,
                    ..settings()
                },
            ),
        ] {
            assert!(rejected(broken).contains(setting));
        }
    }

    #[test]
    fn a_zero_idle_timeout_keeps_idle_connections() {
        let keep = PostgresSettings {
            idle_timeout: Duration::ZERO,
            ..settings()
        };
        assert!(keep.validate().is_ok());
        assert_eq!(keep.idle_timeout(), None);
        assert_eq!(settings().idle_timeout(), Some(Duration::from_secs(1800)));
    }

    #[test]
    fn lifetimes_spread_over_the_jitter() {
        let settings = settings();
        let lifetimes: Vec<Duration> = (0..200).map(|_| settings.connection_lifetime()).collect();
        for lifetime in &lifetimes {
            assert!(*lifetime >= MAX_LIFETIME);
            assert!(*lifetime < MAX_LIFETIME + settings.lifetime_jitter);
        }
        let spread = lifetimes
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*lifetimes.iter().min().unwrap());
        assert!(spread > Duration::from_secs(15), "spread only {spread:?}");
    }

    #[test]
    fn no_jitter_means_the_base_lifetime() {
        let settings = PostgresSettings {
            lifetime_jitter: Duration::ZERO,
            ..settings()
        };
        assert_eq!(settings.connection_lifetime(), MAX_LIFETIME);
    }

    #[test]
    fn the_statement_timeout_is_the_longer_of_read_and_write() {
        let settings = PostgresSettings {
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(7),
            ..settings()
        };
        assert_eq!(settings.statement_timeout(), Duration::from_secs(7));
    }
}
