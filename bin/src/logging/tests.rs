//! The log line (README.md, "Logs"): field names, their order, levels, filtering, flushing.

use slog::{debug, info, o, trace, warn};

use super::*;

fn settings(level: LogLevel) -> LogSettings {
    LogSettings {
        level,
        format: LogFormat::Json,
    }
}

/// The keys of a JSON line in the order they appear.
fn keys(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(line);
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some((k, _)) = map.next_entry::<String, serde_json::Value>()? {
                self.0.push(k);
            }
            Ok(())
        }
    }
    serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)).unwrap();
    keys
}

#[test]
fn a_line_has_time_level_msg_component_then_the_event_fields_in_order() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Info), sink.clone());
    let watcher = log.new(o!("component" => "sync/watcher"));
    info!(watcher, "pod created"; "pod_operation" => "<CREATE> vwap-1");
    info!(watcher, "pass finished"; "trigger" => "nudge", "created" => 2u64, "failed" => 0, "duration_ms" => 1.5);

    let lines = sink.lines();
    assert_eq!(
        keys(&lines[0]),
        ["time", "level", "msg", "component", "pod_operation"]
    );
    assert_eq!(
        keys(&lines[1]),
        [
            "time",
            "level",
            "msg",
            "component",
            "trigger",
            "created",
            "failed",
            "duration_ms"
        ]
    );
    let first = &sink.json_lines()[0];
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["msg"], "pod created");
    assert_eq!(first["component"], "sync/watcher");
    assert_eq!(first["pod_operation"], "<CREATE> vwap-1");
    let second = &sink.json_lines()[1];
    assert_eq!(second["created"], 2);
    assert_eq!(second["duration_ms"], 1.5);
}

#[test]
fn time_is_rfc3339_utc_with_nanoseconds() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Info), sink.clone());
    info!(log, "hello");
    let line = &sink.json_lines()[0];
    let time = line["time"].as_str().unwrap();
    // 2024-07-19T00:15:22.138231926Z
    assert_eq!(time.len(), 30, "{time}");
    assert!(time.ends_with('Z'));
    assert_eq!(&time[19..20], ".");
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok());
}

#[test]
fn levels_are_upper_case_and_filtered() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Debug), sink.clone());
    trace!(log, "hidden");
    debug!(log, "shown");
    warn!(log, "careful");
    slog::crit!(log, "down");
    let levels: Vec<String> = sink
        .json_lines()
        .iter()
        .map(|l| l["level"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(levels, ["DEBUG", "WARN", "CRITICAL"]);
}

#[test]
fn trace_lines_are_compiled_in_when_asked_for() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Trace), sink.clone());
    trace!(log, "fine detail");
    assert_eq!(sink.json_lines()[0]["level"], "TRACE");
}

#[test]
fn nested_logger_values_come_before_the_event_in_written_order() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Info), sink.clone());
    let http = log
        .new(o!("component" => "api/http", "replica" => "a"))
        .new(o!("request_id" => "r-1"));
    info!(http, "request"; "status" => 200);
    assert_eq!(
        keys(&sink.lines()[0]),
        [
            "time",
            "level",
            "msg",
            "component",
            "replica",
            "request_id",
            "status"
        ]
    );
}

#[test]
fn an_event_field_wins_over_the_loggers_and_keys_are_not_repeated() {
    let sink = MemorySink::new();
    let log = synchronous(&settings(LogLevel::Info), sink.clone())
        .new(o!("component" => "main", "k" => 1));
    info!(log, "x"; "k" => 2, "component" => "api/http");
    let line = &sink.lines()[0];
    assert_eq!(keys(line), ["time", "level", "msg", "component", "k"]);
    assert_eq!(sink.json_lines()[0]["k"], 2);
    assert_eq!(sink.json_lines()[0]["component"], "api/http");
}

#[test]
fn dropping_the_guard_flushes_the_background_logger() {
    let sink = MemorySink::new();
    let (log, guard) = to_writer(&settings(LogLevel::Info), sink.clone());
    for i in 0..100 {
        info!(log, "line"; "i" => i);
    }
    drop(guard);
    assert_eq!(sink.lines().len(), 100);
    // Logging after the guard is gone is dropped silently, not a panic.
    info!(log, "too late");
}

#[test]
fn text_format_is_readable() {
    let sink = MemorySink::new();
    let log = synchronous(
        &LogSettings {
            level: LogLevel::Info,
            format: LogFormat::Text,
        },
        sink.clone(),
    );
    info!(log.new(o!("component" => "main")), "started"; "address" => "0.0.0.0:8080");
    let line = &sink.lines()[0];
    assert!(line.contains("started"), "{line}");
    assert!(line.contains("address: 0.0.0.0:8080"), "{line}");
}
