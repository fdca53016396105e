//! MailerSend's API is not reachable from tests, so a local axum stub plays
//! it and records what the client sent.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use serde_json::{json, Value};
use vestnik_mail::{Mail, MailError, Mailer, MailerSendMailer};

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Slot = Arc<Mutex<Vec<Recorded>>>;

/// Serves `reply` for every request and returns the base URL and the log.
async fn stub(
    reply: (StatusCode, Vec<(&'static str, &'static str)>, &'static str),
) -> anyhow::Result<(String, Slot)> {
    let slot: Slot = Arc::default();
    let log = slot.clone();
    // A fallback rather than a route, so a wrong path or method is recorded
    // and reported by the assertions instead of becoming a bare 404/405.
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            let reply = reply.clone();
            async move {
                log.lock().expect("stub log").push(Recorded {
                    method,
                    path: uri.path().to_owned(),
                    headers,
                    body,
                });
                let mut res = (reply.0, reply.2).into_response();
                for (k, v) in reply.1 {
                    res.headers_mut()
                        .insert(k, v.parse().expect("header value"));
                }
                res
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("stub server");
    });
    Ok((format!("http://{addr}"), slot))
}

fn only_request(slot: &Slot) -> Recorded {
    let log = slot.lock().expect("stub log");
    assert_eq!(log.len(), 1, "expected exactly one request: {log:?}");
    log[0].clone()
}

fn header<'a>(req: &'a Recorded, name: &str) -> Vec<&'a str> {
    req.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii header"))
        .collect()
}

#[tokio::test]
async fn posts_the_documented_request_and_accepts_202() -> anyhow::Result<()> {
    let (base, slot) = stub((
        StatusCode::ACCEPTED,
        vec![("x-message-id", "5e42957d51f1d94a1070a733")],
        "",
    ))
    .await?;
    let mailer = MailerSendMailer::new(
        &format!("{base}/v1/email"),
        "mlsn.test-key",
        "Vestnik <noreply@vestnik.example>",
    )?;
    assert_eq!(mailer.kind(), "mailersend");
    mailer
        .send(Mail {
            to: "carol@example.org".into(),
            subject: "Your Vestnik code".into(),
            text: "Your code is 105522.".into(),
        })
        .await?;

    let req = only_request(&slot);
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, "/v1/email");
    assert_eq!(header(&req, "authorization"), ["Bearer mlsn.test-key"]);
    assert_eq!(header(&req, "content-type"), ["application/json"]);
    assert_eq!(header(&req, "x-requested-with"), ["XMLHttpRequest"]);
    let body: Value = serde_json::from_slice(&req.body)?;
    assert_eq!(
        body,
        json!({
            "from": {"email": "noreply@vestnik.example", "name": "Vestnik"},
            "to": [{"email": "carol@example.org"}],
            "subject": "Your Vestnik code",
            "text": "Your code is 105522."
        })
    );
    Ok(())
}

#[tokio::test]
async fn sender_without_name_omits_the_name_field() -> anyhow::Result<()> {
    let (base, slot) = stub((StatusCode::ACCEPTED, vec![], "")).await?;
    let mailer =
        MailerSendMailer::new(&format!("{base}/v1/email"), "k", "noreply@vestnik.example")?;
    mailer
        .send(Mail {
            to: "dave@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await?;
    let body: Value = serde_json::from_slice(&only_request(&slot).body)?;
    assert_eq!(
        body,
        json!({
            "from": {"email": "noreply@vestnik.example"},
            "to": [{"email": "dave@example.org"}],
            "subject": "s",
            "text": "t"
        })
    );
    Ok(())
}

#[tokio::test]
async fn validation_error_becomes_http_error() -> anyhow::Result<()> {
    let error_body = r#"{"message":"The to.0.email must be a valid email address.","errors":{"to.0.email":["The to.0.email must be a valid email address."]}}"#;
    let (base, _slot) = stub((
        StatusCode::UNPROCESSABLE_ENTITY,
        vec![("content-type", "application/json")],
        error_body,
    ))
    .await?;
    let mailer =
        MailerSendMailer::new(&format!("{base}/v1/email"), "k", "noreply@vestnik.example")?;
    let err = mailer
        .send(Mail {
            to: "erin@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("422 must fail");
    match err {
        MailError::Http { status, body } => {
            assert_eq!(status, 422);
            assert_eq!(body, error_body);
        }
        other => panic!("expected Http error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn long_error_bodies_are_truncated() -> anyhow::Result<()> {
    let long: &'static str = Box::leak("é".repeat(5000).into_boxed_str());
    let (base, _slot) = stub((StatusCode::INTERNAL_SERVER_ERROR, vec![], long)).await?;
    let mailer =
        MailerSendMailer::new(&format!("{base}/v1/email"), "k", "noreply@vestnik.example")?;
    let err = mailer
        .send(Mail {
            to: "erin@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("500 must fail");
    match err {
        MailError::Http { status, body } => {
            assert_eq!(status, 500);
            assert_eq!(body.chars().count(), 512);
            assert!(body.chars().all(|c| c == 'é'));
        }
        other => panic!("expected Http error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn other_success_codes_are_not_accepted() -> anyhow::Result<()> {
    // Only 202 means "queued"; a 200 from some proxy or captive portal must
    // not be mistaken for delivery.
    let (base, _slot) = stub((StatusCode::OK, vec![], "ok")).await?;
    let mailer =
        MailerSendMailer::new(&format!("{base}/v1/email"), "k", "noreply@vestnik.example")?;
    let err = mailer
        .send(Mail {
            to: "erin@example.org".into(),
            subject: "s".into(),
            text: "t".into(),
        })
        .await
        .expect_err("200 is not 202");
    assert!(
        matches!(err, MailError::Http { status: 200, .. }),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn rejects_bad_configuration() {
    for (url, key, from) in [
        ("not a url", "k", "noreply@vestnik.example"),
        ("ftp://api.example/v1/email", "k", "noreply@vestnik.example"),
        (
            "https://api.mailersend.com/v1/email",
            "",
            "noreply@vestnik.example",
        ),
        (
            "https://api.mailersend.com/v1/email",
            "bad\nkey",
            "noreply@vestnik.example",
        ),
        (
            "https://api.mailersend.com/v1/email",
            "k",
            "Vestnik <broken>",
        ),
    ] {
        match MailerSendMailer::new(url, key, from) {
            Err(MailError::Config(_)) => {}
            other => panic!("{url} {key:?} {from}: expected Config error, got {other:?}"),
        }
    }
}

#[test]
fn debug_omits_api_key() {
    let m = MailerSendMailer::new(
        "https://api.mailersend.com/v1/email",
        "mlsn.supersecret",
        "noreply@vestnik.example",
    )
    .expect("valid");
    assert!(!format!("{m:?}").contains("supersecret"));
}
