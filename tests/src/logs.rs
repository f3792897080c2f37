//! `Logs`: the real JSON log lines (README.md, "Logs"), written synchronously into memory and read
//! back as `LogLine`s. Tests see exactly what production writes (`WARN`, `ERROR`, `component` as
//! its own key), so a log assertion also checks the format.

use alsy::config::{LogFormat, LogLevel, LogSettings};
use alsy::logging::MemorySink;
use serde_json::{Map, Value};
use slog::Logger;

/// Everything logged to the loggers it hands out, as JSON lines.
#[derive(Clone, Default)]
pub struct Logs {
    sink: MemorySink,
}

/// One JSON log line: its level, message, component, and the event's other fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Level as the JSON line names it (`DEBUG`, `INFO`, `WARN`, `ERROR`, …).
    pub level: String,
    /// The message.
    pub msg: String,
    /// The `component` key ("" when the line has none).
    pub component: String,
    /// Every other key but `time`.
    pub fields: Map<String, Value>,
}

impl Logs {
    /// A logger writing JSON lines here at debug level, each line in place when the call returns.
    pub fn logger(&self) -> Logger {
        let settings = LogSettings {
            level: LogLevel::Debug,
            format: LogFormat::Json,
        };
        alsy::logging::synchronous(&settings, self.sink.clone())
    }

    /// Every line logged so far; panics on one that is not a JSON object.
    pub fn lines(&self) -> Vec<LogLine> {
        self.sink
            .lines()
            .iter()
            .map(|l| LogLine::parse(l))
            .collect()
    }
}

impl LogLine {
    /// Parses one JSON line; panics, quoting it, when it is not a JSON object.
    pub fn parse(line: &str) -> LogLine {
        let Ok(Value::Object(mut fields)) = serde_json::from_str(line) else {
            panic!("a log line that is not a JSON object: {line}");
        };
        let mut take = |key: &str| match fields.remove(key) {
            Some(Value::String(text)) => text,
            _ => String::new(),
        };
        let (level, msg, component) = (take("level"), take("msg"), take("component"));
        fields.remove("time");
        LogLine {
            level,
            msg,
            component,
            fields,
        }
    }

    /// The field `key` when it is a string.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The field `key` as JSON, `Value::Null` when absent.
    pub fn field(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.fields.get(key).unwrap_or(&NULL)
    }
}
