//! Bearer tokens: who may call the API.
//!
//! The tokens file (`ALSY__AUTH__TOKENS_FILE`) has one line per token, `NAME ROLE SHA256-HEX`:
//! it holds digests, never tokens, so reading it does not let anyone call the API. A request's
//! token is hashed and compared with every digest in constant time (`subtle`), so neither the
//! answer's timing nor an early exit says how much of a guess was right. Role `read` may call
//! `GET`/`HEAD`; `write` may call everything. `/api/health`, `/api/ready`, `/metrics` and
//! `/api/openapi.json` are open. Without a tokens file every request is let through.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, Method};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `GET` and `HEAD`.
    Read,
    /// Every method.
    Write,
}

impl Role {
    /// Parses `read` or `write`.
    pub fn parse(raw: &str) -> Result<Role, String> {
        match raw {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            other => Err(format!("role {other:?} is neither read nor write")),
        }
    }

    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }
}

/// One line of the tokens file.
#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    role: Role,
    digest: [u8; 32],
}

/// The parsed tokens file.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: digests are not secrets, but there is no reason to print them.
        let names: Vec<&str> = self.entries.iter().map(|e| &*e.name).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

/// A token name: 1–64 of letters, digits, `.`, `_`, `-` (it goes into every access log line).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token name {name:?} must be 1-64 letters, digits, '.', '_' or '-'"
        ))
    }
}

/// The SHA-256 of a token, in lower-case hex: what the tokens file holds.
pub fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The tokens file line for a token.
pub fn file_line(name: &str, role: Role, token: &str) -> String {
    format!("{name} {} {}", role.as_str(), digest_hex(token))
}

impl Tokens {
    /// Parses a tokens file: `NAME ROLE SHA256-HEX` per line; blank lines and lines starting
    /// with `#` are skipped. Errors name the line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries: Vec<Entry> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, role, digest] = fields[..] else {
                return Err(format!(
                    "line {number}: expected NAME ROLE SHA256-HEX, found {} fields",
                    fields.len()
                ));
            };
            check_name(name).map_err(|e| format!("line {number}: {e}"))?;
            let role = Role::parse(role).map_err(|e| format!("line {number}: {e}"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(digest, &mut bytes).map_err(|_| {
                format!("line {number}: the digest must be 64 hex digits (SHA-256), not a token")
            })?;
            if entries.iter().any(|e| &*e.name == name) {
                return Err(format!("line {number}: token name {name:?} is used twice"));
            }
            entries.push(Entry {
                name: name.into(),
                role,
                digest: bytes,
            });
        }
        Ok(Tokens { entries })
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token (then every protected request is refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry whose digest is the token's, comparing with every entry in constant time.
    fn find(&self, token: &str) -> Option<&Entry> {
        let digest = Sha256::digest(token.as_bytes());
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest[..].ct_eq(digest.as_slice())) {
                found = Some(entry);
            }
        }
        found
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (never the token), for the access log and the audit line.
    pub name: Arc<str>,
}

/// Why a request may not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No `Authorization: Bearer` header: 401.
    Missing,
    /// A token that is in no line of the file: 401.
    Invalid,
    /// A `read` token on a write: 403.
    ReadOnly(Arc<str>),
}

impl Denied {
    pub(crate) fn message(&self) -> String {
        match self {
            Denied::Missing => "missing bearer token (Authorization: Bearer TOKEN)".into(),
            Denied::Invalid => "invalid bearer token".into(),
            Denied::ReadOnly(name) => {
                format!("token {name:?} has role read; this request needs role write")
            }
        }
    }

    /// The `WWW-Authenticate` value for a 401 (RFC 6750), `None` for a 403.
    pub(crate) fn challenge(&self) -> Option<&'static str> {
        match self {
            Denied::Missing => Some("Bearer realm=\"alsy\""),
            Denied::Invalid => Some("Bearer realm=\"alsy\", error=\"invalid_token\""),
            Denied::ReadOnly(_) => None,
        }
    }
}

/// The paths anyone may call: probes, the metrics scrape and the API description.
pub const OPEN_PATHS: [&str; 4] = ["/api/health", "/api/ready", "/metrics", "/api/openapi.json"];

/// Decides who may call the API; the tokens can be replaced while serving. Cheap to clone.
#[derive(Clone, Default)]
pub struct Authenticator {
    /// `None`: no tokens file, the API is open.
    tokens: Option<Arc<RwLock<Arc<Tokens>>>>,
}

impl Authenticator {
    /// An open API: every request goes through.
    pub fn open() -> Authenticator {
        Authenticator { tokens: None }
    }

