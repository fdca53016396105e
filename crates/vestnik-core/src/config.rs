//! Server configuration: a file, `VESTNIK_*` environment variables and flags are
//! merged by the binary into this struct, then [`Config::validate`] names the
//! first bad key.
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where verification mails go: chosen by the `mail` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailKind {
    /// Each mail is one `.eml` file under `<data_dir>/mail/`.
    #[default]
    File,
    /// Sent over SMTP to `smtp_url`.
    Smtp,
    /// Sent through the MailerSend HTTP API (`mailersend_api_key`, `mailersend_url`).
    Mailersend,
}

/// How the server writes its logs (the `log_format` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// Every tunable of a node. Unset keys take the defaults of [`Config::default`];
/// the binary fills the rest from file, environment and flags, then calls [`Config::validate`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds. default: 127.0.0.1:8080
    pub listen: String,
    /// Directory for the SQLite file, blobs, mail files and the server key. default: ./data
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL, `sqlite://…` or empty for `<data_dir>/vestnik.db`.
    pub database_url: Option<String>,
    /// A PEM file with the CA that signed the Redis server's TLS certificate
    /// (`rediss://` to a server with a private CA). default: the system's roots
    pub redis_ca_file: Option<PathBuf>,
    /// `redis://…`; empty keeps caches, rate limits and events in-process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several deployments (or tests) share a Redis. default: vestnik
    pub redis_prefix: String,
    /// The URL clients reach this server at. default: http://<listen>
    pub public_url: Option<String>,
    /// `file`, `smtp` or `mailersend`. default: file
    pub mail: MailKind,
    /// Sender of every mail. default: Vestnik <no-reply@localhost>
    pub mail_from: String,
    /// `smtp://host:port` (plain), `smtps://…` (TLS) or `smtp+starttls://…`; user:pass in the URL.
    pub smtp_url: Option<String>,
    /// MailerSend API token.
    pub mailersend_api_key: Option<String>,
    /// MailerSend endpoint. default: https://api.mailersend.com/v1/email
    pub mailersend_url: String,
    /// 32 bytes, base64: encrypts TOTP secrets and signs challenges. Every node of
    /// a deployment needs the same key. default: generated into `<data_dir>/server.key`
    pub server_key: Option<String>,
    /// `json` or `text`. default: json unless stderr is a terminal
    pub log_format: Option<LogFormat>,
    /// tracing filter. default: info
    pub log_level: String,
    /// Access token lifetime (5 or more; under 60 only makes sense in tests). default: 900
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime. default: 2592000 (30 days)
    pub refresh_token_ttl_secs: i64,
    /// Leading zero bits a proof of work must have. default: 18 (~0.1 s in a browser)
    pub pow_difficulty: u32,
    /// Requests per minute per IP, all endpoints. default: 6000
    pub rate_ip_per_minute: u32,
    /// Auth attempts (register, verify, login, refresh) per minute per IP. default: 60
    pub rate_auth_ip_per_minute: u32,
    /// Auth attempts per hour per e-mail address. default: 30
    pub rate_auth_email_per_hour: u32,
    /// Overrides of the rate-limit table, `action = "<burst>/<seconds>"`
    /// (README, "Limits"). default: none
    pub rate_limits: std::collections::BTreeMap<String, String>,
    /// WebSockets one device may hold on a node; a new one past this closes
    /// the device's oldest (close code 4003). default: 4
    pub ws_sockets_per_device: u32,
    /// WebSockets one client address (IPv6: its /64) may hold on a node;
    /// past this the upgrade is refused with 429. default: 256
    pub ws_sockets_per_ip: u32,
    /// How long a socket whose access token expired waits for a `reauth`
    /// frame before it closes with 4002. default: 30
    pub ws_reauth_grace_secs: u32,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a proxy). default: false
    pub trust_forwarded_for: bool,
    /// Origins allowed by CORS (exact match). default: none
    pub cors_origins: Vec<String>,
    /// Connections in the database pool. default: 16
    pub db_pool_size: u32,
    /// SQLite only: `full` (a message answered `sent` survives an OS crash
    /// or power loss: an fsync per commit) or `normal` (a process crash
    /// only). default: full
    pub sqlite_synchronous: String,
    /// Undelivered messages expire after this many days. default: 30
    pub message_retention_days: u32,
    /// Members a group may have (channels have no limit). default: 1000
    pub group_max_members: u32,
    /// Groups up to this size have their members' presence pushed to each
    /// other; members of larger groups ask with `subscribe_presence`.
    /// default: 100
    pub presence_push_max_group: u32,
    /// This node's name in the cluster (its Redis event stream). A node that
    /// restarts with the same id resumes its stream. default: random per start
    pub node_id: Option<String>,
    /// S3 endpoint for media, e.g. https://s3.eu-west-1.amazonaws.com or
    /// http://127.0.0.1:9000 (MinIO). default: none (media in `<data_dir>/media`)
    pub s3_endpoint: Option<String>,
    /// default: vestnik-media
    pub s3_bucket: String,
    /// default: us-east-1
    pub s3_region: String,
    /// S3 access key id; required when `s3_endpoint` is set. Redacted in `Debug`.
    pub s3_access_key: Option<String>,
    /// S3 secret access key; required when `s3_endpoint` is set. Redacted in `Debug`.
    pub s3_secret_key: Option<String>,
    /// Path-style URLs (MinIO, SeaweedFS, Garage); false for AWS virtual-host style. default: true
    pub s3_path_style: bool,
    /// Largest stored media object: a 100 MiB file plus its encryption
    /// overhead (16 bytes per 64 KiB chunk) fits the default. default: 104923136 (100 MiB + 64 KiB)
    pub media_max_bytes: i64,
    /// Media bytes a user may hold at once. default: 2147483648 (2 GiB)
    pub media_quota_bytes: i64,
    /// Longest media lifetime (and the default one). default: 2592000 (30 days)
    pub media_max_ttl_secs: i64,
    /// Lifetime of an upload URL. default: 3600
    pub media_upload_url_secs: i64,
    /// Lifetime of a download URL. default: 300
    pub media_download_url_secs: i64,
    /// Make JPEG previews of public-channel images (stored in the clear, so
    /// the server may read them). default: true
    pub media_public_thumbnails: bool,
    /// clamd's TCP address (host:port): public-channel media is scanned when set. default: none
    pub clamd_addr: Option<String>,
    /// A second listener (host:port) that serves only `/metrics`, for the
    /// scraper on a private network. default: none
    pub metrics_listen: Option<String>,
    /// When set, `/metrics` on the public listener answers requests carrying
    /// `Authorization: Bearer <token>`. Without this or `metrics_listen`,
    /// `/metrics` is not served at all. Redacted in `Debug`. default: none
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for Config {
    // Hand-written so secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("mail", &self.mail)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mailersend_api_key", &redact(&self.mailersend_api_key))
            .field("server_key", &redact(&self.server_key))
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_access_key", &redact(&self.s3_access_key))
            .field("s3_secret_key", &redact(&self.s3_secret_key))
            .field("metrics_listen", &self.metrics_listen)
            .field("metrics_token", &redact(&self.metrics_token))
            .finish_non_exhaustive()
    }
}

