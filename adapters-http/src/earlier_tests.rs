//! Unit tests of syncService's bodies, written as its Go structs encode them (encoding/json:
//! every field, in declaration order, zero times as `0001-01-01T00:00:00Z`).

use alsy_domain::Catalogue;

use super::*;

const NEW_CLIENT: &str = r#"{"id":0,"client_name":"Jimbo","version":1,"image":"ghcr.io/acme/vwap:1.0","cpu":"500m","memory":"512Mi","priority":0.26,"needRestart":false,"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}"#;

fn with(body: &str, field: &str, value: serde_json::Value) -> String {
    let mut body: serde_json::Value = serde_json::from_str(body).unwrap();
    body[field] = value;
    body.to_string()
}

#[test]
fn a_go_client_creates_with_its_field_names_and_its_id_and_times_ignored() {
    let spec = new_client(NEW_CLIENT.as_bytes()).unwrap();
    assert_eq!(spec.name.as_str(), "Jimbo");
    assert_eq!(spec.mem.as_str(), "512Mi");
    assert_eq!(spec.version.get(), 1);
}

#[test]
fn an_update_names_its_client_and_carries_need_restart() {
    let body = with(
        &with(NEW_CLIENT, "id", 7.into()),
        "needRestart",
        true.into(),
    );
    let (id, spec, need_restart) = changed_client(body.as_bytes()).unwrap();
    assert_eq!(
        (id.get(), spec.cpu.as_str(), need_restart),
        (7, "500m", true)
    );
    let integral = with(NEW_CLIENT, "id", serde_json::json!(8937722.0));
    assert_eq!(
        changed_client(integral.as_bytes()).unwrap().0.get(),
        8937722
    );
}

#[test]
fn an_update_or_delete_without_a_usable_id_is_named() {
    let mut no_id: serde_json::Value = serde_json::from_str(NEW_CLIENT).unwrap();
    no_id.as_object_mut().unwrap().remove("id");
    assert_eq!(
        changed_client(no_id.to_string().as_bytes()).unwrap_err(),
        r#"missing field "id""#
    );
    for bad in [
        serde_json::json!(0),
        serde_json::json!(-3),
        serde_json::json!(1e300),
    ] {
        assert!(
            changed_client(with(NEW_CLIENT, "id", bad.clone()).as_bytes())
                .unwrap_err()
                .starts_with("id: must be a client id"),
            "{bad}"
        );
    }
    assert_eq!(
        deleted_client(br#"{"id":"7"}"#).unwrap_err(),
        r#"invalid type for "id": expected an integer, found a string"#
    );
    assert_eq!(deleted_client(b"{}").unwrap_err(), r#"missing field "id""#);
}

#[test]
fn field_errors_use_syncservices_names() {
    let error = new_client(with(NEW_CLIENT, "memory", "lots".into()).as_bytes()).unwrap_err();
    assert!(error.starts_with("memory: "), "{error}");
    let error = new_client(with(NEW_CLIENT, "client_name", " ".into()).as_bytes()).unwrap_err();
    assert_eq!(error, "client_name: must not be blank");
    assert_eq!(
        new_client(with(NEW_CLIENT, "mem", "1Gi".into()).as_bytes()).unwrap_err(),
        r#"unknown field "mem""#
    );
    assert_eq!(
        new_client(with(NEW_CLIENT, "created_at", 0.into()).as_bytes()).unwrap_err(),
        r#"invalid type for "created_at": expected a string, found an integer"#
    );
}

#[test]
fn a_delete_takes_a_whole_zero_valued_go_client() {
    let body = r#"{"id":5,"client_name":"","version":0,"image":"","cpu":"","memory":"","priority":0,"needRestart":false,"spawned_at":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}"#;
    assert_eq!(deleted_client(body.as_bytes()).map(ClientId::get), Ok(5));
    assert_eq!(deleted_client(br#"{"id":5}"#).map(ClientId::get), Ok(5));
}

#[test]
fn algorithms_take_client_id_and_the_lower_case_switches() {
    let body = br#"{"algorithm_id":0,"client_id":7,"vwap":true,"twap":false,"hft":true}"#;
    let (id, status) = status(body, &Catalogue::default()).unwrap();
    assert_eq!(id.get(), 7);
    let on: Vec<String> = status.enabled().map(|a| a.to_string()).collect();
    assert_eq!(on, ["HFT", "VWAP"]);
    assert_eq!(
        super::status(
            br#"{"client_id":7,"vwap":true,"twap":false}"#,
            &Catalogue::default()
        )
        .unwrap_err(),
        r#"missing field "hft""#
    );
    assert_eq!(
        super::status(
            br#"{"client_id":7,"vwap":true,"twap":false,"hft":true,"pov":true}"#,
            &Catalogue::default()
        )
        .unwrap_err(),
        r#"unknown field "pov" (expected client_id, algorithm_id, vwap, twap and hft)"#
    );
    assert_eq!(
        super::status(
            br#"{"vwap":true,"twap":false,"hft":true}"#,
            &Catalogue::default()
        )
        .unwrap_err(),
        r#"missing field "client_id""#
    );
    let integral = br#"{"client_id":8937722.0,"vwap":true,"twap":false,"hft":true}"#;
    assert_eq!(
        super::status(integral, &Catalogue::default()).map(|(id, _)| id.get()),
        Ok(8937722)
    );
}
