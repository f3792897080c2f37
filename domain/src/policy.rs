//! The operator's policy on what clients may run: which images (by registry and repository
//! prefix), whether an image must pin a digest, and the most CPU and memory one pod may ask for.
//! Checked on every write and again on every pass, so a policy tightened later also holds back
//! clients stored before it.

use std::fmt;

use crate::image::{canonical_repository, is_path_component, is_registry, is_registry_candidate};
use crate::{ClientSpec, ImageRef, Quantity};

/// An allowed image prefix: a registry, optionally followed by repository path components.
///
/// Matching is by whole components after normalising both sides the way a container runtime
/// resolves names: `ghcr.io/acme/` allows `ghcr.io/acme/vwap:1` but not `ghcr.io/acme-evil/x`;
/// `registry.internal:5000/algos/` does not allow `registry.internal/algos/x` (another port is
/// another registry); registry host names compare case-insensitively; `nginx` (or
/// `docker.io/library/`) allows the Docker Hub library image `nginx:1.27`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePrefix {
    raw: String,
    registry: String,
    path: Vec<String>,
}

impl ImagePrefix {
    /// Parses `registry[:port][/path[/...]][/]`, or a Docker Hub path (`acme/`, `nginx`).
    /// Tags and digests are refused: a prefix names repositories, not versions.
    pub fn parse(raw: &str) -> Result<ImagePrefix, String> {
        let invalid = |why: &str| format!("image prefix {raw:?} {why}");
        let trimmed = raw.trim();
        let namespace = trimmed.ends_with('/');
        let name = trimmed.trim_end_matches('/');
        if name.is_empty() {
            return Err(invalid("is empty"));
        }
        if name.contains('@') {
            return Err(invalid("has a digest; a prefix names repositories"));
        }
        let first = name.split('/').next().unwrap_or_default();
        let registry_only = !name.contains('/') && (is_registry_candidate(first) || namespace);
        let (registry, path) = if registry_only && is_registry_candidate(first) {
            if !is_registry(first) {
                return Err(invalid("does not start with a valid registry host"));
            }
            (first.to_ascii_lowercase(), Vec::new())
        } else if namespace && !name.contains('/') {
            // `acme/`: a Docker Hub namespace, not the library image `acme`.
            ("docker.io".to_owned(), vec![name])
        } else {
            if name.split('/').count() > 1 && is_registry_candidate(first) && !is_registry(first) {
                return Err(invalid("does not start with a valid registry host"));
            }
            canonical_repository(name, !namespace)
        };
        if let Some(bad) = path.iter().find(|c| !is_path_component(c)) {
            return Err(invalid(&format!(
                "has {bad:?}, which is not a repository path component (lower-case letters and digits, separated by '.', '_', '__' or '-'; no tag)"
            )));
        }
        Ok(ImagePrefix {
            raw: trimmed.to_owned(),
            path: path.into_iter().map(str::to_owned).collect(),
            registry,
        })
    }

    /// Whether `image` lies under this prefix.
    pub fn allows(&self, image: &ImageRef) -> bool {
        let (registry, path) = image.repository();
        registry == self.registry
            && path.len() >= self.path.len()
            && self.path.iter().zip(&path).all(|(want, got)| want == got)
    }
}

impl fmt::Display for ImagePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// What clients may run. The default allows everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allowed image prefixes; empty allows any image.
    pub images: Vec<ImagePrefix>,
    /// Images must pin a digest.
    pub require_digest: bool,
    /// The most CPU one pod may ask for.
    pub max_cpu: Option<Quantity>,
    /// The most memory one pod may ask for.
    pub max_mem: Option<Quantity>,
}

/// A rule of the [`Policy`] that a client breaks: the field, and the rule in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct PolicyViolation {
    /// The field at fault.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: String,
}

impl Policy {
    /// Whether the policy allows everything (nothing to check).
    pub fn is_open(&self) -> bool {
        self.images.is_empty()
            && !self.require_digest
            && self.max_cpu.is_none()
            && self.max_mem.is_none()
    }

