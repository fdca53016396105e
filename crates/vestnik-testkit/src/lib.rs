//! What every test suite that talks to the real services shares: where they
//! are, a fresh PostgreSQL database per test, and the real server in-process
//! ([`server::TestServer`]). Outside CI a missing service skips (with a loud
//! SKIPPED line); with `CI=true` it is a failure.

pub mod certs;
pub mod pg_process;
pub mod proxy;
pub mod redis_process;
pub mod server;
pub use server::{Backend, TestServer};

/// `CI=true` (or `1`): a test that needs a missing service must fail.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The test PostgreSQL server (`VESTNIK_TEST_PG_URL`).
pub fn pg_url() -> String {
    std::env::var("VESTNIK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The test Redis (`VESTNIK_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("VESTNIK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The URL of a new, empty database `<prefix>_<random>` on the test
/// PostgreSQL server. None outside CI when the server is unreachable; a
/// panic in CI.
pub async fn fresh_pg_database(prefix: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = pg_url();
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if !in_ci() => {
            eprintln!(
                "SKIPPED: PostgreSQL at {admin} is unreachable ({e}); CI=true makes this a failure"
            );
            return None;
        }
        Err(e) => panic!("PostgreSQL at {admin} is unreachable in CI: {e}"),
    };
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map_or_else(|| admin.clone(), |(b, _)| b.to_owned());
    Some(format!("{base}/{name}"))
}

/// The test S3-compatible server (SeaweedFS, started by `scripts/test`):
/// endpoint and credentials from `VESTNIK_TEST_S3_URL`,
/// `VESTNIK_TEST_S3_ACCESS_KEY`, `VESTNIK_TEST_S3_SECRET_KEY`.
#[derive(Debug, Clone)]
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// One bucket for every test (`VESTNIK_TEST_S3_BUCKET`): object keys are
    /// unique ids, and SeaweedFS gives each bucket volumes of its own, so a
    /// bucket per test would exhaust them.
    pub bucket: String,
}

/// The test S3 server if it accepts connections. None outside CI when it
/// does not; a panic in CI.
pub fn s3_server() -> Option<S3Server> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let s = S3Server {
        endpoint: env("VESTNIK_TEST_S3_URL", "http://127.0.0.1:8333"),
        access_key: env("VESTNIK_TEST_S3_ACCESS_KEY", "vestnik"),
        secret_key: env("VESTNIK_TEST_S3_SECRET_KEY", "vestnik-secret"),
        bucket: env("VESTNIK_TEST_S3_BUCKET", "vestnik-test-media"),
    };
    let addr = s
        .endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        });
    match (reachable, in_ci()) {
        (true, _) => Some(s),
        (false, false) => {
            eprintln!(
                "SKIPPED: the S3 server at {} is unreachable; scripts/test starts one; CI=true makes this a failure",
                s.endpoint
            );
            None
        }
        (false, true) => panic!("the S3 server at {} is unreachable in CI", s.endpoint),
    }
}

/// clamd for the public-media scan tests (`VESTNIK_TEST_CLAMD`, started by
/// `scripts/test` with a test signature for the EICAR string). None outside
/// CI when it does not answer; a panic in CI.
pub fn clamd_addr() -> Option<String> {
    let addr = std::env::var("VESTNIK_TEST_CLAMD").unwrap_or_else(|_| "127.0.0.1:3310".into());
    let up = addr.parse::<std::net::SocketAddr>().is_ok_and(|a| {
        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
    });
    match (up, in_ci()) {
        (true, _) => Some(addr),
        (false, false) => {
            eprintln!("SKIPPED: clamd at {addr} is unreachable; scripts/test starts one; CI=true makes this a failure");
            None
        }
        (false, true) => panic!("clamd at {addr} is unreachable in CI"),
    }
}

/// The EICAR anti-virus test string (harmless; every scanner flags it).
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
