//! Media end to end over HTTP: upload grants, the bytes at signed URLs,
//! completion checks, download grants, deletion, quota and the reaper — on
//! SQLite with the local-directory store, and on PostgreSQL + Redis with the
//! real S3-compatible server (SeaweedFS) where the bytes never touch the
//! server. The bytes are opaque here; the client tests encrypt for real.
mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use vestnik_core::Config;

const PW: &str = "correct horse battery staple";

/// Runs each test on SQLite + local store and on PostgreSQL + Redis + S3.
macro_rules! media_backends {
    ($($name:ident),* $(,)?) => {
        mod local_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   if let Some(app) = crate::common::spawn_app_with(crate::common::Backend::Sqlite, super::tune).await { super::$name(app).await }
               } )*
        }
        mod s3_postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let Some(s3) = vestnik_testkit::s3_server() else { return };
                   let app = crate::common::spawn_app_with(crate::common::Backend::PostgresRedis, |c| {
                       super::tune(c);
                       super::use_s3(c, &s3);
                   }).await;
                   if let Some(app) = app { super::$name(app).await }
               } )*
        }
    };
}

media_backends!(
    an_object_goes_up_and_down_at_signed_urls_and_only_members_get_it,
    bad_uploads_get_clear_errors_and_leave_nothing_behind,
    tampered_expired_and_foreign_urls_are_refused,
    the_quota_counts_pending_and_ready_media_and_deletes_release_it,
    the_reaper_removes_expired_media_and_abandoned_uploads,
    public_channel_images_get_a_server_made_preview_and_encrypted_ones_do_not,
);

/// Media on the test S3 server.
fn use_s3(c: &mut Config, s3: &vestnik_testkit::S3Server) {
    c.s3_endpoint = Some(s3.endpoint.clone());
    c.s3_access_key = Some(s3.access_key.clone());
    c.s3_secret_key = Some(s3.secret_key.clone());
    c.s3_bucket = s3.bucket.clone();
    c.cors_origins = vec!["http://127.0.0.1:9".into()];
}

fn tune(c: &mut Config) {
    c.media_max_bytes = 1 << 20;
    c.media_quota_bytes = 3 << 20;
    c.media_download_url_secs = 2;
    c.media_upload_url_secs = 60;
}

struct User {
    id: String,
    token: String,
}

async fn user(app: &TestApp, email: &str) -> User {
    let s = app.register(email, PW).await;
    User {
        id: s["user_id"].as_str().expect("user").to_owned(),
        token: s["access_token"].as_str().expect("token").to_owned(),
    }
}

async fn conversation(app: &TestApp, owner: &User, kind: &str, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
    let mut body = json!({"kind": kind, "title": "Media", "member_user_ids": ids});
    if kind == "channel" {
        body["visibility"] = json!("public");
    }
    let r = app
        .post_auth("/v1/conversations", &owner.token, Some(body))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn grant(app: &TestApp, who: &User, conv: &str, size: usize, digest: &str) -> common::Res {
    app.post_auth(
        "/v1/media",
        &who.token,
        Some(json!({"conversation_id": conv, "size": size, "sha256": digest, "class": "image", "ttl_secs": 300})),
    )
    .await
}

fn url_of(app: &TestApp, signed: &Value) -> String {
    let url = signed["url"].as_str().expect("url");
    if url.starts_with('/') {
        format!("{}{url}", app.base)
    } else {
        url.to_owned()
    }
}

/// Makes the signed request with its headers (Content-Length comes from the body).
async fn put(app: &TestApp, upload: &Value, body: Vec<u8>) -> u16 {
    let mut req = app.http.put(url_of(app, upload));
    for h in upload["headers"].as_array().expect("headers") {
        let (k, v) = (h[0].as_str().expect("k"), h[1].as_str().expect("v"));
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v);
        }
    }
    req.body(body).send().await.expect("put").status().as_u16()
}

async fn fetch(app: &TestApp, download: &Value, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut req = app.http.get(url_of(app, download));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = req.send().await.expect("get");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("bytes").to_vec())
}