/// `scheme://user:pass@host` → `scheme://***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            redis_ca_file: None,
            redis_prefix: "vestnik".into(),
            public_url: None,
            mail: MailKind::File,
            mail_from: "Vestnik <no-reply@localhost>".into(),
            smtp_url: None,
            mailersend_api_key: None,
            mailersend_url: "https://api.mailersend.com/v1/email".into(),
            server_key: None,
            log_format: None,
            log_level: "info".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            pow_difficulty: 18,
            rate_ip_per_minute: 6000,
            rate_auth_ip_per_minute: 60,
            rate_auth_email_per_hour: 30,
            rate_limits: Default::default(),
            ws_sockets_per_device: 4,
            ws_sockets_per_ip: 256,
            ws_reauth_grace_secs: 30,
            trust_forwarded_for: false,
            cors_origins: Vec::new(),
            db_pool_size: 16,
            sqlite_synchronous: "full".into(),
            message_retention_days: 30,
            group_max_members: 1000,
            presence_push_max_group: 100,
            node_id: None,
            s3_endpoint: None,
            s3_bucket: "vestnik-media".into(),
            s3_region: "us-east-1".into(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_path_style: true,
            media_max_bytes: 100 * 1024 * 1024 + 64 * 1024,
            media_quota_bytes: 2 * 1024 * 1024 * 1024,
            media_max_ttl_secs: 30 * 86_400,
            media_upload_url_secs: 3600,
            media_download_url_secs: 300,
            media_public_thumbnails: true,
            clamd_addr: None,
            metrics_listen: None,
            metrics_token: None,
        }
    }
}

/// The first invalid key [`Config::validate`] found, with why it is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid config key `{key}`: {reason}")]
pub struct ConfigError {
    /// The config key as written in the file (e.g. `smtp_url`).
    pub key: &'static str,
    /// What was expected, for the operator to fix.
    pub reason: String,
}

