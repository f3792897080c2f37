//! The JSON line (README.md, "Logs"): `time`, `level`, `msg`, `component`, then the event's own
//! fields, in that order, one object a line.
//!
//! slog hands a drain its key/value pairs last-first (the logger's, newest logger first, then the
//! record's), so this drain collects them and restores the order they were written in. It
//! writes each line with a single `write_all`, so lines never interleave on one sink.

use std::cell::RefCell;
use std::io::{self, Write};

use chrono::{SecondsFormat, Utc};
use serde_json::Value;
use slog::{Drain, KV, Key, Level, OwnedKVList, Record};

/// A drain writing one JSON object a line to `W`.
pub struct JsonLines<W: Write> {
    out: RefCell<W>,
}

impl<W: Write> JsonLines<W> {
    /// Lines go to `out`.
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out: RefCell::new(out),
        }
    }
}

/// The upper-case level names alsy logs (slog's own say `WARNING`).
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Critical => "CRITICAL",
        Level::Error => "ERROR",
        Level::Warning => "WARN",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

/// Pairs in the order slog emits them.
#[derive(Default)]
struct Pairs(Vec<(Key, Value)>);

impl Pairs {
    fn push(&mut self, key: Key, value: Value) -> slog::Result {
        self.0.push((key, value));
        Ok(())
    }

    /// The pairs in written order, the first of a repeated key kept.
    fn in_written_order(mut self) -> Vec<(Key, Value)> {
        self.0.reverse();
        let mut seen = Vec::with_capacity(self.0.len());
        self.0.retain(|(k, _)| {
            let first = !seen.contains(k);
            if first {
                seen.push(*k);
            }
            first
        });
        self.0
    }
}

impl slog::Serializer for Pairs {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments) -> slog::Result {
        self.push(key, Value::String(val.to_string()))
    }
    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        self.push(key, Value::String(val.to_owned()))
    }
    fn emit_bool(&mut self, key: Key, val: bool) -> slog::Result {
        self.push(key, Value::Bool(val))
    }
    fn emit_unit(&mut self, key: Key) -> slog::Result {
        self.push(key, Value::Null)
    }
    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.push(key, Value::Null)
    }
    fn emit_u64(&mut self, key: Key, val: u64) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_i64(&mut self, key: Key, val: i64) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_usize(&mut self, key: Key, val: usize) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_isize(&mut self, key: Key, val: isize) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_u32(&mut self, key: Key, val: u32) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_i32(&mut self, key: Key, val: i32) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_u16(&mut self, key: Key, val: u16) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_i16(&mut self, key: Key, val: i16) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_u8(&mut self, key: Key, val: u8) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_i8(&mut self, key: Key, val: i8) -> slog::Result {
        self.push(key, Value::from(val))
    }
    fn emit_f64(&mut self, key: Key, val: f64) -> slog::Result {
        // NaN and infinities are not JSON numbers: they become null.
        self.push(key, Value::from(val))
    }
    fn emit_f32(&mut self, key: Key, val: f32) -> slog::Result {
        self.push(key, Value::from(f64::from(val)))
    }
}

/// Renders one record as a JSON line (with its newline).
pub fn render(record: &Record, values: &OwnedKVList) -> String {
    let mut logger = Pairs::default();
    // Serialising into memory cannot fail.
    let _ = values.serialize(record, &mut logger);
    let mut event = Pairs::default();
    let _ = record.kv().serialize(record, &mut event);
    let logger = logger.in_written_order();
    let event = event.in_written_order();

    let component = event
        .iter()
        .chain(logger.iter())
        .find(|(k, _)| *k == "component")
        .map(|(_, v)| v.clone());
    // Keys and values are escaped straight into the line: no string per key or value.
    let mut line: Vec<u8> = Vec::with_capacity(256);
    line.push(b'{');
    let mut field = |key: &str, value: &Value| {
        if line.len() > 1 {
            line.push(b',');
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut line, key);
        line.push(b':');
        let _ = serde_json::to_writer(&mut line, value);
    };
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    field("time", &Value::String(time));
    field("level", &Value::String(level_name(record.level()).into()));
    field("msg", &Value::String(record.msg().to_string()));
    if let Some(component) = &component {
        field("component", component);
    }
    let reserved = ["time", "level", "msg", "component"];
    for (key, value) in &logger {
        // The event's own value of a key wins over the logger's.
        if !reserved.contains(key) && !event.iter().any(|(k, _)| k == key) {
            field(key, value);
        }
    }
    for (key, value) in &event {
        if !reserved.contains(key) {
            field(key, value);
        }
    }
    line.extend_from_slice(b"}\n");
    // serde_json writes UTF-8 only: the conversion never copies and never fails.
    String::from_utf8(line).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl<W: Write> Drain for JsonLines<W> {
    type Ok = ();
    type Err = io::Error;

    fn log(&self, record: &Record, values: &OwnedKVList) -> io::Result<()> {
        let line = render(record, values);
        let mut out = self.out.borrow_mut();
        out.write_all(line.as_bytes())?;
        out.flush()
    }
}
