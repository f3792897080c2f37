//! Kubernetes label selectors as `labelSelector=` carries them: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
//! `k in (a,b)`, `k notin (a,b)`, joined by commas (all must hold).

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    DoesNotExist(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses a selector; the error is the message the API server would put in its 400.
    pub fn parse(raw: &str) -> Result<Selector, String> {
        split_top_level(raw)
            .into_iter()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(requirement)
            .collect::<Result<_, _>>()
            .map(Selector)
    }

    /// Whether a pod with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            // As in Kubernetes: a pod without the label matches `k!=v` and `k notin (...)`.
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        })
    }
}

/// Splits at commas outside parentheses.
fn split_top_level(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

fn requirement(part: &str) -> Result<Requirement, String> {
    let invalid = || format!("unable to parse requirement: found '{part}'");
    let key = |k: &str| {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            Err(invalid())
        } else {
            Ok(k.to_owned())
        }
    };
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key(k)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEquals(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::Equals(key(k)?, v.trim().to_owned()));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((k, values)) = part.split_once(operator) {
            let values = values
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(invalid)?
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect();
            return Ok(if negated {
                Requirement::NotIn(key(k)?, values)
            } else {
                Requirement::In(key(k)?, values)
            });
        }
    }
    Ok(Requirement::Exists(key(part)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_inequality_and_existence() {
        let pod = labels(&[("app.kubernetes.io/managed-by", "alsy"), ("tier", "a")]);
        let bare = labels(&[]);
        let selected =
            |s: &str, l: &BTreeMap<String, String>| Selector::parse(s).unwrap().matches(l);
        assert!(selected("app.kubernetes.io/managed-by=alsy", &pod));
        assert!(selected("app.kubernetes.io/managed-by==alsy,tier=a", &pod));
        assert!(!selected("app.kubernetes.io/managed-by=alsy,tier=b", &pod));
        assert!(!selected("app.kubernetes.io/managed-by=alsy", &bare));
        assert!(selected("tier!=b", &pod) && selected("tier!=b", &bare));
        assert!(!selected("tier!=a", &pod));
        assert!(selected("tier", &pod) && !selected("tier", &bare));
        assert!(!selected("!tier", &pod) && selected("!tier", &bare));
        assert!(selected("tier in (a,b)", &pod) && !selected("tier in (a,b)", &bare));
        assert!(!selected("tier notin (a, b)", &pod) && selected("tier notin (a,b)", &bare));
        assert!(selected("", &bare));
    }

    #[test]
    fn malformed_requirements_are_refused() {
        for bad in ["=alsy", "a b", "tier in a,b"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