fn bad(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Checks every value and names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<std::net::SocketAddr>().map_err(|e| {
            bad(
                "listen",
                format!(
                    "expected host:port like 127.0.0.1:8080, got {:?} ({e})",
                    self.listen
                ),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "must not be empty"));
        }
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                return Err(bad(
                    "database_url",
                    format!("expected postgres://… or sqlite:…, got {}", redact_url(url)),
                ));
            }
        }
        if let Some(url) = self.redis_url.as_deref().filter(|u| !u.is_empty()) {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(bad(
                    "redis_url",
                    format!("expected redis://…, got {}", redact_url(url)),
                ));
            }
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(bad("redis_prefix", "expected a non-empty word"));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "public_url",
                    format!("expected http(s)://…, got {url:?}"),
                ));
            }
        }
        match self.mail {
            MailKind::Smtp => match self.smtp_url.as_deref() {
                Some(u)
                    if u.starts_with("smtp://")
                        || u.starts_with("smtps://")
                        || u.starts_with("smtp+starttls://") => {}
                _ => {
                    return Err(bad(
                        "smtp_url",
                        "mail = \"smtp\" needs smtp_url = \"smtp://host:port\"",
                    ))
                }
            },
            MailKind::Mailersend => {
                if self.mailersend_api_key.as_deref().unwrap_or("").is_empty() {
                    return Err(bad(
                        "mailersend_api_key",
                        "mail = \"mailersend\" needs an API key",
                    ));
                }
                if !self.mailersend_url.starts_with("http") {
                    return Err(bad("mailersend_url", "expected an http(s) URL"));
                }
            }
            MailKind::File => {}
        }
        if !self.mail_from.contains('@') {
            return Err(bad(
                "mail_from",
                format!("expected \"Name <addr@host>\", got {:?}", self.mail_from),
            ));
        }
        if let Some(k) = &self.server_key {
            use base64::Engine;
            let ok = base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .map(|b| b.len() == 32)
                .unwrap_or(false);
            if !ok {
                return Err(bad(
                    "server_key",
                    "expected 32 bytes in base64 (openssl rand -base64 32)",
                ));
            }
        }
        if !(5..=86_400).contains(&self.access_token_ttl_secs) {
            return Err(bad("access_token_ttl_secs", "expected 5..=86400"));
        }
        if !(1..=300).contains(&self.ws_reauth_grace_secs) {
            return Err(bad("ws_reauth_grace_secs", "expected 1..=300"));
        }
        if !(3600..=365 * 86_400).contains(&self.refresh_token_ttl_secs) {
            return Err(bad("refresh_token_ttl_secs", "expected 3600..=31536000"));
        }
        if self.pow_difficulty > 30 {
            return Err(bad(
                "pow_difficulty",
                format!("expected 0..=30 bits, got {}", self.pow_difficulty),
            ));
        }
        for (key, v) in [
            ("rate_ip_per_minute", self.rate_ip_per_minute),
            ("rate_auth_ip_per_minute", self.rate_auth_ip_per_minute),
            ("rate_auth_email_per_hour", self.rate_auth_email_per_hour),
            ("ws_sockets_per_device", self.ws_sockets_per_device),
            ("ws_sockets_per_ip", self.ws_sockets_per_ip),
        ] {
            if v == 0 {
                return Err(bad(key, "expected a positive number"));
            }
        }
        self.rate_table()?;
        if !matches!(self.sqlite_synchronous.as_str(), "full" | "normal") {
            return Err(bad(
                "sqlite_synchronous",
                format!("expected full or normal, got {:?}", self.sqlite_synchronous),
            ));
        }
        for o in &self.cors_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(bad(
                    "cors_origins",
                    format!("expected origins like https://chat.example.org, got {o:?}"),
                ));
            }
        }
        if let Some(n) = &self.node_id {
            if n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(bad("node_id", "expected 1-64 characters of [A-Za-z0-9-_.]"));
            }
        }
        if !(1..=3650).contains(&self.message_retention_days) {
            return Err(bad("message_retention_days", "expected 1..=3650"));
        }
        if !(2..=100_000).contains(&self.group_max_members) {
            return Err(bad("group_max_members", "expected 2..=100000"));
        }
        if !(2..=100_000).contains(&self.presence_push_max_group) {
            return Err(bad("presence_push_max_group", "expected 2..=100000"));
        }
        if !(1..=1000).contains(&self.db_pool_size) {
            return Err(bad("db_pool_size", "expected 1..=1000"));
        }
        self.validate_media()?;
        Ok(())
    }

    fn validate_media(&self) -> Result<(), ConfigError> {
        if let Some(e) = self.s3_endpoint.as_deref().filter(|e| !e.is_empty()) {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(bad(
                    "s3_endpoint",
                    format!("expected http(s)://…, got {e:?}"),
                ));
            }
            for (key, v) in [
                ("s3_access_key", &self.s3_access_key),
                ("s3_secret_key", &self.s3_secret_key),
            ] {
                if v.as_deref().unwrap_or("").is_empty() {
                    return Err(bad(key, "s3_endpoint needs both S3 credentials"));
                }
            }
            // S3 bucket naming rules (3-63 of a-z 0-9 . -).
            let b = &self.s3_bucket;
            if !(3..=63).contains(&b.len())
                || !b
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            {
                return Err(bad(
                    "s3_bucket",
                    format!("expected an S3 bucket name, got {b:?}"),
                ));
            }
            if self.s3_region.is_empty() {
                return Err(bad("s3_region", "must not be empty"));
            }
        }
        if !(1..=(5 << 30)).contains(&self.media_max_bytes) {
            return Err(bad(
                "media_max_bytes",
                "expected 1..=5368709120 (S3's single-PUT limit)",
            ));
        }
        if self.media_quota_bytes < self.media_max_bytes {
            return Err(bad(
                "media_quota_bytes",
                "expected at least media_max_bytes",
            ));
        }
        if !(60..=3650 * 86_400).contains(&self.media_max_ttl_secs) {
            return Err(bad("media_max_ttl_secs", "expected 60..=315360000"));
        }
        for (key, v) in [
            ("media_upload_url_secs", self.media_upload_url_secs),
            ("media_download_url_secs", self.media_download_url_secs),
        ] {
            // S3 presigned URLs live at most 7 days.
            if !(1..=7 * 86_400).contains(&v) {
                return Err(bad(key, "expected 1..=604800"));
            }
        }
        if let Some(a) = self.clamd_addr.as_deref().filter(|a| !a.is_empty()) {
            if a.parse::<std::net::SocketAddr>().is_err() && !a.contains(':') {
                return Err(bad("clamd_addr", format!("expected host:port, got {a:?}")));
            }
        }
        if let Some(a) = self.metrics_listen.as_deref().filter(|a| !a.is_empty()) {
            if a.parse::<std::net::SocketAddr>().is_err() {
                return Err(bad(
                    "metrics_listen",
                    format!("expected ip:port, e.g. 10.0.0.5:9100, got {a:?}"),
                ));
            }
        }
        if let Some(t) = self.metrics_token.as_deref().filter(|t| !t.is_empty()) {
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    "metrics_token",
                    "expected at least 16 printable characters (openssl rand -hex 16)",
                ));
            }
        }
        Ok(())
    }

    /// The rate limits in force: the table's defaults, the three keys that
    /// predate the table, then the `rate_limits` overrides.
    pub fn rate_table(&self) -> Result<crate::RateTable, ConfigError> {
        use crate::{Action, Rate};
        let mut t = crate::RateTable::default();
        t.set(Action::Requests, Rate::new(self.rate_ip_per_minute, 60));
        t.set(
            Action::AuthAttempts,
            Rate::new(self.rate_auth_ip_per_minute, 60),
        );
        t.set(
            Action::AuthPerEmail,
            Rate::new(self.rate_auth_email_per_hour, 3600),
        );
        t.apply(&self.rate_limits)
            .map_err(|reason| bad("rate_limits", reason))?;
        Ok(t)
    }

    /// Whether `database_url` selects PostgreSQL (otherwise SQLite is used).
    pub fn is_postgres(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let c = Config {
            listen: "nope".into(),
            ..Config::default()
        };
        assert_eq!(c.validate().map_err(|e| e.key), Err("listen"));
        let c = Config {
            mail: MailKind::Smtp,
            ..Config::default()
        };
        assert_eq!(c.validate().map_err(|e| e.key), Err("smtp_url"));
        let c = Config {
            server_key: Some("short".into()),
            ..Config::default()
        };
        assert_eq!(c.validate().map_err(|e| e.key), Err("server_key"));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = Config {
            server_key: Some("c2VjcmV0".into()),
            database_url: Some("postgres://u:hunter2@db/x".into()),
            ..Config::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2") && !s.contains("c2VjcmV0"), "{s}");
    }
}
