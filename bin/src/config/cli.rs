//! The command line: `alsy [FLAGS]` serves, `alsy migrate [FLAGS]` runs the migrations and
//! exits, `alsy healthcheck` asks a running service whether it is alive. Every setting has a flag
//! named after it (`sync.interval` → `--sync-interval`); flags take the same text as the
//! environment and the file, and are checked by the same parsers.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command as Clap};

use super::sources::{DEFS, default_texts};

/// What the process was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve the API and reconcile (the default).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Ask the running service's `/api/health` and exit 0 if it answers 200 (for container
    /// health checks, where the image has no curl).
    Healthcheck,
    /// Mint a bearer token and print it with its tokens file line.
    Token {
        /// The token's name (it appears in the logs).
        name: String,
        /// `read` or `write`.
        role: String,
    },
}

/// The parsed command line.
pub(crate) struct CommandLine {
    pub command: Command,
    pub config_file: Option<PathBuf>,
    pub flags: Vec<(&'static str, String)>,
}

fn heading(name: &str) -> &'static str {
    match name.split('.').next() {
        Some("sync") => "Reconciliation",
        Some("storage") => "Storage",
        Some("http") => "HTTP API",
        Some("runtime") | Some("k8s") => "Pod runtime",
        Some("auth") | Some("policy") => "Security",
        _ => "Logging",
    }
}

pub(super) fn command() -> Clap {
    let mut cli = Clap::new("alsy")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Keeps Kubernetes pods equal to per-client algorithm switches.")
        .after_help(
            "Every flag has an environment variable (shown in its help) and a key in the \
             --config file ([section] key = value); flags win over the environment, which wins \
             over the file.",
        )
        .subcommand(Clap::new("migrate").about("Run the database migrations and exit"))
        .subcommand(Clap::new("healthcheck").about(
            "Ask the service listening on --http-address for /api/health; exit 0 if it answers 200",
        ))
        .subcommand(
            Clap::new("token")
                .about("Mint a bearer token; print it and the line to add to the tokens file")
                .arg(
                    Arg::new("name")
                        .required(true)
                        .help("the token's name, shown in the logs"),
                )
                .arg(
                    Arg::new("role")
                        .required(true)
                        .value_parser(["read", "write"])
                        .help("read (GET only) or write (everything)"),
                ),
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .global(true)
                .help("TOML file of settings"),
        );
    let defaults = default_texts();
    for def in DEFS {
        let default = match defaults.get(def.name) {
            Some(Some(text)) => format!(" [default: {text}]"),
            _ => String::new(),
        };
        cli = cli.arg(
            Arg::new(def.name)
                .long(def.flag())
                .value_name("VALUE")
                .action(ArgAction::Set)
                .global(true)
                .help_heading(heading(def.name))
                .help(format!("{}{default} [env: {}]", def.help, def.env())),
        );
    }
    cli
}

/// Parses the command line (the first item is the program name).
pub(crate) fn parse<I, T>(args: I) -> Result<CommandLine, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let command = match matches.subcommand() {
        Some(("migrate", _)) => Command::Migrate,
        Some(("healthcheck", _)) => Command::Healthcheck,
        Some(("token", sub)) => Command::Token {
            name: sub.get_one::<String>("name").cloned().unwrap_or_default(),
            role: sub.get_one::<String>("role").cloned().unwrap_or_default(),
        },
        _ => Command::Serve,
    };
    let scope: &ArgMatches = match matches.subcommand() {
        Some((_, sub)) => sub,
        None => &matches,
    };
    let config_file = scope.get_one::<PathBuf>("config").cloned();
    let flags = DEFS
        .iter()
        .filter_map(|def| {
            scope
                .get_one::<String>(def.name)
                .map(|text| (def.name, text.clone()))
        })
        .collect();
    Ok(CommandLine {
        command,
        config_file,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn flags_work_before_and_after_the_subcommand() {
        let line = parse([
            "alsy",
            "--sync-interval",
            "10s",
            "migrate",
            "--storage-kind",
            "memory",
        ])
        .unwrap();
        assert_eq!(line.command, Command::Migrate);
        assert!(line.flags.contains(&("sync.interval", "10s".to_owned())));
        assert!(line.flags.contains(&("storage.kind", "memory".to_owned())));
    }

    #[test]
    fn no_subcommand_serves() {
        let line = parse(["alsy", "--config", "alsy.toml"]).unwrap();
        assert_eq!(line.command, Command::Serve);
        assert_eq!(line.config_file, Some(PathBuf::from("alsy.toml")));
    }

    #[test]
    fn token_takes_a_name_and_a_role() {
        let line = parse(["alsy", "token", "ci", "write"]).unwrap();
        assert_eq!(
            line.command,
            Command::Token {
                name: "ci".into(),
                role: "write".into()
            }
        );
        assert!(parse(["alsy", "token", "ci", "admin"]).is_err());
    }

    #[test]
    fn unknown_flags_are_errors() {
        assert!(parse(["alsy", "--sync-intervall", "5s"]).is_err());
    }
}
