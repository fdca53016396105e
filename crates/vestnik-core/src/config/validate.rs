//! `Config::validate`: every value checked, the first bad key named.
use super::{redact_url, Config, ConfigError, MailKind};

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
        if !(3..=3600).contains(&self.ws_idle_secs) {
            return Err(bad("ws_idle_secs", "expected 3..=3600"));
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
        if self.message_edit_window_secs > 31_536_000 {
            return Err(bad("message_edit_window_secs", "expected 0..=31536000"));
        }
        // A post must outlive the envelopes that point at its body.
        let c = self.channel_retention_days;
        if c != 0 && !(self.message_retention_days..=36500).contains(&c) {
            return Err(bad(
                "channel_retention_days",
                "expected 0 (keep) or message_retention_days..=36500",
            ));
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