/// Grant, upload and complete; returns the media id.
async fn upload(app: &TestApp, who: &User, conv: &str, bytes: &[u8]) -> String {
    let g = grant(app, who, conv, bytes.len(), &sha(bytes)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    assert_eq!(put(app, &g.body["upload"], bytes.to_vec()).await, 200);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &who.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "ready");
    id
}

fn is_s3(app: &TestApp) -> bool {
    app.gw_config.s3_endpoint.is_some()
}

async fn usage(app: &TestApp, who: &User) -> i64 {
    let r = app.get_auth("/v1/media/usage", &who.token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["used_bytes"].as_i64().expect("used")
}

async fn object_exists(app: &TestApp, media_id: &str) -> bool {
    app.gw
        .media
        .blobs()
        .head(&format!("m/{media_id}"))
        .await
        .expect("head")
        .is_some()
}

async fn an_object_goes_up_and_down_at_signed_urls_and_only_members_get_it(app: TestApp) {
    let (alice, bob, carol) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
        user(&app, "carol@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let g = grant(&app, &alice, &conv, bytes.len(), &sha(&bytes)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let upload_url = url_of(&app, &g.body["upload"]);
    if is_s3(&app) {
        // The bytes go to the object store, not to this server.
        let s3 = app.gw_config.s3_endpoint.as_deref().expect("s3");
        assert!(upload_url.starts_with(s3), "{upload_url}");
        assert!(!upload_url.starts_with(&app.base));
        // And this server has no blob endpoints to route bytes through.
        let r = app
            .http
            .put(format!("{}/v1/media/blob/x.y", app.base))
            .body("x")
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 404);
        // The bucket lets a browser page on the configured origin PUT and GET.
        for method in ["PUT", "GET"] {
            let pre = app
                .http
                .request(Method::OPTIONS, &upload_url)
                .header("origin", "http://127.0.0.1:9")
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "x-amz-checksum-sha256")
                .send()
                .await
                .expect("preflight");
            let allowed = pre
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                pre.status().is_success(),
                "{method} preflight: {}",
                pre.status()
            );
            assert_eq!(allowed, "http://127.0.0.1:9", "{method} preflight");
        }
        let other = app
            .http
            .request(Method::OPTIONS, &upload_url)
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "PUT")
            .send()
            .await
            .expect("preflight");
        assert!(other
            .headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v != "http://evil.example"));
    }
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    // Not downloadable before it is completed.
    let r = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!((r.status, r.code()), (409, "media_not_ready"));
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!((r.status, r.code()), (409, "media_not_uploaded"));

    assert_eq!(put(&app, &g.body["upload"], bytes.clone()).await, 200);
    // Completing someone else's upload: as if it did not exist.
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &bob.token, None)
        .await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["size"].as_u64()),
        (Some("ready"), Some(300_000))
    );
    // Completing twice is harmless.
    let again = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(again.status, 200);

    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(
        d.body["media"]["sha256"].as_str(),
        Some(sha(&bytes).as_str())
    );
    let (status, got) = fetch(&app, &d.body["download"], None).await;
    assert_eq!(status, 200);
    assert!(got == bytes, "downloaded bytes differ");
    // Range requests, for resuming and seeking.
    let (status, part) = fetch(&app, &d.body["download"], Some("bytes=1000-1999")).await;
    assert_eq!(status, 206);
    assert!(part == bytes[1000..2000]);

    // Not a member: the media does not exist for carol.
    let r = app.get_auth(&format!("/v1/media/{id}"), &carol.token).await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .get_auth("/v1/media/..%2F..%2Fetc%2Fpasswd", &carol.token)
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
    // And she cannot upload into a conversation she is not in.
    let r = grant(&app, &carol, &conv, 10, &sha(b"0123456789")).await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    assert_eq!(usage(&app, &alice).await, 300_000);
}

