//! Unit tests of request parsing: every message names the field or parameter at fault.

use super::*;
use serde_json::json;

fn valid() -> Value {
    json!({
        "name": "Jimbo",
        "version": 1,
        "image": "ghcr.io/acme/vwap:1.0",
        "cpu": "500m",
        "mem": "512Mi",
        "priority": 0.26
    })
}

fn client_error(body: &str) -> String {
    client_spec(body.as_bytes()).unwrap_err()
}

fn with(field: &str, value: Value) -> String {
    let mut body = valid();
    body[field] = value;
    body.to_string()
}

fn without(field: &str) -> String {
    let mut body = valid();
    body.as_object_mut().unwrap().remove(field);
    body.to_string()
}

#[test]
fn a_valid_client_body_parses() {
    let spec = client_spec(valid().to_string().as_bytes()).unwrap();
    assert_eq!(spec.name.as_str(), "Jimbo");
    assert_eq!(spec.priority.get(), 0.26);
}

#[test]
fn malformed_json_is_reported_as_such() {
    assert!(client_error(r#"{"name": "#).starts_with("malformed JSON: "));
    assert!(client_error("not json").starts_with("malformed JSON: "));
}

#[test]
fn an_empty_body_or_a_non_object_is_rejected() {
    assert_eq!(
        client_error(""),
        "request body is empty; expected a JSON object"
    );
    assert_eq!(
        client_error("[1,2]"),
        "request body must be a JSON object, found an array"
    );
    assert_eq!(
        client_error("null"),
        "request body must be a JSON object, found null"
    );
}

#[test]
fn a_missing_field_is_named() {
    for field in ["name", "version", "image", "cpu", "mem", "priority"] {
        assert_eq!(
            client_error(&without(field)),
            format!("missing field {field:?}")
        );
    }
}

#[test]
fn an_unknown_field_is_named() {
    assert_eq!(
        client_error(&with("colour", json!("red"))),
        r#"unknown field "colour""#
    );
}

#[test]
fn a_repeated_field_is_named() {
    let body =
        r#"{"name":"a","name":"b","version":1,"image":"x","cpu":"1","mem":"1","priority":1}"#;
    assert_eq!(client_error(body), r#"duplicate field "name""#);
}

#[test]
fn a_wrong_type_is_named_with_what_was_expected() {
    assert_eq!(
        client_error(&with("version", json!("1"))),
        r#"invalid type for "version": expected an integer, found a string"#
    );
    assert_eq!(
        client_error(&with("version", json!(1.5))),
        r#"invalid type for "version": expected an integer, found a number"#
    );
    assert_eq!(
        client_error(&with("cpu", json!(2))),
        r#"invalid type for "cpu": expected a string, found an integer"#
    );
    assert_eq!(
        client_error(&with("name", Value::Null)),
        r#"invalid type for "name": expected a string, found null"#
    );
    assert_eq!(
        client_error(&with("priority", json!("high"))),
        r#"invalid type for "priority": expected a number, found a string"#
    );
}

#[test]
fn domain_rules_are_reported_with_the_field() {
    assert_eq!(
        client_error(&with("cpu", json!("0"))).split(':').next(),
        Some("cpu")
    );
    assert_eq!(
        client_error(&with("version", json!(-1))),
        "version: must be an integer from 0 to 2147483647"
    );
    assert_eq!(
        client_error(&with("version", json!(u64::MAX))),
        "version: must be an integer from 0 to 2147483647"
    );
    assert!(client_error(&with("name", json!("  "))).starts_with("name: "));
}

fn status(body: &str) -> Result<AlgorithmStatus, String> {
    algorithm_status(body.as_bytes(), &Catalogue::default())
}

fn on(status: &AlgorithmStatus) -> Vec<String> {
    status.enabled().map(|a| a.to_string()).collect()
}

#[test]
fn status_accepts_upper_or_lower_case_keys() {
    let parsed = status(r#"{"VWAP":true,"TWAP":false,"HFT":true}"#).unwrap();
    assert_eq!(on(&parsed), ["HFT", "VWAP"]);
    let parsed = status(r#"{"vwap":false,"twap":true,"hft":false}"#).unwrap();
    assert_eq!(on(&parsed), ["TWAP"]);
    assert_eq!(parsed.switches().count(), 3, "every switch, on or off");
}

#[test]
fn status_needs_every_key_of_the_catalogue() {
    assert_eq!(
        status(r#"{"VWAP":true,"HFT":true}"#).unwrap_err(),
        r#"missing field "TWAP""#
    );
}

#[test]
fn status_keys_are_the_configured_catalogues() {
    let xyz = Catalogue::parse("X,Y,Z").unwrap();
    let parsed = algorithm_status(br#"{"X":true,"y":false,"Z":true}"#, &xyz).unwrap();
    assert_eq!(on(&parsed), ["X", "Z"]);
    assert_eq!(
        algorithm_status(br#"{"X":true,"Y":false,"Z":true,"VWAP":true}"#, &xyz).unwrap_err(),
        r#"unknown field "VWAP" (expected X, Y and Z)"#
    );
    assert_eq!(
        algorithm_status(br#"{"X":true,"Z":true}"#, &xyz).unwrap_err(),
        r#"missing field "Y""#
    );
}

#[test]
fn status_rejects_unknown_mixed_and_repeated_keys() {
    assert_eq!(
        status(r#"{"VWAP":true,"TWAP":false,"HFT":true,"FOO":true}"#).unwrap_err(),
        r#"unknown field "FOO" (expected VWAP, TWAP and HFT)"#
    );
    assert!(
        status(r#"{"Vwap":true,"TWAP":false,"HFT":true}"#)
            .unwrap_err()
            .starts_with(r#"unknown field "Vwap""#)
    );
    assert_eq!(
        status(r#"{"VWAP":true,"vwap":false,"TWAP":false,"HFT":true}"#).unwrap_err(),
        r#"duplicate field "vwap": VWAP is already given as "VWAP""#
    );
}

#[test]
fn status_values_must_be_booleans() {
    assert_eq!(
        status(r#"{"VWAP":"yes","TWAP":false,"HFT":true}"#).unwrap_err(),
        r#"invalid type for "VWAP": expected a boolean, found a string"#
    );
}

#[test]
fn client_ids_are_positive_digit_strings_that_fit_in_64_bits() {
    assert_eq!(client_id("42").map(ClientId::get), Some(42));
    for bad in [
        "",
        "0",
        "-1",
        "+1",
        "abc",
        "1.0",
        "99999999999999999999",
        " 1",
    ] {
        assert_eq!(client_id(bad), None, "{bad:?}");
    }
}

fn query(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn need_restart_accepts_true_false_one_zero_and_defaults_to_false() {
    assert_eq!(need_restart(&query(&[])), Ok(false));
    for (raw, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        assert_eq!(need_restart(&query(&[("need_restart", raw)])), Ok(want));
    }
}

#[test]
fn need_restart_rejects_anything_else_naming_the_parameter() {
    for bad in ["yes", "", "TRUE", "2"] {
        let err = need_restart(&query(&[("need_restart", bad)])).unwrap_err();
        assert!(err.contains("need_restart"), "{err}");
    }
    assert!(
        need_restart(&query(&[("need_restrat", "true")]))
            .unwrap_err()
            .contains("need_restrat")
    );
    assert!(
        need_restart(&query(&[
            ("need_restart", "true"),
            ("need_restart", "false")
        ]))
        .unwrap_err()
        .contains("more than once")
    );
}

#[test]
fn paging_has_defaults_and_bounds() {
    assert_eq!(page(&query(&[])), Ok(PageRequest::default()));
    let p = page(&query(&[("after", "7"), ("limit", "2")])).unwrap();
    assert_eq!((p.after.map(ClientId::get), p.limit), (Some(7), 2));
    assert_eq!(page(&query(&[("after", "0")])).unwrap().after, None);
    for bad in ["0", "1001", "-1", "x", "+5"] {
        assert!(
            page(&query(&[("limit", bad)]))
                .unwrap_err()
                .contains("\"limit\""),
            "{bad}"
        );
    }
    for bad in ["-1", "x", "1.5", "+3"] {
        assert!(
            page(&query(&[("after", bad)]))
                .unwrap_err()
                .contains("\"after\""),
            "{bad}"
        );
    }
}

#[test]
fn the_list_filters_on_a_sync_summary_named_in_lower_case() {
    let list = |pairs: &[(&str, &str)]| client_list(&query(pairs));
    assert_eq!(list(&[]), Ok((PageRequest::default(), None)));
    for summary in SyncSummary::ALL {
        let (page, state) = list(&[("state", summary.as_str()), ("limit", "5")]).unwrap();
        assert_eq!((page.limit, state), (5, Some(summary)));
    }
    for bad in ["failing", "Degraded", "", "synced,degraded"] {
        assert_eq!(
            list(&[("state", bad)]).unwrap_err(),
            format!(
                "invalid query parameter \"state\"={bad:?}: expected synced, progressing, degraded"
            )
        );
    }
    assert!(
        list(&[("status", "degraded")])
            .unwrap_err()
            .contains("unknown query parameter \"status\"")
    );
}

#[test]
fn a_number_without_a_fraction_is_an_integer_version() {
    // JSON Schema (and so the OpenAPI document) counts 3.0 as an integer.
    let body = with("version", json!(3.0));
    assert_eq!(client_spec(body.as_bytes()).map(|s| s.version.get()), Ok(3));
    assert_eq!(
        client_error(&with("version", json!(1e300))),
        "version: must be an integer from 0 to 2147483647"
    );
}
