//! The document's input patterns agree with the parsers the edge runs: a string matches the
//! pattern exactly when the parser accepts it. Checked both ways, on strings generated from the
//! pattern and on random strings over the characters that matter.

use alsy_domain::{ClientName, ImageRef, Quantity};
use proptest::prelude::*;
use regex::Regex;

use super::*;

fn matches(pattern: &'static str, text: &str) -> bool {
    static COMPILED: std::sync::Mutex<Vec<(&'static str, Regex)>> =
        std::sync::Mutex::new(Vec::new());
    let mut compiled = COMPILED.lock().unwrap();
    if !compiled.iter().any(|(p, _)| *p == pattern) {
        compiled.push((pattern, Regex::new(pattern).expect("a valid pattern")));
    }
    compiled
        .iter()
        .find(|(p, _)| *p == pattern)
        .unwrap()
        .1
        .is_match(text)
}

/// The pattern without its anchors, for generating strings from it.
fn body(pattern: &str) -> &str {
    pattern.trim_start_matches('^').trim_end_matches('$')
}

fn image_accepted(text: &str) -> bool {
    text.chars().count() <= 255 && matches(IMAGE_PATTERN, text)
}

fn quantity_accepted(text: &str) -> bool {
    text.chars().count() <= 64 && matches(QUANTITY_PATTERN, text)
}

fn name_accepted(text: &str) -> bool {
    (1..=100).contains(&text.chars().count()) && matches(NAME_PATTERN, text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_image_the_pattern_generates_is_accepted(
        image in proptest::string::string_regex(body(IMAGE_PATTERN)).unwrap()
    ) {
        prop_assert_eq!(image_accepted(&image), ImageRef::parse(&image).is_ok(), "{}", image);
    }

    #[test]
    fn images_match_the_pattern_exactly_when_they_parse(
        image in "(\\[[aA:]{0,2}\\])?[a-zA-Z0-9._:/@\\-\\[\\]]{0,24}"
    ) {
        prop_assert_eq!(image_accepted(&image), ImageRef::parse(&image).is_ok(), "{}", image);
    }

    #[test]
    fn every_quantity_the_pattern_generates_is_accepted(
        quantity in proptest::string::string_regex(body(QUANTITY_PATTERN)).unwrap()
    ) {
        prop_assert_eq!(quantity_accepted(&quantity), Quantity::parse(&quantity).is_ok(), "{}", quantity);
    }

    #[test]
    fn quantities_match_the_pattern_exactly_when_they_parse(
        quantity in "[-+0-9.eEnumkKMGTPi ]{0,8}"
    ) {
        prop_assert_eq!(quantity_accepted(&quantity), Quantity::parse(&quantity).is_ok(), "{}", quantity);
    }

    #[test]
    fn names_match_the_pattern_exactly_when_they_parse(name in "\\PC{0,3}[\\s\\x00-\\x1f\\x7f-\\xa0a]{0,4}") {
        prop_assert_eq!(name_accepted(&name), ClientName::parse(&name).is_ok(), "{:?}", name);
    }
}

#[test]
fn the_tricky_images_agree_with_the_parser() {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for image in [
        "nginx",
        "my.app",
        "my.app/x",
        "a_b.c/x",
        "Foo/bar",
        "foo_bar/baz",
        "localhost:5000",
        "localhost:5000/x",
        "[::1]:5000/algo:1",
        "[fe80::1]/algo",
        "[a]/r:tag",
        "[A]/r",
        "[a]:5/r",
        "[ab]",
        "a:1:2/x",
        "a/b:c/d",
        "ghcr.io:port/a",
        &format!("ghcr.io/acme/vwap:1.0@{digest}"),
        "nginx@sha256:abc",
        "nginx:",
    ] {
        assert_eq!(
            image_accepted(image),
            ImageRef::parse(image).is_ok(),
            "{image}"
        );
    }
}

#[test]
fn the_document_is_openapi_3_1_and_closes_the_input_objects() {
    let doc: serde_json::Value =
        serde_json::from_str(&document(&Catalogue::default()).unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    for input in ["ClientInput", "StatusInput"] {
        assert_eq!(schemas[input]["additionalProperties"], false, "{input}");
    }
    assert_eq!(
        schemas["ClientInput"]["properties"]["image"]["pattern"],
        IMAGE_PATTERN
    );
    assert_eq!(
        schemas["ClientInput"]["properties"]["name"]["maxLength"],
        100
    );
    let limit = &doc["paths"]["/api/v1/clients"]["get"]["parameters"][1]["schema"];
    assert_eq!(limit["maximum"], alsy_domain::PageRequest::MAX_LIMIT);
    let links = &doc["paths"]["/api/v1/clients"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["GetClient"]["operationId"], "get_client");
    assert_eq!(
        schemas["StatusInput"]["required"],
        serde_json::json!(["VWAP", "TWAP", "HFT"])
    );
}

#[test]
fn the_status_bodies_are_described_for_the_configured_catalogue() {
    let xyz = Catalogue::parse("X,Y,Z").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&document(&xyz).unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["StatusInput"]["required"],
        serde_json::json!(["X", "Y", "Z"])
    );
    assert_eq!(
        schemas["StatusInput"]["examples"][0],
        serde_json::json!({"X": true, "Y": false, "Z": false})
    );
    assert_eq!(
        schemas["Client"]["properties"]["status"]["required"],
        serde_json::json!(["X", "Y", "Z"])
    );
    assert_eq!(
        schemas["SyncServiceStatus"]["required"],
        serde_json::json!(["client_id", "x", "y", "z"])
    );
}

#[test]
fn the_earlier_services_bodies_require_what_their_routes_require() {
    let doc: serde_json::Value =
        serde_json::from_str(&document(&Catalogue::default()).unwrap()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let required = |schema: &str| schemas[schema]["required"].clone();
    assert_eq!(
        required("SyncServiceNewClient"),
        serde_json::json!([
            "client_name",
            "version",
            "image",
            "cpu",
            "memory",
            "priority"
        ])
    );
    assert_eq!(
        required("SyncServiceChangedClient"),
        serde_json::json!([
            "client_name",
            "version",
            "image",
            "cpu",
            "memory",
            "priority",
            "id"
        ])
    );
    assert_eq!(
        required("SyncServiceDeletedClient"),
        serde_json::json!(["id"])
    );
    assert_eq!(
        schemas["SyncServiceChangedClient"]["properties"]["memory"]["pattern"],
        QUANTITY_PATTERN
    );
}

#[test]
fn every_operation_has_its_own_id() {
    let doc: serde_json::Value =
        serde_json::from_str(&document(&Catalogue::default()).unwrap()).unwrap();
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
    assert!(count >= 18, "{count} operations");
}