async fn bad_uploads_get_clear_errors_and_leave_nothing_behind(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let good = sha(b"hello world");
    for (body, code) in [
        (
            json!({"conversation_id": conv, "size": 2 << 20, "sha256": good, "class": "file"}),
            "media_too_large",
        ),
        (
            json!({"conversation_id": conv, "size": 0, "sha256": good, "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": -5, "sha256": good, "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": "xyz", "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good.to_uppercase(), "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "../../exe"}),
            "invalid_body",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "ttl_secs": 10}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "ttl_secs": 999_999_999}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": "../etc", "size": 11, "sha256": good, "class": "file"}),
            "invalid_body",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "name": "x"}),
            "invalid_body",
        ),
    ] {
        let r = app
            .post_auth("/v1/media", &alice.token, Some(body.clone()))
            .await;
        assert_eq!(r.code(), code, "{body} → {:?}", r.body);
        // 400 when the body does not parse, 422 when a value is refused.
        let want = if code == "invalid_body" { 400 } else { 422 };
        assert_eq!(r.status, want, "{body} → {}", r.status);
    }
    assert_eq!(usage(&app, &alice).await, 0, "refused grants hold nothing");

    // A channel's subscribers may not post media into it.
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let r = grant(&app, &bob, &channel, 11, &good).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    let data = b"hello world".to_vec();
    let g = grant(&app, &alice, &conv, data.len(), &good).await;
    assert_eq!(g.status, 201);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    let upload = &g.body["upload"];
    // Longer, shorter, or other bytes of the same length: the store refuses.
    let mut longer = data.clone();
    longer.push(b'!');
    for (what, body) in [
        ("longer", longer),
        ("shorter", data[..5].to_vec()),
        ("other bytes", b"HELLO WORLD".to_vec()),
    ] {
        let status = put(&app, upload, body).await;
        assert!((400..500).contains(&status), "{what}: {status}");
    }
    assert!(!object_exists(&app, &id).await, "nothing stored");
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!((r.status, r.code()), (409, "media_not_uploaded"));

    // An object that somehow differs from its grant (written straight into
    // the store with the right key) is caught at completion and deleted.
    let g2 = grant(&app, &alice, &conv, data.len(), &good).await;
    let id2 = g2.body["media"]["id"].as_str().expect("id").to_owned();
    let other = b"other thing".to_vec();
    let sneaky = app
        .gw
        .media
        .blobs()
        .presign_put(
            &format!("m/{id2}"),
            &vestnik_media::UploadSpec {
                size: other.len() as u64,
                sha256: sha(&other),
            },
            Duration::from_secs(60),
            vestnik_core::Clock::now_ms(&app.clock),
        )
        .expect("presign");
    let sneaky = serde_json::to_value(&sneaky).expect("json");
    assert_eq!(put(&app, &sneaky, other).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id2}/complete"), &alice.token, None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "media_mismatch"),
        "{:?}",
        r.body
    );
    assert!(
        !object_exists(&app, &id2).await,
        "the mismatching object is deleted"
    );
    let r = app
        .post_auth(&format!("/v1/media/{id2}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 404, "and its record");

    // The first grant still holds its bytes until completed or reaped.
    assert_eq!(usage(&app, &alice).await, data.len() as i64);
    assert_eq!(put(&app, upload, data).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn tampered_expired_and_foreign_urls_are_refused(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let id = upload(&app, &alice, &conv, b"top secret ciphertext").await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200);
    let url = url_of(&app, &d.body["download"]);

    // One changed character anywhere in the signature: refused.
    let tampered = if is_s3(&app) {
        let i = url.find("X-Amz-Signature=").expect("sig") + 16;
        let flip = if &url[i..=i] == "0" { "1" } else { "0" };
        format!("{}{flip}{}", &url[..i], &url[i + 1..])
    } else {
        let flip = if url.ends_with('A') { "B" } else { "A" };
        format!("{}{flip}", &url[..url.len() - 1])
    };
    let status = app.http.get(&tampered).send().await.expect("get").status();
    assert_eq!(status.as_u16(), 403);
    // A download URL does not accept uploads.
    let status = app
        .http
        .put(&url)
        .body("x")
        .send()
        .await
        .expect("put")
        .status();
    assert!(status.as_u16() == 403 || status.as_u16() == 405, "{status}");
    if !is_s3(&app) {
        // Path tricks in the token go nowhere.
        for bad in ["..%2F..%2Fvestnik.db", "m%2F..%2F..%2Fserver.key", "x.y"] {
            let r = app
                .http
                .get(format!("{}/v1/media/blob/{bad}", app.base))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 403, "{bad}");
        }
    }

    // Download URLs live 2 s here.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    app.clock.advance_ms(2_100);
    let status = app.http.get(&url).send().await.expect("get").status();
    assert_eq!(status.as_u16(), 403, "expired");
    // A fresh grant works again.
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    let (status, _) = fetch(&app, &d.body["download"], None).await;
    assert_eq!(status, 200);
}

async fn the_quota_counts_pending_and_ready_media_and_deletes_release_it(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let mib = vec![7u8; 1 << 20];
    let first = upload(&app, &alice, &conv, &mib).await;
    let second = grant(&app, &alice, &conv, mib.len(), &sha(&mib)).await; // pending
    assert_eq!(second.status, 201);
    let _third = upload(&app, &alice, &conv, &mib).await;
    assert_eq!(usage(&app, &alice).await, 3 << 20);
    let r = grant(&app, &alice, &conv, 1, &sha(b"x")).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "quota_exceeded"),
        "{:?}",
        r.body
    );
    // Bob's quota is his own.
    let r = grant(&app, &bob, &conv, mib.len(), &sha(&mib)).await;
    assert_eq!(r.status, 201);

    // Only the owner deletes; the object, the record and the bytes go.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{first}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{first}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(!object_exists(&app, &first).await);
    let r = app
        .get_auth(&format!("/v1/media/{first}"), &bob.token)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(usage(&app, &alice).await, 2 << 20);
    let r = grant(&app, &alice, &conv, mib.len(), &sha(&mib)).await;
    assert_eq!(r.status, 201, "room again: {:?}", r.body);
}

