//! Wiring: from a validated [`Config`] to a running node. The binary and the
//! integration tests both start the server through [`build`] and [`serve`].
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod config;
mod server_key;

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use vestnik_auth::{AuthService, AuthSettings, ServerKeys};
use vestnik_bus::{
    Cluster, Kv, LocalEventBus, LocalPresence, LocalSignals, MemoryKv, MemoryRateLimiter,
    NearCacheKv, RedisEventBus, RedisKv, RedisPresence, RedisRateLimiter, RedisSignals,
};
use vestnik_core::{Clock, Config, MailKind, SystemClock};
use vestnik_gateway::{Gateway, GatewaySettings};
use vestnik_mail::{FileMailer, Mailer, MailerSendMailer, SmtpMailer};
use vestnik_media::{
    BlobStore, ClamdScanner, LocalBlobStore, MediaService, MediaSettings, S3BlobStore, S3Settings,
};
use vestnik_store::Store;

pub use vestnik_gateway::router;

/// `database_url`, or the embedded SQLite file in the data dir.
pub fn database_url(config: &Config) -> String {
    match config.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", config.data_dir.join("vestnik.db").display()),
    }
}

/// Creates `data_dir` and opens the configured database (the URL is redacted in errors).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let url = database_url(config);
    let durability = if config.sqlite_synchronous == "normal" {
        vestnik_store::Durability::ProcessCrash
    } else {
        vestnik_store::Durability::PowerLoss
    };
    let store = vestnik_store::open_with(&url, config.db_pool_size, durability)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                vestnik_core::config::redact_url(&url)
            )
        })?;
    Ok(store)
}

/// The mailer `config.mail` selects; fails at start on a bad sender, URL or key rather than at the first mail.
pub fn mailer(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match config.mail {
        MailKind::File => Arc::new(FileMailer::new(
            config.data_dir.join("mail"),
            &config.mail_from,
        )?),
        MailKind::Smtp => Arc::new(SmtpMailer::new(
            config.smtp_url.as_deref().unwrap_or_default(),
            &config.mail_from,
        )?),
        MailKind::Mailersend => Arc::new(MailerSendMailer::new(
            &config.mailersend_url,
            config.mailersend_api_key.as_deref().unwrap_or_default(),
            &config.mail_from,
        )?),
    })
}

