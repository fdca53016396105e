//! The real server in-process on a random port (SQLite, or PostgreSQL +
//! Redis), a TCP proxy the tests can cut, and helpers to make accounts and
//! wait for events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vestnik_client::{
    Client, ClientConfig, ClientEvent, EventStream, ReceivedMessage, SecondFactor, StoreKey,
};
use vestnik_core::clock::ManualClock;
use vestnik_core::Config;

pub const PASSWORD: &str = "vestnik-test-passphrase-42";

pub use vestnik_testkit::{Backend, TestServer};

/// A running server (`vestnik_testkit::TestServer`) plus a scratch
/// directory for client stores.
pub struct Server {
    pub base: String,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub clients_dir: PathBuf,
    pub clock: ManualClock,
    pub gw: Arc<vestnik_gateway::Gateway>,
    pub backend: Backend,
    server: TestServer,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_dir_all(&self.clients_dir);
    }
}

pub async fn spawn_server(backend: Backend) -> Option<Server> {
    spawn_server_with(backend, |_| {}).await
}

/// Like [`spawn_server`], with `tune` applied to the config first.
pub async fn spawn_server_with(backend: Backend, tune: impl FnOnce(&mut Config)) -> Option<Server> {
    let server = TestServer::spawn(backend, tune).await?;
    let clients_dir = std::env::temp_dir().join(format!(
        "vestnik-client-stores-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&clients_dir).expect("clients dir");
    Some(Server {
        base: server.base.clone(),
        addr: server.addr,
        data_dir: server.data_dir.clone(),
        clients_dir,
        clock: server.clock.clone(),
        gw: server.gw.clone(),
        backend,
        server,
    })
}

/// Runs each named test body on both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() -> anyhow::Result<()> {
                   match $crate::common::spawn_server($crate::common::Backend::Sqlite).await {
                       Some(s) => super::$name(s).await,
                       None => Ok(()),
                   }
               } )*
        }
        mod postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() -> anyhow::Result<()> {
                   match $crate::common::spawn_server($crate::common::Backend::PostgresRedis).await {
                       Some(s) => super::$name(s).await,
                       None => Ok(()),
                   }
               } )*
        }
    };
}

impl Server {
    /// The newest code mailed to `email`.
    pub fn mailed_code(&self, email: &str) -> Option<String> {
        self.server.mailed_code(email)
    }

    pub fn store_path(&self, name: &str) -> PathBuf {
        self.clients_dir.join(format!("{name}.db"))
    }

    /// Client settings with fast retries, for this server (or a proxy in front of it).
    pub fn config(&self, url: &str, name: &str) -> ClientConfig {
        let mut c = ClientConfig::new(url, self.store_path(name), key_for(name));
        c.device_name = name.to_owned();
        c.platform = "linux".into();
        c.reconnect_min = Duration::from_millis(50);
        c.reconnect_max = Duration::from_millis(400);
        c.keepalive = Duration::from_millis(500);
        c.send_timeout = Duration::from_secs(5);
        c.request_timeout = Duration::from_secs(10);
        c
    }

    /// A new account whose first device is `name`.
    pub async fn register(&self, email: &str, name: &str) -> anyhow::Result<Client> {
        self.register_via(&self.base.clone(), email, name).await
    }

    pub async fn register_via(&self, url: &str, email: &str, name: &str) -> anyhow::Result<Client> {
        Client::request_registration_code(url, email).await?;
        let code = self
            .mailed_code(email)
            .ok_or_else(|| anyhow::anyhow!("no code mailed to {email}"))?;
        Ok(Client::register(self.config(url, name), email, &code, PASSWORD).await?)
    }

    /// Another device of an existing account.
    pub async fn login(&self, email: &str, name: &str) -> anyhow::Result<Client> {
        Ok(Client::login(self.config(&self.base, name), email, PASSWORD, None).await?)
    }

    pub async fn login_2fa(
        &self,
        email: &str,
        name: &str,
        f: SecondFactor,
    ) -> anyhow::Result<Client> {
        Ok(Client::login(self.config(&self.base, name), email, PASSWORD, Some(f)).await?)
    }

    /// What waits in the server's outbox for a device (ciphertext bodies).
    pub async fn outbox_bodies(&self, device_id: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .gw
            .store
            .outbox(device_id, 0, 10_000)
            .await?
            .into_iter()
            .map(|r| r.body)
            .collect())
    }

    /// The raw bytes of the server's SQLite files (database and WAL).
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(self.data_dir.join(format!("vestnik.db{suffix}"))) {
                out.extend(b);
            }
        }
        out
    }
}

/// A store key per client name (stable, so a client can be reopened).
pub fn key_for(name: &str) -> StoreKey {
    let mut k = name.as_bytes().to_vec();
    k.resize(32, b'k');
    StoreKey::secret(k)
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub fn file_contains(path: &Path, needle: &str) -> bool {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    contains(&all, needle)
}

pub const WAIT: Duration = Duration::from_secs(20);

/// The next event matching `pred`, within `WAIT`.
pub async fn wait_for(
    events: &mut EventStream,
    what: &str,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> anyhow::Result<ClientEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out waiting for {what}"))?
            .ok_or_else(|| anyhow::anyhow!("event stream ended waiting for {what}"))?;
        if let ClientEvent::Lagged { missed } = e {
            anyhow::bail!("lagged by {missed} events waiting for {what}");
        }
        if pred(&e) {
            return Ok(e);
        }
    }
}

/// The next `n` messages (other events skipped).
pub async fn messages(events: &mut EventStream, n: usize) -> anyhow::Result<Vec<ReceivedMessage>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let e = wait_for(events, &format!("message {} of {n}", out.len() + 1), |e| {
            matches!(
                e,
                ClientEvent::Message(_) | ClientEvent::Undecryptable { .. }
            )
        })
        .await?;
        match e {
            ClientEvent::Message(m) => out.push(m),
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    Ok(out)
}

/// Drains what is already queued and asserts no further message arrives
/// within `quiet`.
pub async fn no_more_messages(events: &mut EventStream, quiet: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let ClientEvent::Message(m) = &e {
            anyhow::bail!("unexpected extra message {:?}", m.body);
        }
        if let ClientEvent::Undecryptable { .. } = &e {
            anyhow::bail!("unexpected {e:?}");
        }
    }
    Ok(())
}

/// Waits until `cond` holds (polling), within `WAIT`.
pub async fn eventually<F, Fut>(what: &str, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if cond().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[allow(unused_imports)]
pub use vestnik_testkit::proxy::Proxy;

/// Connects `c` and waits for its first `synced`; the stream sees everything after.
pub async fn synced(c: &vestnik_client::Client) -> anyhow::Result<EventStream> {
    let mut ev = c.events();
    c.connect();
    wait_for(&mut ev, "synced", |e| matches!(e, ClientEvent::Synced)).await?;
    Ok(ev)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The next system event of `conversation` named `event`.
pub async fn system_event(
    ev: &mut EventStream,
    conversation: &str,
    event: &str,
) -> anyhow::Result<vestnik_client::SystemEvent> {
    match wait_for(ev, &format!("system event {event}"), |e| {
        matches!(e, ClientEvent::System(s) if s.conversation_id == conversation && s.event == event)
    })
    .await?
    {
        ClientEvent::System(s) => Ok(s),
        other => anyhow::bail!("unexpected {other:?}"),
    }
}