async fn the_reaper_removes_expired_media_and_abandoned_uploads(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let ready = upload(&app, &alice, &conv, b"expires in five minutes").await;
    // Uploaded but never completed, and granted but never uploaded.
    let data = b"abandoned";
    let g = grant(&app, &alice, &conv, data.len(), &sha(data)).await;
    assert_eq!(put(&app, &g.body["upload"], data.to_vec()).await, 200);
    let abandoned = g.body["media"]["id"].as_str().expect("id").to_owned();
    let g = grant(&app, &alice, &conv, 5, &sha(b"never")).await;
    let never = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.gw.media.reap(100).await.expect("reap"),
        0,
        "nothing due yet"
    );

    // Past the upload window (60 s + 5 min grace) and the 5 min TTL.
    app.clock.advance_ms(7 * 60_000);
    let r = app
        .get_auth(&format!("/v1/media/{ready}"), &bob.token)
        .await;
    assert_eq!(
        r.status, 404,
        "expired media is not served even before the reaper runs"
    );
    // Two reapers at once (as on two nodes): each item is removed once.
    let (a, b) = tokio::join!(app.gw.media.reap(100), app.gw.media.reap(100));
    assert_eq!(a.expect("reap") + b.expect("reap"), 3);
    for id in [&ready, &abandoned, &never] {
        assert!(!object_exists(&app, id).await, "{id} object");
        let r = app
            .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
            .await;
        assert_eq!(r.status, 404, "{id} record");
    }
    assert_eq!(usage(&app, &alice).await, 0);
    assert_eq!(app.gw.media.reap(100).await.expect("reap"), 0);
}

