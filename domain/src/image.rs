//! Container image references: `[registry[:port]/]repo[:tag][@digest]`, per the distribution
//! reference grammar that container runtimes use.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A syntactically valid container image reference of at most 255 characters.
///
/// Shared (`Arc<str>`): every pod of a client carries its client's value, and a pass over 100k
/// clients builds 300k pods.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(Arc<str>);

const MAX_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

impl ImageRef {
    /// Parses a reference such as `nginx`, `ghcr.io/acme/vwap:1.2`, `localhost:5000/algo@sha256:…`.
    /// The error says what is wrong, without the field name.
    pub fn parse(raw: &str) -> Result<ImageRef, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        let invalid = |why: &str| format!("`{raw}` is not a container image reference: {why}");

        let (rest, digest) = match raw.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (raw, None),
        };
        if let Some(digest) = digest
            && !is_digest(digest)
        {
            return Err(invalid(
                "the digest must look like sha256:<at least 32 hex digits>",
            ));
        }
        // A tag follows the last ':' unless that ':' belongs to a registry port (a '/' after it).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return Err(invalid(
                "the tag must be 1-128 of letters, digits, '_', '.', '-' and not start with '.' or '-'",
            ));
        }
        let mut components = name.split('/').collect::<Vec<_>>();
        if components.len() > 1 && is_registry_candidate(components[0]) {
            if !is_registry(components[0]) {
                return Err(invalid(
                    "the registry must be a host name or address, with an optional port",
                ));
            }
            components.remove(0);
        }
        if components.iter().any(|c| !is_path_component(c)) {
            return Err(invalid(
                "the repository must be lower-case letters and digits, separated by '/', '.', '_', '__' or '-'",
            ));
        }
        Ok(ImageRef(raw.into()))
    }

    /// The reference as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it pins a digest (`@sha256:…`).
    pub fn has_digest(&self) -> bool {
        self.0.contains('@')
    }

    /// The repository without tag or digest, as a container runtime resolves it: the registry
    /// in lower case (`docker.io` when none is given), then the path components, with
    /// `library/` before a Docker Hub image of one component (`nginx` is
    /// `docker.io/library/nginx`).
    pub fn repository(&self) -> (String, Vec<&str>) {
        let name = self.0.split('@').next().unwrap_or_default();
        let name = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => &name[..i],
            _ => name,
        };
        canonical_repository(name, true)
    }
}

/// `[registry/]path` as (registry in lower case, path components), Docker Hub's defaults filled
/// in; `library` says whether a lone Docker Hub component is a library image (it is for an
/// image; a namespace prefix such as `docker.io/library/` is not one).
pub(crate) fn canonical_repository(name: &str, library: bool) -> (String, Vec<&str>) {
    let mut components: Vec<&str> = name.split('/').collect();
    let registry = if components.len() > 1 && is_registry_candidate(components[0]) {
        components.remove(0).to_ascii_lowercase()
    } else {
        DOCKER_HUB.to_owned()
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => registry,
    };
    if library && registry == DOCKER_HUB && components.len() == 1 {
        components.insert(0, "library");
    }
    (registry, components)
}

const DOCKER_HUB: &str = "docker.io";

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first component names a registry if it looks like a host: it has a dot or a port, is
/// `localhost`, or has upper-case letters (never valid in a repository path).
pub(crate) fn is_registry_candidate(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

pub(crate) fn is_registry(s: &str) -> bool {
    let (host, port) = if s.starts_with('[') {
        // An IPv6 literal: `[addr]` or `[addr]:port`.
        let Some(end) = s.find(']') else {
            return false;
        };
        let (host, after) = s.split_at(end + 1);
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// `alnum+ (separator alnum+)*` with separators `.`, `_`, `__` or one or more `-`.
pub(crate) fn is_path_component(s: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &s[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_tag(s: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

fn is_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '-', '_']).all(|c| {
        c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_real_image_references() {
        let with_digest = format!("ghcr.io/acme/vwap@{DIGEST}");
        let tag_and_digest = format!("registry.example.com:5000/algo/twap:2.0.1@{DIGEST}");
        for ok in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "ghcr.io/acme/vwap:1.2.3",
            "localhost:5000/algo",
            "localhost/algo:dev",
            "registry.example.com:5000/a/b/c:v1_rc-2",
            "my-registry.local/team__x/algo.v2",
            "[::1]:5000/algo:1",
            "[fe80::1]/algo",
            "repo/a-b---c:TAG",
            with_digest.as_str(),
            tag_and_digest.as_str(),
        ] {
            assert_eq!(
                ImageRef::parse(ok).map(|i| i.to_string()),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "Nginx",
            "nginx:",
            "nginx:-tag",
            "nginx:.tag",
            "nginx@sha256:abc",
            "nginx@sha256",
            "-nginx",
            "nginx-",
            "a//b",
            "a/b/",
            "/a",
            "a..b",
            "a b",
            "a___b",
            "ghcr.io:port/a",
            "-bad.io/a",
            "nginx:tag:tag",
        ] {
            let err = ImageRef::parse(bad).unwrap_err();
            assert!(
                err.contains("not a container image reference"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn rejects_empty_and_overlong_references() {
        assert_eq!(ImageRef::parse(""), Err("must not be empty".into()));
        let long = format!("a/{}", "b".repeat(254));
        assert!(ImageRef::parse(&long).unwrap_err().contains("at most 255"));
    }

    #[test]
    fn a_tag_longer_than_128_characters_is_rejected() {
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(128))).is_ok());
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }
}
