//! Logging (README.md, "Logs"): slog, one JSON object a line on stdout (`time`, `level`, `msg`,
//! `component`, then the event's fields), or readable text for a terminal
//! (`ALSY__LOG__FORMAT=text`), filtered by `ALSY__LOG__LEVEL`.
//!
//! Lines are written by slog-async's background thread, so logging never waits on stdout.
//! When its channel is full, callers wait rather than lines being dropped: losing the record of a
//! pod operation is worse than a short stall. Keep the [`LogGuard`] until the end of `main`:
//! dropping it writes out the last lines.

mod json;
mod memory;

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use slog::{Drain, Level, LevelFilter, Logger, OwnedKVList, Record, o};

use crate::config::{LogFormat, LogLevel, LogSettings};

pub use json::{JsonLines, level_name};
pub use memory::MemorySink;

/// Flushes the asynchronous log on drop.
pub struct LogGuard {
    _flush: slog_async::AsyncGuard,
}

/// The service's logger, writing to stdout.
pub fn init(settings: &LogSettings) -> (Logger, LogGuard) {
    match settings.format {
        LogFormat::Json => background(JsonLines::new(std::io::stdout()), settings.level),
        LogFormat::Text => {
            let decorator = slog_term::TermDecorator::new().stdout().build();
            background(
                slog_term::FullFormat::new(decorator).build(),
                settings.level,
            )
        }
    }
}

/// The service's logger, writing to any sink through the background thread (as in production).
pub fn to_writer<W: Write + Send + 'static>(settings: &LogSettings, sink: W) -> (Logger, LogGuard) {
    match settings.format {
        LogFormat::Json => background(JsonLines::new(sink), settings.level),
        LogFormat::Text => {
            let decorator = slog_term::PlainDecorator::new(sink);
            background(
                slog_term::FullFormat::new(decorator).build(),
                settings.level,
            )
        }
    }
}

/// A logger writing to `sink` on the calling thread: each line is in the sink when the logging
/// call returns, which makes tests simple. Not for production (writers block each other).
pub fn synchronous<W: Write + Send + 'static>(settings: &LogSettings, sink: W) -> Logger {
    let drain: Box<dyn Drain<Ok = (), Err = std::io::Error> + Send> = match settings.format {
        LogFormat::Json => Box::new(JsonLines::new(sink)),
        LogFormat::Text => {
            Box::new(slog_term::FullFormat::new(slog_term::PlainDecorator::new(sink)).build())
        }
    };
    let locked = Locked(Mutex::new(drain));
    Logger::root(
        LevelFilter::new(locked, level(settings.level)).ignore_res(),
        o!(),
    )
}

fn background<D>(drain: D, min: LogLevel) -> (Logger, LogGuard)
where
    D: Drain<Ok = ()> + Send + 'static,
    D::Err: std::fmt::Debug,
{
    let (drain, guard) = slog_async::Async::new(drain.ignore_res())
        .chan_size(8192)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("alsy-log".into())
        .build_with_guard();
    // Filter before the channel so filtered records cost nothing; ignore errors rather than
    // panic when logging after the guard has closed the channel.
    let logger = Logger::root(LevelFilter::new(drain, level(min)).ignore_res(), o!());
    (logger, LogGuard { _flush: guard })
}

/// slog's level for a configured one.
pub fn level(level: LogLevel) -> Level {
    match level {
        LogLevel::Trace => Level::Trace,
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warning,
        LogLevel::Error => Level::Error,
        LogLevel::Critical => Level::Critical,
    }
}

/// A drain made shareable across threads by a mutex; a poisoned lock still logs.
struct Locked<D>(Mutex<D>);

impl<D: Drain> Drain for Locked<D> {
    type Ok = D::Ok;
    type Err = D::Err;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<D::Ok, D::Err> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .log(record, values)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
