//! Media end to end over HTTP: upload grants, the bytes at signed URLs,
//! completion checks, download grants, deletion, quota and the reaper — on
//! SQLite with the local-directory store, and on PostgreSQL + Redis with the
//! real S3-compatible server (SeaweedFS) where the bytes never touch the
//! server. The bytes are opaque here; the client tests encrypt for real.
#[path = "../common/mod.rs"]
mod common;

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

mod avatars;
mod public_media;
mod quota_and_reaper;
mod transfers;

use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use vestnik_core::Config;

const PW: &str = "correct horse battery staple";

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
