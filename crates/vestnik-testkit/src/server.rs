//! The real server in this process, for every crate's tests: `TestServer::
//! spawn(backend, tune)` builds it from a config (a fresh SQLite directory,
//! or a fresh PostgreSQL database and Redis key prefix), serves it on an
//! already-bound random port with a clock the test moves, and on drop stops
//! it, removes its directory and drops its database.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use vestnik_core::clock::ManualClock;
use vestnik_core::Config;

use crate::{fresh_pg_database, in_ci, pg_url, redis_url};

/// Which backends a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a temp directory, everything in-process.
    Sqlite,
    /// PostgreSQL (a fresh database) and Redis (a fresh key prefix).
    PostgresRedis,
}

/// A running in-process server.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub clock: ManualClock,
    pub gw: Arc<vestnik_gateway::Gateway>,
    pub config: Config,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    database: Option<String>,
}

/// The settings every test server shares: no rate limit gets in a test's
/// way unless it sets one, and proofs of work are cheap.
pub fn base_config(data_dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        pow_difficulty: 8,
        rate_ip_per_minute: 100_000,
        rate_auth_ip_per_minute: 100_000,
        rate_auth_email_per_hour: 100_000,
        // The three with keys of their own are set above; typing keeps its
        // default (a test floods it).
        rate_limits: vestnik_core::rate_limits::Action::ALL
            .iter()
            .map(|a| a.spec())
            .filter(|s| s.legacy_key.is_none() && s.name != "ephemeral")
            .map(|s| (s.name.to_owned(), "1000000/1".to_owned()))
            .collect(),
        db_pool_size: 8,
        ..Config::default()
    }
}

/// Whether the test Redis answers. None outside CI prints SKIPPED; in CI a
/// missing Redis is a panic.
pub async fn redis_reachable() -> bool {
    match vestnik_bus::connect_redis(&vestnik_bus::RedisTarget::new(&redis_url())).await {
        Ok(_) => true,
        Err(e) if !in_ci() => {
            eprintln!(
                "SKIPPED: Redis at {} is unreachable ({e}); CI=true makes this a failure",
                redis_url()
            );
            false
        }
        Err(e) => panic!("Redis at {} is unreachable in CI: {e}", redis_url()),
    }
}

impl TestServer {
    /// Starts a server; `tune` adjusts the config first. None when the
    /// backend's services are missing outside CI.
    pub async fn spawn(backend: Backend, tune: impl FnOnce(&mut Config)) -> Option<Self> {
        let data_dir =
            std::env::temp_dir().join(format!("vestnik-test-{}", uuid::Uuid::new_v4().simple()));
        let mut config = base_config(&data_dir);
        let mut database = None;
        if backend == Backend::PostgresRedis {
            if !redis_reachable().await {
                return None;
            }
            let url = fresh_pg_database("vestnik_test").await?;
            database = url.rsplit_once('/').map(|(_, name)| name.to_owned());
            config.database_url = Some(url);
            config.redis_url = Some(redis_url());
            config.redis_prefix = format!("vt-{}", uuid::Uuid::new_v4().simple());
        }
        tune(&mut config);
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let filter = if filter.is_empty() {
                "debug".into()
            } else {
                filter
            };
            let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
        }
        let clock = ManualClock::default();
        #[allow(clippy::expect_used)]
        let gw = vestnik_server::build(&config, Arc::new(clock.clone()))
            .await
            .expect("build the server");
        #[allow(clippy::expect_used)]
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        #[allow(clippy::expect_used)]
        let addr = listener.local_addr().expect("its address");
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(vestnik_server::serve(listener, gw.clone(), async move {
            let _ = rx.await;
        }));
        Some(Self {
            base: format!("http://{addr}"),
            addr,
            data_dir,
            clock,
            gw,
            config,
            backend,
            shutdown: Some(tx),
            database,
        })
    }

    /// Stops the server as SIGTERM does: no new connections, in-flight
    /// requests finish, then the background tasks stop.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The newest verification code mailed to `email`.
    pub fn mailed_code(&self, email: &str) -> Option<String> {
        mailed_code(&self.data_dir, email)
    }

    /// How many mails went to `email`.
    pub fn mails_to(&self, email: &str) -> usize {
        mails_to(&self.data_dir, email)
    }
}

/// The `.eml` files the file mailer wrote under `<data_dir>/mail` to `email`,
/// oldest first.
fn mails(data_dir: &std::path::Path, email: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data_dir.join("mail")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    let to = format!("to: {}", email.to_lowercase());
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter(|text| text.to_lowercase().contains(&to))
        .collect()
}

/// The newest code (registration, password reset, address confirmation)
/// mailed to `email` by a server whose data directory is `data_dir`.
pub fn mailed_code(data_dir: &std::path::Path, email: &str) -> Option<String> {
    const PHRASE: &str = " code is ";
    mails(data_dir, email).iter().rev().find_map(|text| {
        let idx = text.find(PHRASE)? + PHRASE.len();
        text.get(idx..idx + 6)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    })
}

/// The newest mail to `email`, headers and body.
pub fn last_mail(data_dir: &std::path::Path, email: &str) -> Option<String> {
    mails(data_dir, email).pop()
}

/// How many mails went to `email`.
pub fn mails_to(data_dir: &std::path::Path, email: &str) -> usize {
    mails(data_dir, email).len()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(name) = self.database.take() {
            // Drop runs inside the test's runtime, where blocking on async
            // work is not allowed: a thread of its own drops the database
            // (FORCE ends the stopping server's pooled connections).
            let admin = pg_url();
            let _ = std::thread::spawn(move || drop_database(&admin, &name)).join();
        }
    }
}

fn drop_database(admin: &str, name: &str) {
    use sqlx::Connection;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                eprintln!("dropping test database {name}: {e}");
            }
        }
    });
}