/// Public-channel media is plaintext, so the server scans it with clamd
/// when one is configured; encrypted media is never read.
async fn public_channel_uploads_are_scanned_and_infected_ones_refused(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let eicar = vestnik_testkit::EICAR.as_bytes().to_vec();
    let g = grant(&app, &alice, &channel, eicar.len(), &sha(&eicar)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &g.body["upload"], eicar.clone()).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "media_infected"),
        "{:?}",
        r.body
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("Vestnik.Test.EICAR"));
    assert!(
        !object_exists(&app, &id).await,
        "the infected object is deleted"
    );
    assert_eq!(usage(&app, &alice).await, 0);

    // A clean file in the same channel passes.
    let clean = upload(&app, &alice, &channel, b"just a public announcement").await;
    let r = app
        .get_auth(&format!("/v1/media/{clean}"), &bob.token)
        .await;
    assert_eq!(r.status, 200);

    // In a group the bytes are ciphertext to the server: never scanned.
    let group = conversation(&app, &alice, "group", &[&bob]).await;
    upload(&app, &alice, &group, &eicar).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channel_uploads_are_scanned_and_infected_ones_refused_local_sqlite() {
    let Some(clamd) = vestnik_testkit::clamd_addr() else {
        return;
    };
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        tune(c);
        c.clamd_addr = Some(clamd);
    })
    .await;
    if let Some(app) = app {
        public_channel_uploads_are_scanned_and_infected_ones_refused(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channel_uploads_are_scanned_and_infected_ones_refused_s3_postgres_redis() {
    let (Some(clamd), Some(s3)) = (vestnik_testkit::clamd_addr(), vestnik_testkit::s3_server())
    else {
        return;
    };
    let app = common::spawn_app_with(common::Backend::PostgresRedis, |c| {
        tune(c);
        c.clamd_addr = Some(clamd);
        use_s3(c, &s3);
    })
    .await;
    if let Some(app) = app {
        public_channel_uploads_are_scanned_and_infected_ones_refused(app).await;
    }
}

async fn public_channel_images_get_a_server_made_preview_and_encrypted_ones_do_not(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let img = image::RgbImage::from_fn(1000, 500, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");

    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let id = upload(&app, &alice, &channel, &png).await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    let (status, jpeg) = fetch(&app, &d.body["thumbnail"], None).await;
    assert_eq!(status, 200);
    let preview = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG preview");
    assert_eq!((preview.width(), preview.height()), (320, 160));

    // Deleting the media deletes its preview too.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let gone = app
        .gw
        .media
        .blobs()
        .head(&format!("m/{id}-thumb"))
        .await
        .expect("head");
    assert!(gone.is_none(), "preview deleted");

    // In a group the same bytes are (to the server) ciphertext: no preview.
    let group = conversation(&app, &alice, "group", &[&bob]).await;
    let id = upload(&app, &alice, &group, &png).await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert!(d.body.get("thumbnail").is_none(), "{:?}", d.body);
}

/// A TCP forwarder in front of the real clamd, so that the test can take
/// clamd away and bring it back on the same address.
struct ClamdLink {
    addr: std::net::SocketAddr,
    clamd: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ClamdLink {
    async fn open(addr: std::net::SocketAddr, clamd: String) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let target = clamd.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self {
            addr,
            clamd,
            task: Some(task),
        }
    }

    /// Stops listening: connections are refused, as with clamd down.
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restore(&mut self) {
        *self = Self::open(self.addr, self.clamd.clone()).await;
    }
}

/// With clamd unreachable a public upload is refused with 503 (never
/// published unscanned, never a 500), nothing is lost, and completing it
/// again once clamd is back publishes it.
async fn a_clamd_outage_holds_public_uploads_until_it_is_back(app: TestApp, mut link: ClamdLink) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let body = b"a public announcement, scanned before anyone sees it".to_vec();
    let g = grant(&app, &alice, &channel, body.len(), &sha(&body)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &g.body["upload"], body).await, 200);

    link.cut().await;
    let path = format!("/v1/media/{id}/complete");
    let complete = || app.post_auth(&path, &alice.token, None);
    let r = complete().await;
    assert_eq!(
        (r.status, r.code()),
        (503, "scanner_unavailable"),
        "{:?}",
        r.body
    );
    assert_ne!(
        app.get_auth(&format!("/v1/media/{id}"), &bob.token)
            .await
            .status,
        200,
        "not published unscanned"
    );
    assert!(object_exists(&app, &id).await, "the upload is kept");

    link.restore().await;
    let r = complete().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        app.get_auth(&format!("/v1/media/{id}"), &bob.token)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamd_outage_holds_public_uploads_until_it_is_back_local_sqlite() {
    let Some(clamd) = vestnik_testkit::clamd_addr() else {
        return;
    };
    let link = ClamdLink::open("127.0.0.1:0".parse().expect("addr"), clamd).await;
    let via = link.addr.to_string();
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        tune(c);
        c.clamd_addr = Some(via);
    })
    .await;
    if let Some(app) = app {
        a_clamd_outage_holds_public_uploads_until_it_is_back(app, link).await;
    }
}
