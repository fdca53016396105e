//! `spawn_app(backend)`: the real server on an already-bound random port,
//! with a fresh SQLite file, or a fresh PostgreSQL database and Redis prefix.
#![allow(dead_code)]

use vestnik_testkit::redis_url;

/// A fresh database on the test PostgreSQL server.
pub async fn fresh_pg_database() -> Option<String> {
    vestnik_testkit::fresh_pg_database("vestnik_test").await
}

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use vestnik_core::clock::ManualClock;
use vestnik_core::Config;

pub use vestnik_testkit::server::redis_reachable;
pub use vestnik_testkit::{Backend, TestServer};

/// A server reached over HTTP: its address and data directory (mail files).
#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
}

/// The server in this process (`vestnik_testkit::TestServer`), on a random
/// port, with a clock the test moves, and an HTTP client for it.
pub struct TestApp {
    pub api: Http,
    pub clock: ManualClock,
    pub gw: Arc<vestnik_gateway::Gateway>,
    pub gw_config: Config,
    server: TestServer,
}

impl TestApp {
    /// Stops the server as SIGTERM does: no new connections, in-flight
    /// requests finish, then the background tasks stop.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

impl std::ops::Deref for TestApp {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.api
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("vestnik-tests/1")
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Starts a server; `tune` adjusts the config first. None when the backend's
/// services are missing outside CI.
pub async fn spawn_app_with(backend: Backend, tune: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let server = TestServer::spawn(backend, tune).await?;
    Some(TestApp {
        api: Http {
            base: server.base.clone(),
            http: http_client(),
            data_dir: server.data_dir.clone(),
        },
        clock: server.clock.clone(),
        gw: server.gw.clone(),
        gw_config: server.config.clone(),
        server,
    })
}

/// A registered account and its devices, for tests that act as several.
pub struct TestUser {
    pub id: String,
    /// (device id, access token), the first from registration.
    pub devices: Vec<(String, String)>,
}

impl TestUser {
    /// The first device's access token.
    pub fn token(&self) -> &str {
        &self.devices[0].1
    }
}

/// Registers `email` and logs `extra_devices` more devices in.
pub async fn user_with_devices(
    app: &TestApp,
    email: &str,
    password: &str,
    extra_devices: usize,
) -> TestUser {
    let s = app.register(email, password).await;
    let mut devices = vec![(
        s["device_id"].as_str().expect("id").to_owned(),
        s["access_token"].as_str().expect("t").to_owned(),
    )];
    for _ in 0..extra_devices {
        let r = app.login(email, password, json!({})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        devices.push((
            r.body["device_id"].as_str().expect("id").to_owned(),
            r.body["access_token"].as_str().expect("t").to_owned(),
        ));
    }
    TestUser {
        id: s["user_id"].as_str().expect("user").to_owned(),
        devices,
    }
}

/// The `vestnik` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_vestnik");
/// The key every node of a test cluster shares (tokens work on all of them).
pub const CLUSTER_SERVER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A `vestnik serve` process of its own; killed (SIGKILL) when dropped.
pub struct ProcessNode {
    pub api: Http,
    pub child: std::process::Child,
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.api.data_dir);
    }
}

impl std::ops::Deref for ProcessNode {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.api
    }
}

/// The environment every node of a cluster shares.
pub fn cluster_env(cmd: &mut std::process::Command, db: &str, prefix: &str) {
    cmd.env("VESTNIK_DATABASE_URL", db)
        .env("VESTNIK_REDIS_URL", redis_url())
        .env("VESTNIK_REDIS_PREFIX", prefix)
        .env("VESTNIK_SERVER_KEY", CLUSTER_SERVER_KEY)
        .env("VESTNIK_POW_DIFFICULTY", "8")
        .env("VESTNIK_RATE_IP_PER_MINUTE", "1000000")
        .env("VESTNIK_RATE_AUTH_IP_PER_MINUTE", "100000")
        .env("VESTNIK_RATE_AUTH_EMAIL_PER_HOUR", "100000")
        .env("VESTNIK_LOG_LEVEL", "warn");
}

