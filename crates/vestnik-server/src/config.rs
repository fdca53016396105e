//! Configuration layering: defaults < file < `VESTNIK_*` environment < flags.
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::Serialize;
use std::path::{Path, PathBuf};
use vestnik_core::Config;

/// Every key, as it appears in the file and (upper-cased, `VESTNIK_` prefixed) in the environment.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "redis_url",
    "redis_prefix",
    "redis_ca_file",
    "public_url",
    "mail",
    "mail_from",
    "smtp_url",
    "mailersend_api_key",
    "mailersend_url",
    "server_key",
    "log_format",
    "log_level",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "pow_difficulty",
    "rate_ip_per_minute",
    "rate_auth_ip_per_minute",
    "rate_auth_email_per_hour",
    "rate_limits",
    "ws_sockets_per_device",
    "ws_sockets_per_ip",
    "ws_reauth_grace_secs",
    "ws_idle_secs",
    "trust_forwarded_for",
    "cors_origins",
    "db_pool_size",
    "sqlite_synchronous",
    "message_retention_days",
    "channel_retention_days",
    "message_edit_window_secs",
    "group_max_members",
    "presence_push_max_group",
    "node_id",
    "s3_endpoint",
    "s3_bucket",
    "s3_region",
    "s3_access_key",
    "s3_secret_key",
    "s3_path_style",
    "media_max_bytes",
    "media_quota_bytes",
    "media_max_ttl_secs",
    "media_upload_url_secs",
    "media_download_url_secs",
    "media_public_thumbnails",
    "clamd_addr",
    "metrics_listen",
    "metrics_token",
];

/// Values given as command-line flags; `None` leaves the lower layers alone.
#[derive(Debug, Default, Clone, Serialize, clap::Args)]
pub struct Overrides {
    /// Address to bind, e.g. 127.0.0.1:8080
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Directory for the SQLite file, mail files and the server key
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// postgres://user@host/db (default: SQLite in the data dir)
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// redis://host:6379 (default: in-process caches and limits)
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Prefix for every Redis key
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_prefix: Option<String>,
    /// URL clients reach this server at
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// file | smtp | mailersend
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// smtp://host:port, smtps://… or smtp+starttls://…
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// json | text
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// tracing filter, e.g. info or vestnik=debug
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// The node's [`Config`]: defaults, then the TOML `file`, then `VESTNIK_*` variables, then `flags`
/// (later wins), validated; the error names the bad key for the operator.
pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, String> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        fig = fig.merge(Toml::file(path));
    }
    fig = fig
        .merge(Env::prefixed("VESTNIK_").only(KEYS))
        .merge(Serialized::defaults(flags));
    let config: Config = fig.extract().map_err(|e| {
        let key = e.path.join(".");
        if key.is_empty() {
            format!("invalid config: {e}")
        } else {
            format!("invalid config key `{key}`: {e}")
        }
    })?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_list_every_config_field() {
        let v = serde_json::to_value(Config::default()).expect("serialize");
        let mut fields: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn flags_beat_files_and_bad_keys_are_named() {
        let dir = std::env::temp_dir().join(format!("vestnik-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("v.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n",
        )
        .expect("write");
        let flags = Overrides {
            listen: Some("127.0.0.1:9001".into()),
            ..Overrides::default()
        };
        let c = load(Some(&file), &flags).expect("load");
        assert_eq!(
            (c.listen.as_str(), c.log_level.as_str()),
            ("127.0.0.1:9001", "debug")
        );

        std::fs::write(&file, "pow_difficulty = \"lots\"\n").expect("write");
        let err = load(Some(&file), &Overrides::default()).expect_err("must fail");
        assert!(err.contains("pow_difficulty"), "{err}");
        std::fs::write(&file, "no_such_key = 1\n").expect("write");
        let err = load(Some(&file), &Overrides::default()).expect_err("must fail");
        assert!(err.contains("no_such_key"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
