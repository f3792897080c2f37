//! The security settings' parsers: `ALSY__AUTH__TOKENS_FILE` and `ALSY__POLICY__*`.

use alsy_domain::{ImagePrefix, Quantity};

/// `ALSY__POLICY__IMAGES`: comma-separated allowed image prefixes; empty allows any image.
pub(crate) fn image_prefixes(raw: &str) -> Result<Vec<ImagePrefix>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(ImagePrefix::parse)
        .collect()
}

/// `ALSY__POLICY__MAX_CPU` / `__MAX_MEM`: a quantity, or empty for no cap.
pub(crate) fn cap(raw: &str) -> Result<Option<Quantity>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Quantity::parse(raw).map(Some)
}

/// `true` or `false` (also `1`/`0`).
pub(crate) fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_comma_separated_and_checked() {
        let prefixes = image_prefixes("ghcr.io/acme/, registry.internal:5000/algos/").unwrap();
        assert_eq!(prefixes.len(), 2);
        assert!(image_prefixes("").unwrap().is_empty());
        assert!(image_prefixes("ghcr.io/Acme/").is_err());
    }

    #[test]
    fn caps_are_quantities() {
        assert_eq!(cap("4").unwrap().map(|q| q.to_string()), Some("4".into()));
        assert_eq!(cap(" ").unwrap(), None);
        assert!(cap("lots").is_err());
        assert!(flag("yes").is_err());
    }
}
