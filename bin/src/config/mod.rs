//! alsy's settings (README.md, "Settings"): flags > `ALSY__SECTION__KEY` environment > `--config`
//! TOML file > defaults. Every setting is parsed and checked at start-up; a bad one stops the
//! process with exit code 2 and a message that names the setting the way the operator wrote it,
//! e.g.
//! `invalid setting ALSY__SYNC__INTERVAL="5 parsecs": expected a duration like 500ms, 30s, 5m`.
//! An `ALSY__*` variable that names no setting is an error too.

mod cli;
mod security;
mod settings;
mod sources;
mod values;

use std::ffi::OsString;
use std::fmt;

pub use alsy_postgres::redact_url;
pub use cli::Command;
pub use settings::{
    AuthSettings, LogFormat, LogLevel, LogSettings, RuntimeKind, RuntimeSettings, Settings,
    StorageKind, StorageSettings,
};
pub use sources::setting_names;

/// Every setting's environment variable with its default as text (`None`: unset by default):
/// [`Settings::default`] written out, for checks that a document lists the real defaults.
pub fn default_values() -> Vec<(String, Option<String>)> {
    let texts = sources::default_texts();
    sources::DEFS
        .iter()
        .map(|def| (def.env(), texts.get(def.name).cloned().flatten()))
        .collect()
}

/// Why the settings could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line is malformed, or asked for `--help`/`--version` (clap prints those).
    CommandLine(clap::Error),
    /// One or more settings are invalid; one message each.
    Invalid(Vec<String>),
}

impl ConfigError {
    /// The exit code: 0 for `--help` and `--version`, 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::CommandLine(e) => e.exit_code(),
            ConfigError::Invalid(_) => 2,
        }
    }

    /// Prints the error the way an operator should see it: clap's own rendering for the command
    /// line (help goes to stdout), one line per problem on stderr otherwise.
    pub fn print(&self) {
        match self {
            ConfigError::CommandLine(e) => {
                let _ = e.print();
            }
            ConfigError::Invalid(problems) => {
                for problem in problems {
                    eprintln!("alsy: {problem}");
                }
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CommandLine(e) => write!(f, "{e}"),
            ConfigError::Invalid(problems) => f.write_str(&problems.join("\n")),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What the process was asked to do, with the settings to do it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Serve or migrate.
    pub command: Command,
    /// The effective settings.
    pub settings: Settings,
}

/// Loads the settings from a command line (program name first) and an environment, without
/// touching the process's own; the `--config` file, if named, is read from disk.
pub fn load_from<I, T>(
    args: I,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    invocation_from(args, env).map(|i| i.settings)
}

/// Like [`load_from`], also telling which command was asked for.
pub fn invocation_from<I, T>(
    args: I,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Invocation, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let line = cli::parse(args).map_err(ConfigError::CommandLine)?;
    let mut problems = Vec::new();
    let mut layers = sources::Layers::defaults();
    if let Some(path) = &line.config_file {
        layers.file(path, &mut problems);
    }
    layers.env(env, &mut problems);
    layers.flags(line.flags.iter().map(|(name, text)| (*name, text.as_str())));
    let settings = Settings::from_layers(&layers, &mut problems);
    match settings {
        Some(settings) if problems.is_empty() => Ok(Invocation {
            command: line.command,
            settings,
        }),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

/// The process's environment as text. A variable that is not valid UTF-8 is kept (lossily) only
/// when it is one of alsy's, so its parser reports it; others are none of alsy's business.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| {
            let key = key.to_string_lossy().into_owned();
            key.to_ascii_uppercase()
                .starts_with("ALSY__")
                .then(|| (key, value.to_string_lossy().into_owned()))
        })
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
