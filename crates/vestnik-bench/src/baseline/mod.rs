//! `baseline`: this machine's raw limits, measured by the same tool, so the
//! server's figures can be stated as a fraction of them:
//! - PostgreSQL: batched inserts of messages and their outbox rows, same
//!   schema and indexes as the server, the server's durability settings
//!   (whatever the database is configured with: `synchronous_commit` is reported);
//! - SQLite: the same, WAL with `synchronous = NORMAL` like the server;
//! - Redis: XADD → blocked XREAD round trips (the cross-node event path), and
//!   concurrent XADD throughput;
//! - a bare WebSocket echo server (a child process of this binary) with
//!   message-sized frames: round trips per second, and latency at a fixed rate.
use anyhow::{bail, Context};
use rand::RngCore;
use serde_json::{json, Value};
use std::path::PathBuf;

use crate::common::{self};

mod db;
mod echo;
mod streams;

use db::*;
pub use echo::echo_server;
use echo::*;
use streams::*;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// PostgreSQL to measure (a scratch table is created and dropped)
    #[arg(long)]
    pub pg_url: Option<String>,
    /// Redis to measure (scratch keys under a random prefix, deleted after)
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Measure SQLite in a scratch file in this directory (default: the temp dir)
    #[arg(long)]
    pub sqlite_dir: Option<PathBuf>,
    /// Skip SQLite
    #[arg(long)]
    pub no_sqlite: bool,
    /// Skip the WebSocket echo
    #[arg(long)]
    pub no_echo: bool,
    /// Seconds per measurement
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Messages per transaction in the batched-insert test (the server's batches hold up to 256)
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Outbox rows per message (envelopes)
    #[arg(long, default_value_t = 3)]
    pub envelopes: usize,
    /// Receipt rows per message in the full-cycle test (queued to the
    /// sender's devices, then deleted when they ack)
    #[arg(long, default_value_t = 2)]
    pub receipts: usize,
    /// Concurrent PostgreSQL writers (the server runs 2 per path)
    #[arg(long, default_value_t = 2)]
    pub pg_writers: usize,
    /// WebSocket echo: connections
    #[arg(long, default_value_t = 64)]
    pub echo_connections: usize,
    /// WebSocket echo: frames in flight per connection (closed loop)
    #[arg(long, default_value_t = 4)]
    pub echo_window: usize,
    /// WebSocket echo: frame size in bytes (a 3-envelope send frame is ~950)
    #[arg(long, default_value_t = 1000)]
    pub echo_bytes: usize,
    /// WebSocket echo: round trips per second for the latency measurement
    #[arg(long, default_value_t = 2000.0)]
    pub echo_rate: f64,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn ensure_loopback_url(url: &str) -> anyhow::Result<()> {
    let after = url.split("://").nth(1).context("expected scheme://host")?;
    let host_port = after.rsplit('@').next().unwrap_or(after);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .trim_matches(['[', ']']);
    let ok = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !ok {
        bail!("{host}: only loopback services are measured");
    }
    Ok(())
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let mut measured = serde_json::Map::new();
    if let Some(url) = &opts.pg_url {
        ensure_loopback_url(url)?;
        eprintln!(
            "[baseline] PostgreSQL: {} writers × {} messages a commit",
            opts.pg_writers, opts.batch
        );
        measured.insert(
            "postgres_batched".into(),
            pg_inserts(url, &opts, opts.batch, opts.pg_writers).await?,
        );
        eprintln!(
            "[baseline] PostgreSQL full cycle: store, ack + {} receipts, receipt acks",
            opts.receipts
        );
        measured.insert(
            "postgres_full_cycle".into(),
            pg_full_cycle(url, &opts, opts.batch, opts.pg_writers).await?,
        );
        eprintln!("[baseline] PostgreSQL: 1 writer, 1 message a commit");
        measured.insert(
            "postgres_single".into(),
            pg_inserts(url, &opts, 1, 1).await?,
        );
    }
    if !opts.no_sqlite {
        let dir = opts.sqlite_dir.clone().unwrap_or_else(std::env::temp_dir);
        eprintln!("[baseline] SQLite: {} messages a commit", opts.batch);
        measured.insert(
            "sqlite_batched".into(),
            sqlite_inserts(&dir, &opts, opts.batch).await?,
        );
        eprintln!(
            "[baseline] SQLite full cycle: store, ack + {} receipts, receipt acks",
            opts.receipts
        );
        measured.insert(
            "sqlite_full_cycle".into(),
            sqlite_full_cycle(&dir, &opts, opts.batch).await?,
        );
        eprintln!("[baseline] SQLite: 1 message a commit");
        measured.insert(
            "sqlite_single".into(),
            sqlite_inserts(&dir, &opts, 1).await?,
        );
    }
    if let Some(url) = &opts.redis_url {
        ensure_loopback_url(url)?;
        eprintln!("[baseline] Redis");
        measured.insert("redis".into(), redis_bench(url, &opts).await?);
    }
    if !opts.no_echo {
        eprintln!("[baseline] WebSocket echo");
        measured.insert("websocket_echo".into(), echo_bench(&opts).await?);
    }
    let config = json!({
        "label": opts.label,
        "duration_secs": opts.duration,
        "messages_per_commit": opts.batch,
        "envelopes": opts.envelopes,
        "receipts": opts.receipts,
    });
    common::emit(
        &common::result("baseline", config, Value::Object(measured)),
        opts.json.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_services_are_measured() {
        assert!(ensure_loopback_url("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(ensure_loopback_url("redis://localhost:6379").is_ok());
        assert!(ensure_loopback_url("redis://[::1]:6379").is_ok());
        assert!(ensure_loopback_url("postgres://u:p@db.example.org/x").is_err());
    }

    #[test]
    fn echo_frames_carry_their_send_time() {
        let m = echo_frame(1234, 1000);
        assert_eq!(m.len(), 1000);
        assert_eq!(echo_sent_at(&m), Some(1234));
    }
}
