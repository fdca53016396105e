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
    /// A socket silent this long (no frame, no pong, whether or not it
    /// reads) is closed with 4005; the server pings every third of it.
    /// default: 75
    pub ws_idle_secs: u32,
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
    /// Undelivered messages expire after this many days (a channel's posts
    /// are its history and follow `channel_retention_days`). default: 30
    pub message_retention_days: u32,
    /// How long after sending a sender may delete a message for everyone
    /// (managers of a group or channel may at any time); 0: never.
    /// default: 172800 (two days)
    pub message_edit_window_secs: u32,
    /// Channel posts are deleted this many days after posting; 0 keeps them
    /// until deleted. At least `message_retention_days` when set. default: 0
    pub channel_retention_days: u32,
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
            ws_idle_secs: 75,
            trust_forwarded_for: false,
            cors_origins: Vec::new(),
            db_pool_size: 16,
            sqlite_synchronous: "full".into(),
            message_retention_days: 30,
            channel_retention_days: 0,
            message_edit_window_secs: 172_800,
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

mod validate;

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
