//! What a client needs to know: where the server and the local store are,
//! the key that opens the store, and the timing of reconnects.
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

/// One-time keys a device keeps published: the server's low watermark is 20
/// and it takes at most 100 per upload.
pub const DEFAULT_ONE_TIME_KEYS: usize = 50;
/// A week: a fallback key can be used by any number of senders while the
/// one-time keys are gone, so its secret should not live for ever (Signal
/// replaces its signed pre-key on a similar schedule).
pub const DEFAULT_FALLBACK_KEY_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
/// Longest text message (UTF-8 bytes). One envelope may hold 64 KiB of base64
/// ciphertext on the server; this leaves room for the JSON payload around it
/// and for base64's expansion.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// The key that opens the local store.
///
/// The store (Olm account and sessions, tokens, message bodies) is sealed
/// with XChaCha20-Poly1305 under keys derived from this.
#[derive(Clone)]
pub enum StoreKey {
    /// At least 16 bytes of high-entropy key material (e.g. 32 random bytes
    /// kept in the platform's key store).
    Secret(Zeroizing<Vec<u8>>),
    /// A passphrase, stretched with argon2id (salt stored in the store).
    Passphrase(Zeroizing<String>),
}

impl StoreKey {
    /// A raw secret.
    pub fn secret(bytes: impl Into<Vec<u8>>) -> Self {
        StoreKey::Secret(Zeroizing::new(bytes.into()))
    }

    /// A passphrase.
    pub fn passphrase(p: impl Into<String>) -> Self {
        StoreKey::Passphrase(Zeroizing::new(p.into()))
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreKey::Secret(_) => f.write_str("StoreKey::Secret(<redacted>)"),
            StoreKey::Passphrase(_) => f.write_str("StoreKey::Passphrase(<redacted>)"),
        }
    }
}

/// Client settings. [`ClientConfig::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host` (no trailing `/v1`).
    pub server_url: String,
    /// The SQLite file of this device (created on register/login).
    pub store_path: PathBuf,
    /// Opens the store.
    pub store_key: StoreKey,
    /// Shown in the account's device list. Default: `vestnik-client`.
    pub device_name: String,
    /// e.g. `linux`. Default: the build's OS.
    pub platform: String,
    /// First reconnect delay; doubles per failed attempt (with jitter). Default 500 ms.
    pub reconnect_min: Duration,
    /// Cap of the reconnect delay. Default 30 s.
    pub reconnect_max: Duration,
    /// Client pings this often; a socket silent for 3× this is dropped. Default 25 s.
    pub keepalive: Duration,
    /// A send not answered within this is sent again (same `client_msg_id`). Default 30 s.
    pub send_timeout: Duration,
    /// HTTP request timeout. Default 30 s.
    pub request_timeout: Duration,
    /// One-time keys to keep on the server (≤ 100). Default [`DEFAULT_ONE_TIME_KEYS`].
    pub one_time_keys: usize,
    /// The fallback key is replaced once it is this old (checked with the
    /// one-time keys: after connecting and after pre-key messages). The one
    /// before stays usable for messages already made with it until the next
    /// replacement. Default [`DEFAULT_FALLBACK_KEY_MAX_AGE`].
    pub fallback_key_max_age: Duration,
    /// Events buffered for a slow reader before it sees `Lagged`. Default 4096.
    pub event_capacity: usize,
    /// Items per page when syncing over REST ([`crate::Client::sync`]); 1-500. Default 100.
    pub sync_page: i64,
}

impl ClientConfig {
    /// Defaults for everything but the server, the store file and its key.
    pub fn new(
        server_url: impl Into<String>,
        store_path: impl Into<PathBuf>,
        key: StoreKey,
    ) -> Self {
        Self {
            server_url: server_url.into().trim_end_matches('/').to_owned(),
            store_path: store_path.into(),
            store_key: key,
            device_name: "vestnik-client".into(),
            platform: std::env::consts::OS.into(),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            keepalive: Duration::from_secs(25),
            send_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            one_time_keys: DEFAULT_ONE_TIME_KEYS,
            fallback_key_max_age: DEFAULT_FALLBACK_KEY_MAX_AGE,
            event_capacity: 4096,
            sync_page: 100,
        }
    }
}
