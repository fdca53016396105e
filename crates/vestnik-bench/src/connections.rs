//! `connections`: ramps to K idle authenticated sockets (each synced), holds
//! them, and reports the server's RSS per connection.
use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, histogram, record, summary, Frame, Target};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Server base URL (loopback only)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// JSON lines of `vestnik admin seed`
    #[arg(long)]
    pub accounts: PathBuf,
    /// Sockets to open; with fewer seeded devices, devices get several sockets
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Sockets being opened at once during the ramp
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Loopback source addresses to spread sockets over (127.0.0.2 …)
    #[arg(long, default_value_t = 8)]
    pub source_ips: usize,
    /// Seconds to hold every socket open after the ramp (RSS is sampled throughout)
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Upper bound on the ramp, in seconds
    #[arg(long, default_value_t = 300.0)]
    pub ramp_timeout: f64,
    /// Server process id (required: its RSS is what this scenario measures)
    #[arg(long)]
    pub server_pid: u32,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let target = Target::parse(&opts.base)?;
    let devices: Vec<_> = common::load_accounts(&opts.accounts)?
        .into_iter()
        .flat_map(|u| u.devices)
        .collect();
    if devices.is_empty() || opts.count == 0 {
        bail!("nothing to connect");
    }
    let pid = opts.server_pid;
    let rss0 = common::rss_bytes(pid).context("cannot read the server's RSS")?;
    eprintln!(
        "[connections] server RSS before: {} MiB; opening {} sockets over {} devices",
        rss0 / (1 << 20),
        opts.count,
        devices.len().min(opts.count)
    );

    let up = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(opts.count);
    for i in 0..opts.count {
        let d = &devices[i % devices.len()];
        let (target, token, gate, up, failed, mut stop) = (
            target.clone(),
            d.access_token.clone(),
            gate.clone(),
            up.clone(),
            failed.clone(),
            stop_rx.clone(),
        );
        let src = common::source_ip(i, opts.source_ips);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let started = Instant::now();
            let ws = match common::connect(&target, src, &token).await {
                Ok(ws) => ws,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            let (mut sink, mut stream) = ws.split();
            // Until `synced` (acking any backlog), then idle.
            let mut cursors = Vec::new();
            loop {
                match stream.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let f: Frame = serde_json::from_str(t.as_str())?;
                        if let Some(c) = f.cursor {
                            cursors.push(c);
                        }
                        if f.kind == "synced" {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return Err(e.into());
                    }
                    None => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        bail!("closed before `synced`");
                    }
                }
            }
            if !cursors.is_empty() {
                use futures::SinkExt;
                cursors.truncate(1000);
                let ack = json!({"type": "ack", "cursors": cursors}).to_string();
                sink.send(Message::text(ack)).await?;
            }
            let took = started.elapsed();
            drop(permit);
            up.fetch_add(1, Ordering::Relaxed);
            // Idle: keep reading so pings are answered, until told to stop.
            let mut dropped = false;
            loop {
                tokio::select! {
                    m = stream.next() => match m {
                        Some(Ok(_)) => {}
                        _ => { dropped = true; break; }
                    },
                    _ = stop.changed() => break,
                }
            }
            if !dropped {
                use futures::SinkExt;
                let _ = sink.close().await;
            }
            Ok::<_, anyhow::Error>((took, dropped))
        }));
    }

    let mut last_report = Instant::now();
    loop {
        let (u, f) = (up.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        if (u + f) as usize >= opts.count || t0.elapsed().as_secs_f64() > opts.ramp_timeout {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "[connections] {u} up, {f} failed, {:.0} s",
                t0.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp_secs = t0.elapsed().as_secs_f64();
    let n_up = up.load(Ordering::Relaxed);
    eprintln!(
        "[connections] {n_up} up in {ramp_secs:.1} s; holding {} s",
        opts.hold
    );

    // Hold, sampling RSS each second; the figure is the last sample.
    let hold_start = Instant::now();
    let mut rss_samples = Vec::new();
    while hold_start.elapsed().as_secs_f64() < opts.hold {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(r) = common::rss_bytes(pid) {
            rss_samples.push(r);
        }
    }
    let rss1 = rss_samples
        .last()
        .copied()
        .or_else(|| common::rss_bytes(pid))
        .unwrap_or(rss0);
    let still_up = n_up;
    let _ = stop_tx.send(true);
    let mut connect_hist = histogram();
    let mut dropped = 0u64;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok((took, d))) => {
                record(
                    &mut connect_hist,
                    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
                );
                dropped += u64::from(d);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let per_conn = if n_up > 0 {
        Some((rss1.saturating_sub(rss0)) as f64 / n_up as f64)
    } else {
        None
    };
    let measured = json!({
        "sockets_up": n_up,
        "failed": failed.load(Ordering::Relaxed),
        "dropped_while_held": dropped,
        "first_error": first_error,
        "ramp_secs": common::round2(ramp_secs),
        "connects_per_sec": common::round2(n_up as f64 / ramp_secs.max(1e-9)),
        "connect_to_synced": summary(&connect_hist),
        "server_rss_before_mib": common::round2(rss0 as f64 / 1048576.0),
        "server_rss_after_mib": common::round2(rss1 as f64 / 1048576.0),
        "server_rss_per_socket_kib": per_conn.map(|b| common::round2(b / 1024.0)),
        "extrapolated_rss_100k_gib": per_conn.map(|b| common::round2((rss0 as f64 + b * 100_000.0) / 1073741824.0)),
        "held_secs": opts.hold,
        "still_up_at_end": still_up.saturating_sub(dropped),
    });
    let config = json!({
        "label": opts.label,
        "base": opts.base,
        "count": opts.count,
        "distinct_devices": devices.len().min(opts.count),
        "connect_concurrency": opts.connect_concurrency,
        "source_ips": opts.source_ips,
    });
    common::emit(
        &common::result("connections", config, measured),
        opts.json.as_deref(),
    )
}