/// Builds every service of a node; applies migrations first.
pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Gateway>> {
    config.validate()?;
    // Every loop this node starts stops with it (`serve` stops them).
    let background = vestnik_core::Background::new();
    let store = open_store(config).await?;
    let applied = store.migrate().await.context("applying migrations")?;
    if !applied.is_empty() {
        tracing::info!(?applied, backend = store.backend(), "migrations applied");
    }
    let cluster = match config.redis_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => {
            let mut target = vestnik_bus::RedisTarget::new(url);
            if let Some(ca) = config.redis_ca_file.as_deref() {
                let pem = std::fs::read(ca)
                    .with_context(|| format!("reading redis_ca_file {}", ca.display()))?;
                target = target.with_root_cert(pem);
            }
            let conn = vestnik_bus::connect_redis(&target)
                .await
                .context("connecting to redis_url")?;
            let prefix = &config.redis_prefix;
            // Access tokens and device lists get a node-local copy,
            // invalidated across nodes over Redis pub/sub.
            let shared: Arc<dyn Kv> = Arc::new(RedisKv::new(conn.clone(), prefix));
            Cluster {
                kv: Arc::new(NearCacheKv::new(
                    shared,
                    conn.clone(),
                    &target,
                    prefix,
                    vestnik_auth::NEAR_CACHED_PREFIXES,
                )?),
                limiter: Arc::new(RedisRateLimiter::new(conn.clone(), prefix)),
                presence: Arc::new(RedisPresence::new(conn.clone(), prefix)),
                events: Arc::new(RedisEventBus::new(conn.clone(), &target, prefix)?),
                signals: Arc::new(RedisSignals::new(conn, &target, prefix)?),
            }
        }
        None => Cluster {
            kv: Arc::new(MemoryKv::new(clock.clone())),
            limiter: Arc::new(MemoryRateLimiter::new(clock.clone())),
            presence: Arc::new(LocalPresence::default()),
            events: Arc::new(LocalEventBus::default()),
            signals: Arc::new(LocalSignals::default()),
        },
    };
    // One rate table for every service: node-local buckets on this node,
    // shared ones in `cluster.limiter`.
    let limits = Arc::new(vestnik_bus::Limits::new(
        config.rate_table()?,
        cluster.limiter.clone(),
        Arc::new(MemoryRateLimiter::new(clock.clone())),
    ));
    let node_id = config
        .node_id
        .clone()
        .unwrap_or_else(vestnik_core::ids::new_id);
    let master = server_key::load_or_create(config)?;
    let (media, local_blobs) = media(
        config,
        store.clone(),
        clock.clone(),
        &master,
        limits.clone(),
        &background,
    )
    .await?;
    let settings = AuthSettings {
        access_ttl_secs: config.access_token_ttl_secs,
        refresh_ttl_secs: config.refresh_token_ttl_secs,
        pow_difficulty: config.pow_difficulty,
        issuer: "Vestnik".into(),
    };
    let realtime = vestnik_realtime::Realtime::start(
        store.clone(),
        clock.clone(),
        vestnik_realtime::RealtimeSettings {
            retention_ms: i64::from(config.message_retention_days) * 86_400_000,
            edit_window_ms: i64::from(config.message_edit_window_secs) * 1000,
            channel_retention_ms: (config.channel_retention_days > 0)
                .then(|| i64::from(config.channel_retention_days) * 86_400_000),
            // Two writers on PostgreSQL (each serves sends and acks): one
            // fills its batch while the other waits on its commit. More
            // writers split the same load into smaller batches, each paying
            // a commit and a round trip per statement (measured when sends
            // and acks had writers of their own, `throughput`: 4 writers
            // 6,400 msg/s with 62-message batches, 2 writers 8,000 with 165,
            // 1 writer 6,600 with full 256-message batches).
            writers: if config.is_postgres() { 2 } else { 1 },
            group_max_members: i64::from(config.group_max_members),
            presence_push_max_group: i64::from(config.presence_push_max_group),
            sockets_per_device: config.ws_sockets_per_device as usize,
        },
        node_id,
        &cluster,
        limits.clone(),
        &background,
    )
    .await?;
    let auth = AuthService::new(
        store.clone(),
        &cluster,
        limits.clone(),
        mailer(config)?,
        clock.clone(),
        ServerKeys::from_master(&master),
        settings,
    )?;
    let auth = Arc::new(auth);
    spawn_used_token_pruner(auth.clone(), &background);
    Ok(Arc::new(Gateway {
        auth,
        realtime: Arc::new(realtime),
        store,
        kv: cluster.kv.clone(),
        limits,
        metrics: vestnik_gateway::metrics_handle(),
        settings: GatewaySettings {
            trust_forwarded_for: config.trust_forwarded_for,
            sockets_per_ip: config.ws_sockets_per_ip as usize,
            metrics_token: config.metrics_token.clone().filter(|t| !t.is_empty()),
            hsts: config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
            ws_reauth_grace: std::time::Duration::from_secs(u64::from(config.ws_reauth_grace_secs)),
            ws_idle: std::time::Duration::from_secs(u64::from(config.ws_idle_secs)),
            cors_origins: config.cors_origins.clone(),
            uses_redis: config.redis_url.as_deref().is_some_and(|u| !u.is_empty()),
        },
        media,
        local_blobs,
        clock,
        background,
        sockets_by_ip: Default::default(),
    }))
}

/// How often each node sweeps the blob store for objects without a row.
const MEDIA_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often each node's media reaper looks for expired media.
const MEDIA_REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

