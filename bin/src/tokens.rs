//! The tokens file at run time: `alsy token` mints a token; [`load`] reads the file at start-up
//! (a missing or malformed file stops the start); `watch` re-reads it when it changes.
//!
//! Why on change rather than on SIGHUP: in Kubernetes the file is a mounted Secret, which the
//! kubelet updates in place and nobody signals; a rotated token then takes effect on its own,
//! within [`RELOAD_EVERY`]. A change that does not parse is logged at ERROR and the tokens in
//! force stay, so a typo never locks everyone out (or lets everyone in).

use std::path::{Path, PathBuf};
use std::time::Duration;

use alsy_http::{Authenticator, Role, Tokens};
use anyhow::Context;
use slog::{Logger, error, info, warn};
use tokio::task::JoinHandle;

/// How often the tokens file is checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// A fresh random token (256 bits, hex) and the tokens file line that admits it.
pub fn mint(name: &str, role: &str) -> Result<(String, String), String> {
    alsy_http::check_name(name)?;
    let role = Role::parse(role)?;
    let token = format!("alsy_{}", hex::encode(rand::random::<[u8; 32]>()));
    let line = alsy_http::file_line(name, role, &token);
    Ok((token, line))
}

/// Reads and parses the tokens file.
pub fn load(path: &Path) -> anyhow::Result<(Vec<u8>, Tokens)> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the tokens file {} (ALSY__AUTH__TOKENS_FILE)",
            path.display()
        )
    })?;
    let tokens = parse(&bytes).with_context(|| {
        format!(
            "invalid tokens file {} (ALSY__AUTH__TOKENS_FILE)",
            path.display()
        )
    })?;
    Ok((bytes, tokens))
}

fn parse(bytes: &[u8]) -> anyhow::Result<Tokens> {
    let text = std::str::from_utf8(bytes).context("the file is not UTF-8")?;
    Tokens::parse(text).map_err(anyhow::Error::msg)
}

/// The reload task; it stops when this is dropped (with the running service).
pub struct Reloading(JoinHandle<()>);

impl Drop for Reloading {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The authenticator of the settings: open without a tokens file (with a WARN), else the file's
/// tokens, kept up to date by a task that re-reads the file when it changes.
pub fn authenticator(
    path: Option<&PathBuf>,
    log: &Logger,
) -> anyhow::Result<(Authenticator, Option<Reloading>)> {
    let Some(path) = path else {
        warn!(
            log,
            "no tokens file (ALSY__AUTH__TOKENS_FILE): the API is open to anyone who can reach it"
        );
        return Ok((Authenticator::open(), None));
    };
    let (bytes, tokens) = load(path)?;
    report(&tokens, path, log, "bearer tokens required");
    let auth = Authenticator::with_tokens(tokens);
    let task = tokio::spawn(watch(path.clone(), bytes, auth.clone(), log.clone()));
    Ok((auth, Some(Reloading(task))))
}

fn report(tokens: &Tokens, path: &Path, log: &Logger, msg: &str) {
    if tokens.is_empty() {
        warn!(log, "the tokens file holds no token: every API request except the open paths is refused";
            "tokens_file" => %path.display());
    } else {
        info!(log, "{}", msg; "tokens_file" => %path.display(), "tokens" => tokens.len());
    }
}

/// Re-reads `path` every [`RELOAD_EVERY`]; when its content changed and parses, the new tokens
/// replace the old.
async fn watch(path: PathBuf, mut seen: Vec<u8>, auth: Authenticator, log: Logger) {
    let mut ticker = tokio::time::interval(RELOAD_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                error!(log, "cannot read the tokens file; the tokens in force stay";
                    "tokens_file" => %path.display(), "error" => %e);
                continue;
            }
        };
        if bytes == seen {
            continue;
        }
        match parse(&bytes) {
            Ok(tokens) => {
                report(&tokens, &path, &log, "tokens file changed: tokens reloaded");
                auth.replace(tokens);
            }
            Err(e) => {
                error!(log, "the tokens file changed but is invalid; the tokens in force stay";
                "tokens_file" => %path.display(), "error" => format!("{e:#}"))
            }
        }
        seen = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_is_admitted_by_its_line_only() {
        let (token, line) = mint("ci", "write").unwrap();
        assert!(!line.contains(&token));
        let (other, _) = mint("ci", "write").unwrap();
        assert_ne!(token, other);
        assert!(Tokens::parse(&line).is_ok());
        assert!(mint("no spaces", "write").is_err());
        assert!(mint("ci", "admin").is_err());
    }
}