/// Starts node `i` of a cluster as a process and waits for `/readyz`.
pub async fn start_node(db: &str, prefix: &str, i: usize) -> ProcessNode {
    let data_dir =
        std::env::temp_dir().join(format!("vestnik-node{i}-{}", uuid::Uuid::new_v4().simple()));
    // The child binds the port itself; the tiny race is acceptable in a test.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "serve",
        "--data-dir",
        data_dir.to_str().expect("utf8"),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .env("VESTNIK_NODE_ID", format!("node-{i}"))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cluster_env(&mut cmd, db, prefix);
    let node = ProcessNode {
        child: cmd.spawn().expect("spawn vestnik"),
        api: Http {
            base: format!("http://127.0.0.1:{port}"),
            http: http_client(),
            data_dir,
        },
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = node.http.get(format!("{}/readyz", node.base)).send().await {
            if r.status() == 200 {
                return node;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {i} never became ready");
}

/// `n` `vestnik serve` processes sharing a fresh PostgreSQL database, one
/// Redis prefix and one server key. None when the services are missing
/// outside CI.
pub async fn spawn_process_cluster(n: usize) -> Option<Vec<ProcessNode>> {
    if !redis_reachable().await {
        return None;
    }
    let db = fresh_pg_database().await?;
    let prefix = format!("vt-{}", uuid::Uuid::new_v4().simple());
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        nodes.push(start_node(&db, &prefix, i).await);
    }
    Some(nodes)
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Runs a test body on both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { if let Some(app) = $crate::common::spawn_app($crate::common::Backend::Sqlite).await { super::$name(app).await } } )*
        }
        mod postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { if let Some(app) = $crate::common::spawn_app($crate::common::Backend::PostgresRedis).await { super::$name(app).await } } )*
        }
    };
}

pub struct Res {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Res {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Http {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Res {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        // 503 with an error code is a deliberate "try again later" (a
        // dependency is down); any other 5xx is a bug.
        let deliberate = status == 503 && body["error"]["code"].is_string();
        assert!(
            status < 500 || deliberate,
            "server error {status} on {path}: {body}"
        );
        Res {
            status,
            body,
            headers,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(reqwest::Method::POST, path, None, Some(&body))
            .await
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Option<Value>) -> Res {
        self.send(reqwest::Method::POST, path, Some(token), body.as_ref())
            .await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Res {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// The newest code mailed to `email` (from the `.eml` files).
    pub fn mailed_code(&self, email: &str) -> Option<String> {
        vestnik_testkit::server::mailed_code(&self.data_dir, email)
    }

    pub fn mails_to(&self, email: &str) -> usize {
        vestnik_testkit::server::mails_to(&self.data_dir, email)
    }

    pub fn last_mail(&self, email: &str) -> String {
        vestnik_testkit::server::last_mail(&self.data_dir, email).unwrap_or_default()
    }

    /// Registers and verifies an account; returns the session tokens.
    pub async fn register(&self, email: &str, password: &str) -> Value {
        let r = self
            .post("/v1/auth/register", json!({ "email": email }))
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let code = self.mailed_code(email).expect("code mailed");
        let r = self
            .post("/v1/auth/register/verify", json!({ "email": email, "code": code, "password": password, "device": device("laptop") }))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body
    }

    pub async fn login(&self, email: &str, password: &str, extra: Value) -> Res {
        let mut body = json!({ "email": email, "password": password, "device": device("phone") });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        self.post("/v1/auth/login", body).await
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A device description with valid keys and a correctly signed fallback key.
pub fn device(name: &str) -> Value {
    let signing = SigningKey::from_bytes(&random32());
    let fallback = b64(&random32());
    let sig = signing.sign(format!("vestnik:fallback_key:v1:fb1:{fallback}").as_bytes());
    json!({
        "name": name,
        "platform": "linux",
        "identity_key": b64(&random32()),
        "signing_key": b64(signing.verifying_key().as_bytes()),
        "fallback_key": { "key_id": "fb1", "public_key": fallback, "signature": b64(&sig.to_bytes()) },
        "one_time_keys": (0..5).map(|i| json!({ "key_id": format!("otk{i}"), "public_key": b64(&random32()) })).collect::<Vec<_>>(),
    })
}

pub fn totp_now(app: &TestApp, secret_b32: &str) -> String {
    let secret = totp_rs::Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .expect("base32");
    use vestnik_core::Clock;
    vestnik_auth::totp_code_at(
        &secret,
        app.clock.now_secs() as u64,
        6,
        totp_rs::Algorithm::SHA1,
    )
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET /v1/ws` on the server at `base` (http://…) with a bearer token.
pub async fn ws_connect(base: &str, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/v1/ws", base.replace("http", "ws"))
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}
