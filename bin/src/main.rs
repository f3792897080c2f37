//! The `alsy` command: `alsy` serves the API and reconciles until SIGINT or SIGTERM, then shuts
//! down gracefully; `alsy migrate` applies the database migrations and exits; `alsy healthcheck`
//! exits 0 if the service on this host answers `/api/health`.
//!
//! Exit codes: 0 after a clean run, 2 for invalid settings or command line, 1 for anything else
//! (start-up failed, or shutdown overran its deadline).

use std::process::ExitCode;
use std::time::Duration;

use alsy::config::{self, Command, Invocation, Settings};
use alsy::{Overrides, logging};
use slog::{KV, Logger, Record, Serializer, error, info, o, warn};

/// jemalloc instead of glibc's malloc: with glibc, the memory a pass or a large listing frees
/// stayed in its per-thread arenas, so a soak's RSS kept rising (32.7 → 39.3 MiB in 10 minutes)
/// while the live heap stayed at 9–16 MiB (heaptrack); jemalloc hands it back. bench/README.md
/// has the measurements (mimalloc did no better than glibc there).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let Invocation { command, settings } =
        match config::invocation_from(std::env::args_os(), config::process_env()) {
            Ok(invocation) => invocation,
            Err(e) => {
                e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
        };
    if let Command::Token { name, role } = &command {
        return token(name, role);
    }
    let (log, guard) = logging::init(&settings.log);
    let main_log = log.new(o!("component" => "main"));
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(async {
                match command {
                    Command::Serve => serve(settings, log).await,
                    Command::Migrate => migrate(settings, log).await,
                    Command::Healthcheck => healthcheck(&settings).await,
                    Command::Token { .. } => 0, // answered above, before logging starts
                }
            });
            // Don't wait long for stray blocking work (a migration thread) on the way out.
            runtime.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Err(e) => {
            error!(main_log, "cannot start the async runtime"; "error" => %e);
            1
        }
    };
    drop(main_log);
    // Writes out the last lines.
    drop(guard);
    ExitCode::from(code)
}

async fn serve(settings: Settings, log: Logger) -> u8 {
    let main_log = log.new(o!("component" => "main"));
    info!(main_log, "starting alsy"; "version" => env!("CARGO_PKG_VERSION"), Effective(settings.redacted()));
    let running = match alsy::start(settings, log, Overrides::default()).await {
        Ok(running) => running,
        Err(e) => return failed(&main_log, "start-up failed", &e),
    };
    match signal().await {
        Ok(name) => info!(main_log, "signal received; shutting down gracefully"; "signal" => name),
        Err(e) => error!(main_log, "cannot listen for signals; shutting down"; "error" => %e),
    }
    tokio::select! {
        result = running.shutdown() => match result {
            Ok(()) => 0,
            Err(e) => failed(&main_log, "shutdown was not clean", &e),
        },
        second = signal() => {
            let name = second.unwrap_or("signal");
            warn!(main_log, "second signal: exiting without waiting for the graceful shutdown"; "signal" => name);
            1
        }
    }
}

async fn migrate(settings: Settings, log: Logger) -> u8 {
    let main_log = log.new(o!("component" => "main"));
    match alsy::migrate(&settings, &log).await {
        Ok(true) => {
            info!(main_log, "migrations applied");
            0
        }
        Ok(false) => {
            info!(
                main_log,
                "storage kind is memory (ALSY__STORAGE__KIND): nothing to migrate"
            );
            0
        }
        Err(e) => failed(&main_log, "migration failed", &e),
    }
}

/// `alsy token NAME ROLE`: the token on the first line, the tokens file line on the second.
fn token(name: &str, role: &str) -> ExitCode {
    match alsy::tokens::mint(name, role) {
        Ok((token, line)) => {
            println!("token: {token}");
            println!("line:  {line}");
            eprintln!(
                "alsy: give the token to the caller and add the line to the tokens file (ALSY__AUTH__TOKENS_FILE); the token is not stored anywhere"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("alsy: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit 0 if the service on `ALSY__HTTP__ADDRESS` is alive; the reason on stderr otherwise.
async fn healthcheck(settings: &Settings) -> u8 {
    match alsy::healthcheck::check(settings.http.address, settings.http.read_timeout).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("alsy: unhealthy: {e:#}");
            1
        }
    }
}

/// Logs a failure and says it on stderr too, where an operator at a terminal looks first.
fn failed(log: &Logger, what: &str, e: &anyhow::Error) -> u8 {
    error!(log, "{}", what; "error" => format!("{e:#}"));
    eprintln!("alsy: {what}: {e:#}");
    1
}

/// Waits for SIGINT or SIGTERM and names it.
async fn signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "SIGINT")
    }
}

/// The effective settings as fields of the start-up line, the password redacted.
struct Effective(Vec<(&'static str, String)>);

impl KV for Effective {
    fn serialize(&self, _record: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        // slog hands a record's pairs to the drain last-first and the JSON drain restores the
        // written order, so these are emitted last-first as well.
        for (key, value) in self.0.iter().rev() {
            serializer.emit_str(key, value)?;
        }
        Ok(())
    }
}