    /// Requests need one of `tokens`.
    pub fn with_tokens(tokens: Tokens) -> Authenticator {
        Authenticator {
            tokens: Some(Arc::new(RwLock::new(Arc::new(tokens)))),
        }
    }

    /// Whether requests need a token.
    pub fn is_enforced(&self) -> bool {
        self.tokens.is_some()
    }

    /// Replaces the tokens (the file changed). Ignored for an open API.
    pub fn replace(&self, tokens: Tokens) {
        if let Some(shared) = &self.tokens {
            *shared.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        }
    }

    /// Lets a request through (with the caller, when tokens are in force) or says why not.
    pub(crate) fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Option<Caller>, Denied> {
        let Some(shared) = &self.tokens else {
            return Ok(None);
        };
        if OPEN_PATHS.contains(&path) {
            return Ok(None);
        }
        let token = headers
            .get(warp::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(Denied::Missing)?;
        let tokens = shared
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let entry = tokens.find(token).ok_or(Denied::Invalid)?;
        // Writes are the methods the API routes to a write; any other method goes on to its
        // 404 or 405, which a read token may see.
        let write = matches!(*method, Method::POST | Method::PUT | Method::DELETE);
        if write && entry.role == Role::Read {
            return Err(Denied::ReadOnly(entry.name.clone()));
        }
        Ok(Some(Caller {
            name: entry.name.clone(),
        }))
    }
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn auth() -> Authenticator {
        let text = format!(
            "# comment\n\n{}\n{}\n",
            file_line("ci", Role::Write, "w-secret"),
            file_line("grafana", Role::Read, "r-secret")
        );
        Authenticator::with_tokens(Tokens::parse(&text).unwrap())
    }

    #[test]
    fn the_file_line_holds_the_digest_not_the_token() {
        let line = file_line("ci", Role::Write, "w-secret");
        assert!(!line.contains("w-secret"));
        assert_eq!(line.split(' ').nth(2).unwrap().len(), 64);
    }

    #[test]
    fn tokens_map_to_their_names_and_roles() {
        let auth = auth();
        let get = |value: &str| auth.check(&Method::GET, "/api/v1/clients", &headers(Some(value)));
        assert_eq!(get("Bearer w-secret").unwrap().unwrap().name.as_ref(), "ci");
        assert_eq!(
            get("bearer r-secret").unwrap().unwrap().name.as_ref(),
            "grafana"
        );
        assert_eq!(get("Bearer wrong"), Err(Denied::Invalid));
        assert_eq!(get("Basic dXNlcjpwYXNz"), Err(Denied::Missing));
        let missing = auth.check(&Method::GET, "/api/v1/clients", &headers(None));
        assert_eq!(missing, Err(Denied::Missing));
    }

    #[test]
    fn a_read_token_may_not_write() {
        let auth = auth();
        let read = headers(Some("Bearer r-secret"));
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            assert!(matches!(
                auth.check(&method, "/api/v1/clients", &read),
                Err(Denied::ReadOnly(_))
            ));
        }
        assert!(auth.check(&Method::PATCH, "/api/v1/clients", &read).is_ok());
    }

    #[test]
    fn probes_metrics_and_the_description_are_open() {
        let auth = auth();
        for path in OPEN_PATHS {
            assert_eq!(auth.check(&Method::GET, path, &headers(None)), Ok(None));
        }
        assert!(
            Authenticator::open()
                .check(&Method::DELETE, "/api/v1/clients/1", &headers(None))
                .is_ok()
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, says) in [
            ("ci write", "line 1: expected NAME ROLE SHA256-HEX"),
            ("ci admin 00", "line 1: role \"admin\""),
            (
                "\nci write my-plain-token",
                "line 2: the digest must be 64 hex digits",
            ),
            ("c i write 00", "line 1: expected"),
        ] {
            let err = Tokens::parse(text).unwrap_err();
            assert!(err.starts_with(says), "{text:?}: {err}");
        }
        let twice = format!(
            "{}\n{}",
            file_line("ci", Role::Write, "a"),
            file_line("ci", Role::Read, "b")
        );
        assert!(Tokens::parse(&twice).unwrap_err().contains("used twice"));
    }

    #[test]
    fn replaced_tokens_take_effect() {
        let auth = auth();
        auth.replace(Tokens::parse(&file_line("new", Role::Write, "n-secret")).unwrap());
        let old = auth.check(
            &Method::GET,
            "/api/v1/pods",
            &headers(Some("Bearer w-secret")),
        );
        assert_eq!(old, Err(Denied::Invalid));
        let new = auth.check(
            &Method::GET,
            "/api/v1/pods",
            &headers(Some("Bearer n-secret")),
        );
        assert!(new.is_ok());
    }
}
