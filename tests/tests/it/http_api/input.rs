//! What the API accepts and refuses: the 201 of a create, and every 4xx README.md's "HTTP API"
//! lists, with malformed, missing, unknown, wrong-typed and oversized input, bad ids and bad query
//! parameters.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use alsy_tests::app::TestApp;
use alsy_tests::fixtures::{client_body, client_with, client_without};

use super::raw_exchange;

#[tokio::test]
async fn creating_a_client_answers_201_with_location_and_the_client() {
    let app = TestApp::spawn().await;
    let reply = app.post("/api/v1/clients", client_body("Jimbo")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.message(), "client created successfully");
    let data = &reply.body["data"];
    let id = data["id"].as_i64().unwrap();
    assert_eq!(
        reply.headers["location"],
        format!("/api/v1/clients/{id}").as_str()
    );
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    let mut expected = vec![
        "id",
        "name",
        "version",
        "image",
        "cpu",
        "mem",
        "priority",
        "need_restart",
        "spawned_at",
        "created_at",
        "updated_at",
        "status",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(data["spawned_at"], Value::Null);
    assert_eq!(
        data["status"],
        json!({"VWAP": false, "TWAP": false, "HFT": false})
    );
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));
    app.shutdown().await;
}

#[tokio::test]
async fn the_body_is_json_whatever_the_content_type_says() {
    let app = TestApp::spawn().await;
    let request = app
        .http
        .post(app.url("/api/v1/clients"))
        .header("content-type", "text/plain")
        .body(client_body("Plain").to_string());
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_client_body_is_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Existing").await;
    let cases: Vec<(String, &str)> = vec![
        ("{\"name\": ".into(), "malformed JSON"),
        ("".into(), "request body is empty"),
        ("[1]".into(), "must be a JSON object"),
        (client_without("cpu").to_string(), "missing field \"cpu\""),
        (
            client_with("colour", json!("red")).to_string(),
            "unknown field \"colour\"",
        ),
        (
            client_with("version", json!("1")).to_string(),
            "invalid type for \"version\": expected an integer",
        ),
        (
            client_with("priority", json!(true)).to_string(),
            "invalid type for \"priority\"",
        ),
        (client_with("cpu", json!("0")).to_string(), "cpu: "),
        (
            client_with("image", json!("Not An Image")).to_string(),
            "image: ",
        ),
        (client_with("name", json!(" ")).to_string(), "name: "),
        (client_with("version", json!(-1)).to_string(), "version: "),
    ];
    for (body, needle) in &cases {
        app.post("/api/v1/clients", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, needle);
        app.put(&format!("/api/v1/clients/{id}"), body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, needle);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_status_body_is_400_naming_the_key() {
    let app = TestApp::spawn().await;
    let path = format!("/api/v1/status/{}", app.create_client("Jimbo").await);
    let cases = [
        (r#"{"VWAP":true,"HFT":true}"#, "missing field \"TWAP\""),
        (
            r#"{"VWAP":true,"TWAP":false,"HFT":true,"FOO":true}"#,
            "unknown field \"FOO\"",
        ),
        (
            r#"{"VWAP":true,"vwap":false,"TWAP":false,"HFT":true}"#,
            "duplicate field \"vwap\"",
        ),
        (
            r#"{"VWAP":"on","TWAP":false,"HFT":true}"#,
            "invalid type for \"VWAP\": expected a boolean",
        ),
        (r#"{"VWAP":true"#, "malformed JSON"),
    ];
    for (body, needle) in cases {
        app.put(&path, body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, needle);
    }
    let reply = app
        .put(&path, r#"{"vwap":true,"twap":false,"hft":true}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.message(), "status updated successfully");
    assert_eq!(
        reply.body["data"]["status"],
        json!({"VWAP": true, "TWAP": false, "HFT": true})
    );
    app.shutdown().await;
}

#[tokio::test]
async fn need_restart_is_true_false_one_or_zero() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    let path = format!("/api/v1/clients/{id}");
    let body = client_body("Jimbo").to_string();
    for bad in ["yes", "", "TRUE"] {
        app.put(&format!("{path}?need_restart={bad}"), &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "need_restart");
    }
    app.put(&format!("{path}?need_restrat=true"), &body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "need_restrat");
    let reply = app.put(&format!("{path}?need_restart=1"), &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.message(), "client updated successfully");
    assert_eq!(reply.body["data"]["need_restart"], true);
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_query_parameter_is_400_on_every_route() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    let body = client_body("Jimbo").to_string();
    let routes = [
        (Method::GET, "/api/health".to_owned(), None),
        (Method::GET, "/api/ready".to_owned(), None),
        (Method::GET, "/api/v1/pods".to_owned(), None),
        (Method::GET, "/api/v1/clients".to_owned(), None),
        (
            Method::POST,
            "/api/v1/clients".to_owned(),
            Some(body.clone()),
        ),
        (Method::GET, format!("/api/v1/clients/{id}"), None),
        (Method::PUT, format!("/api/v1/clients/{id}"), Some(body)),
        (Method::GET, format!("/api/v1/status/{id}"), None),
        (
            Method::PUT,
            format!("/api/v1/status/{id}"),
            Some(r#"{"VWAP":true,"TWAP":false,"HFT":false}"#.to_owned()),
        ),
        (Method::GET, "/api/v1/sync".to_owned(), None),
        (Method::POST, "/api/v1/sync".to_owned(), None),
        (Method::DELETE, format!("/api/v1/clients/{id}"), None),
    ];
    for (method, path, body) in routes {
        let reply = app
            .request(method.clone(), &format!("{path}?x=1"), body.as_deref())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}?x=1: {:?}",
            reply.body
        );
        assert!(
            reply.message().contains("\"x\""),
            "{method} {path}: {}",
            reply.message()
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/clients/{id}")).await.status,
        StatusCode::OK,
        "the refused DELETE deleted nothing"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_id_that_is_not_a_stored_client_is_404() {
    let app = TestApp::spawn().await;
    let body = client_body("Jimbo").to_string();
    let status = r#"{"VWAP":true,"TWAP":false,"HFT":true}"#;
    for id in ["abc", "0", "-1", "1.5", "99999999999999999999", "42"] {
        for (method, path, body) in [
            (Method::GET, format!("/api/v1/clients/{id}"), None),
            (
                Method::PUT,
                format!("/api/v1/clients/{id}"),
                Some(body.as_str()),
            ),
            (Method::DELETE, format!("/api/v1/clients/{id}"), None),
            (Method::GET, format!("/api/v1/status/{id}"), None),
            (Method::PUT, format!("/api/v1/status/{id}"), Some(status)),
        ] {
            let reply = app.request(method.clone(), &path, body).await;
            reply.assert_error(StatusCode::NOT_FOUND, "not found");
        }
    }
    app.get("/api/v1/clients/42")
        .await
        .assert_error(StatusCode::NOT_FOUND, "client 42 not found");
    app.shutdown().await;
}

#[tokio::test]
async fn a_taken_name_is_409() {
    let app = TestApp::spawn().await;
    app.create_client("Jimbo").await;
    app.post("/api/v1/clients", client_body("Jimbo"))
        .await
        .assert_error(StatusCode::CONFLICT, "Jimbo");
    app.shutdown().await;
}

#[tokio::test]
async fn the_list_pages_and_rejects_bad_parameters() {
    let app = TestApp::spawn().await;
    let ids = [
        app.create_client("a").await,
        app.create_client("b").await,
        app.create_client("c").await,
    ];
    let first = app.get("/api/v1/clients?limit=2").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["data"]["items"].as_array().unwrap().len(), 2);
    let next = first.body["data"]["next"].as_i64().expect("a next cursor");
    let rest = app
        .get(&format!("/api/v1/clients?after={next}&limit=2"))
        .await;
    assert_eq!(rest.body["data"]["items"][0]["id"], ids[2]);
    assert_eq!(rest.body["data"]["next"], Value::Null);
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("after=-1", "after"),
        ("after=x", "after"),
        ("sort=name", "sort"),
    ] {
        app.get(&format!("/api/v1/clients?{query}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, parameter);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_in_the_envelope() {
    let app = TestApp::spawn().await;
    app.get("/api/v2/clients")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no route");
    app.request(Method::PATCH, "/api/v1/clients/1", Some("{}"))
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "PATCH");
    app.request(Method::DELETE, "/api/health", None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "DELETE");
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_with_or_without_a_length() {
    let app = TestApp::spawn().await;
    let mut big = client_body("Big");
    big["name"] = json!("x".repeat(70 * 1024));
    app.post("/api/v1/clients", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "larger than 65536 bytes");

    // Chunked, no Content-Length: counted as it arrives.
    let chunk = " ".repeat(16 * 1024);
    let mut request = String::from(
        "POST /api/v1/clients HTTP/1.1\r\nHost: alsy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..5 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let (text, _) = raw_exchange(&app.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-request-id: "),
        "{text}"
    );

    // A chunked body under the limit is fine.
    let body = client_body("Chunked").to_string();
    let request = format!(
        "POST /api/v1/clients HTTP/1.1\r\nHost: alsy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (text, _) = raw_exchange(&app.addr(), request.as_bytes(), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    app.shutdown().await;
}