type MediaParts = (Arc<MediaService>, Option<Arc<LocalBlobStore>>);

/// The blob store (S3 when `s3_endpoint` is set, else `<data_dir>/media`),
/// prepared (bucket, CORS), the media rules over it, and its reaper.
async fn media(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    master: &[u8; 32],
    limits: Arc<vestnik_bus::Limits>,
    background: &vestnik_core::Background,
) -> anyhow::Result<MediaParts> {
    let (blobs, local): (Arc<dyn BlobStore>, _) =
        match config.s3_endpoint.as_deref().filter(|e| !e.is_empty()) {
            Some(endpoint) => (
                Arc::new(S3BlobStore::new(&S3Settings {
                    endpoint: endpoint.to_owned(),
                    bucket: config.s3_bucket.clone(),
                    region: config.s3_region.clone(),
                    access_key: config.s3_access_key.clone().unwrap_or_default(),
                    secret_key: config.s3_secret_key.clone().unwrap_or_default(),
                    path_style: config.s3_path_style,
                })?),
                None,
            ),
            None => {
                // Without public_url the blob URLs are relative to the API's own.
                let local = Arc::new(LocalBlobStore::new(
                    &config.data_dir.join("media"),
                    config.public_url.as_deref().unwrap_or(""),
                    vestnik_auth::derive_server_key(master, "media-urls/v1"),
                )?);
                (local.clone() as Arc<dyn BlobStore>, Some(local))
            }
        };
    blobs
        .prepare(&config.cors_origins)
        .await
        .with_context(|| format!("preparing the {} media store", blobs.kind()))?;
    let service = Arc::new(MediaService::new(
        store,
        blobs,
        clock,
        MediaSettings {
            max_object_bytes: config.media_max_bytes,
            quota_bytes: config.media_quota_bytes,
            max_ttl_secs: config.media_max_ttl_secs,
            upload_url_secs: config.media_upload_url_secs,
            download_url_secs: config.media_download_url_secs,
            public_thumbnails: config.media_public_thumbnails,
        },
        config
            .clamd_addr
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(ClamdScanner::new),
        limits,
    ));
    vestnik_media::spawn_reaper(service.clone(), MEDIA_REAP_EVERY, background);
    vestnik_media::spawn_sweeper(service.clone(), MEDIA_SWEEP_EVERY, background);
    Ok((service, local))
}

/// Serves on an already-bound listener until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let background = gw.background.clone();
    let app = router(gw).into_make_service_with_connect_info::<SocketAddr>();
    // Frames are small and must leave at once: with Nagle's algorithm a
    // frame written while the previous one was unacknowledged waited for the
    // peer's delayed ACK (up to 40 ms on Linux; measured, `latency` on SQLite
    // at 2,000 msg/s, one run each: p90 26 → 4 ms, p99 49 → 34 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY refused");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // In-flight requests have finished; now the loops (reapers, pruners,
    // housekeeping, heartbeats, consumers) stop, each after its current pass.
    if !background.stop(BACKGROUND_GRACE).await {
        tracing::warn!(
            running = background.running(),
            "background tasks still running after the grace period"
        );
    }
    served
}

/// Serves only `/metrics` on `listener` (the `metrics_listen` address) until
/// `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, vestnik_gateway::metrics_router(gw))
        .with_graceful_shutdown(shutdown)
        .await
}

/// How long `serve` waits for the background tasks once it has stopped.
const BACKGROUND_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The real clock, as the binary passes it to [`build`] (the test server passes a `ManualClock`).
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Every node prunes; a row is deleted once whichever node gets to it.
fn spawn_used_token_pruner(auth: Arc<AuthService>, background: &vestnik_core::Background) {
    background.every(std::time::Duration::from_secs(600), move || {
        let auth = auth.clone();
        async move {
            match auth.prune_used_refresh_tokens(5000).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "expired used refresh tokens"),
                Err(e) => tracing::warn!(error = %e, "pruning used refresh tokens failed"),
            }
        }
    });
}