    /// The first rule `spec` breaks, if any.
    pub fn check(&self, spec: &ClientSpec) -> Result<(), PolicyViolation> {
        let image = &spec.image;
        if !self.images.is_empty() && !self.images.iter().any(|p| p.allows(image)) {
            let allowed: Vec<String> = self.images.iter().map(|p| p.to_string()).collect();
            return Err(PolicyViolation {
                field: "image",
                rule: format!(
                    "{:?} is not allowed by the image policy (allowed prefixes: {})",
                    image.as_str(),
                    allowed.join(", ")
                ),
            });
        }
        if self.require_digest && !image.has_digest() {
            return Err(PolicyViolation {
                field: "image",
                rule: format!(
                    "the image policy requires a digest ({}@sha256:…)",
                    image.as_str()
                ),
            });
        }
        for (field, value, cap) in [
            ("cpu", &spec.cpu, &self.max_cpu),
            ("mem", &spec.mem, &self.max_mem),
        ] {
            if let Some(cap) = cap
                && value.nanos() > cap.nanos()
            {
                return Err(PolicyViolation {
                    field,
                    rule: format!("{value} is over the policy's cap of {cap} per pod"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientSpecInput;

    fn allows(prefix: &str, image: &str) -> bool {
        let prefix = ImagePrefix::parse(prefix).unwrap();
        prefix.allows(&ImageRef::parse(image).unwrap())
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_prefix_matches_whole_path_components() {
        assert!(allows("ghcr.io/acme/", "ghcr.io/acme/vwap:1.0"));
        assert!(allows("ghcr.io/acme/", "ghcr.io/acme/team/vwap"));
        assert!(!allows("ghcr.io/acme/", "ghcr.io/acme-evil/x"));
        assert!(!allows("ghcr.io/acme", "ghcr.io/acme-evil/x"));
        assert!(!allows("ghcr.io/acme/", "ghcr.io/acmex:1"));
        assert!(allows("ghcr.io/acme", "ghcr.io/acme/vwap"));
        assert!(!allows("ghcr.io/acme/vwap", "ghcr.io/acme/vwap-evil"));
        assert!(allows("ghcr.io/acme/vwap", "ghcr.io/acme/vwap:2"));
        assert!(!allows("ghcr.io/acme/", "evil.example/ghcr.io/acme/x"));
        assert!(!allows("ghcr.io/acme/", "ghcr.io.evil.example/acme/x"));
    }

    #[test]
    fn a_registry_port_is_part_of_the_registry() {
        let prefix = "registry.internal:5000/algos/";
        assert!(allows(prefix, "registry.internal:5000/algos/vwap:1"));
        assert!(!allows(prefix, "registry.internal/algos/vwap:1"));
        assert!(!allows(prefix, "registry.internal:5001/algos/vwap:1"));
        assert!(!allows(
            "registry.internal/algos/",
            "registry.internal:5000/algos/x"
        ));
        assert!(allows("localhost:5000", "localhost:5000/anything/at:all"));
        assert!(allows("[::1]:5000/algos/", "[::1]:5000/algos/x"));
    }

    #[test]
    fn digests_and_tags_do_not_change_the_repository() {
        let pinned = format!("ghcr.io/acme/vwap@{DIGEST}");
        let tagged_and_pinned = format!("ghcr.io/acme/vwap:1.0@{DIGEST}");
        assert!(allows("ghcr.io/acme/", &pinned));
        assert!(allows("ghcr.io/acme/", &tagged_and_pinned));
        assert!(!allows("ghcr.io/other/", &pinned));
        assert!(ImagePrefix::parse(&format!("ghcr.io/acme/vwap@{DIGEST}")).is_err());
    }

    #[test]
    fn registry_host_names_compare_case_insensitively() {
        assert!(allows("ghcr.io/acme/", "GHCR.IO/acme/vwap"));
        assert!(allows("GHCR.io/acme/", "ghcr.io/acme/vwap"));
        // Repository paths are lower case; an upper-case one cannot match anything.
        assert!(ImagePrefix::parse("ghcr.io/Acme/").is_err());
    }

    #[test]
    fn library_images_without_a_registry_resolve_to_docker_hub() {
        assert!(allows("docker.io/library/", "nginx"));
        assert!(allows("docker.io/library/", "nginx:1.27"));
        assert!(allows("docker.io/library/", "library/nginx"));
        assert!(allows("nginx", "nginx:1.27"));
        assert!(allows("nginx", "docker.io/nginx"));
        assert!(allows("nginx", "index.docker.io/library/nginx"));
        assert!(!allows("nginx", "nginx-evil"));
        assert!(!allows("nginx", "ghcr.io/nginx"));
        assert!(allows("acme/", "acme/vwap"));
        assert!(!allows("acme/", "acme"));
        assert!(!allows("docker.io/acme/", "nginx"));
        assert!(!allows("ghcr.io/acme/", "acme/vwap"));
    }

    #[test]
    fn malformed_prefixes_are_refused() {
        for bad in [
            "",
            "/",
            "ghcr.io:port/acme",
            "ghcr.io/acme//x",
            "-bad.io/a",
            "ghcr.io/acme:1.0",
        ] {
            assert!(ImagePrefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn spec(image: &str, cpu: &str, mem: &str) -> ClientSpec {
        ClientSpec::parse(ClientSpecInput {
            name: "Jimbo".into(),
            version: 1,
            image: image.into(),
            cpu: cpu.into(),
            mem: mem.into(),
            priority: 1.0,
        })
        .unwrap()
    }

    fn policy() -> Policy {
        Policy {
            images: vec![ImagePrefix::parse("ghcr.io/acme/").unwrap()],
            require_digest: false,
            max_cpu: Some(Quantity::parse("4").unwrap()),
            max_mem: Some(Quantity::parse("8Gi").unwrap()),
        }
    }

    #[test]
    fn each_rule_is_named_in_the_violation() {
        let policy = policy();
        assert_eq!(
            policy.check(&spec("ghcr.io/acme/vwap:1", "4000m", "8Gi")),
            Ok(())
        );
        let err = policy
            .check(&spec("evil.example/miner:latest", "1", "1Gi"))
            .unwrap_err();
        assert_eq!(err.field, "image");
        assert!(err.to_string().contains("image policy"), "{err}");
        let err = policy
            .check(&spec("ghcr.io/acme/vwap:1", "64", "1Gi"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cpu: 64 is over the policy's cap of 4 per pod"
        );
        let err = policy
            .check(&spec("ghcr.io/acme/vwap:1", "1", "512Gi"))
            .unwrap_err();
        assert_eq!(err.field, "mem");
        let digest = Policy {
            require_digest: true,
            ..Policy::default()
        };
        let err = digest
            .check(&spec("ghcr.io/acme/vwap:1", "1", "1Gi"))
            .unwrap_err();
        assert!(err.to_string().contains("requires a digest"), "{err}");
        let pinned = format!("ghcr.io/acme/vwap@{DIGEST}");
        assert_eq!(digest.check(&spec(&pinned, "1", "1Gi")), Ok(()));
    }

    #[test]
    fn the_default_policy_allows_anything() {
        assert!(Policy::default().is_open());
        assert_eq!(
            Policy::default().check(&spec("evil.example/x", "64", "512Gi")),
            Ok(())
        );
    }
}
