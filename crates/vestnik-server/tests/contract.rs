//! The API answers exactly as its OpenAPI document says: schemathesis (from
//! PyPI, pinned in scripts/test) generates requests from `/openapi.json`
//! (examples, coverage, fuzzing and stateful phases over the document's
//! links), sends them to the real server with a real session, and checks
//! every answer: no server error, only documented statuses, content types,
//! headers and bodies matching their schemas, schema-valid requests
//! accepted and schema-violating ones refused, authentication not ignored.
//! Fixed seed and example count, so a run is repeatable; on both backends.
mod common;

use common::TestApp;
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";
/// Fixed, so a failure reproduces with the same requests.
const SEED: &str = "20261202";
const EXAMPLES: &str = "25";

both_backends!(every_answer_of_the_api_is_the_one_its_openapi_document_promises);

/// The schemathesis executable, or None (a failure in CI) when it is missing.
fn schemathesis() -> Option<String> {
    let bin = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    match std::process::Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => Some(bin),
        _ if vestnik_testkit::in_ci() => {
            panic!("schemathesis is missing in CI (scripts/test installs it from PyPI)")
        }
        _ => {
            eprintln!("SKIPPED: schemathesis is not installed; CI=true makes this a failure");
            None
        }
    }
}

/// The checks' settings: 422 is the document's status for a schema-valid
/// request refused by a rule the schema cannot state (see the 422 answers in
/// the document), and 413 is the edge's answer to an oversized body.
const CONFIG: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# Negative data is the coverage and fuzzing phases' job. In a stateful
# sequence, schemathesis 4.32 labels a step negative even when the link's
# real id replaced its only invalid parameter, and then calls the correct
# 200 a failure.
[phases.stateful.generation]
mode = "positive"
"#;

async fn run(app: &TestApp, bin: &str, token: &str, phases: &str, filters: &[&str]) {
    let dir = app.data_dir.join("schemathesis");
    std::fs::create_dir_all(&dir).expect("report dir");
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", app.base))
        .args([
            "--checks",
            "all",
            "--phases",
            phases,
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--header",
        ])
        .arg(format!("Authorization: Bearer {token}"))
        .args(filters)
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), cmd.output())
        .await
        .expect("schemathesis finished within 10 minutes")
        .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Failing cases can carry megabytes of generated body: keep the report readable.
    let report: String = stdout
        .lines()
        .filter(|l| l.len() < 400)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "schemathesis found contract failures ({:?}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = report
        .lines()
        .find(|l| l.contains("generated,"))
        .unwrap_or("");
    assert!(
        summary.contains("passed") && !summary.contains(" 0 generated"),
        "expected test cases to be generated and pass, got {summary:?}\n{report}"
    );
    eprintln!("schemathesis {filters:?}: {}", summary.trim());
}

async fn every_answer_of_the_api_is_the_one_its_openapi_document_promises(app: TestApp) {
    let Some(bin) = schemathesis() else { return };
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let carol = app.register("carol@example.org", PW).await;
    let token = |v: &Value| v["access_token"].as_str().expect("token").to_owned();
    let uid = |v: &Value| v["user_id"].as_str().expect("user id").to_owned();
    // Something to find: a direct chat, a group and a public channel.
    for body in [
        json!({"kind": "direct", "peer_user_id": uid(&bob)}),
        json!({"kind": "group", "title": "friends", "member_user_ids": [uid(&bob), uid(&carol)]}),
        json!({"kind": "channel", "title": "news", "visibility": "public"}),
    ] {
        let r = app
            .post_auth("/v1/conversations", &token(&alice), Some(body))
            .await;
        assert!(r.status == 200 || r.status == 201, "{:?}", r.body);
    }
    // Everything but the operations that end the session and the WebSocket
    // upgrade (not an HTTP operation OpenAPI can describe; its own tests
    // cover it).
    run(
        &app,
        &bin,
        &token(&alice),
        "examples,coverage,fuzzing,stateful",
        &[
            "--exclude-path",
            "/v1/ws",
            "--exclude-path",
            "/v1/auth/logout",
            "--exclude-path",
            "/v1/auth/logout-all",
            "--exclude-path",
            "/v1/devices/{id}",
        ],
    )
    .await;
    // Then those, with a session of their own: after the first success the
    // token is revoked and the rest must be the documented 401s. (No links
    // lead between them, so there is no stateful phase.)
    run(
        &app,
        &bin,
        &token(&carol),
        "examples,coverage,fuzzing",
        &[
            "--include-path",
            "/v1/auth/logout",
            "--include-path",
            "/v1/auth/logout-all",
            "--include-path",
            "/v1/devices/{id}",
        ],
    )
    .await;
}
