//! `reconnect-storm`: N devices, each with `--pending` messages waiting,
//! reconnect at the same instant; measures the time until every device has
//! its whole backlog (and `synced`) and has acked it.
//!
//! Pairs of users (A, B) with D devices each: A's last device is the loader,
//! the other 2D-1 devices of the pair are storm devices. The loader sends
//! `--pending` messages while the storm devices are offline, so each storm
//! device has exactly that many waiting.
use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use vestnik_proto::{AckRequest, ClientFrame, Envelope, SendMessage};

use crate::common::{
    self, histogram, now_ns, record, summary, CpuSample, Frame, Stamp, Target, Ws, CIPHERTEXT_RAW,
};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Server base URL (loopback only)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// JSON lines of `vestnik admin seed` (users of at least 2 devices; 3 gives 5 storm devices a pair)
    #[arg(long)]
    pub accounts: PathBuf,
    /// Storm devices (rounded up to whole pairs)
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Messages waiting for each storm device
    #[arg(long, default_value_t = 10)]
    pub pending: usize,
    /// Storm sockets being opened at once; 0 = all at once
    #[arg(long, default_value_t = 0)]
    pub connect_concurrency: usize,
    /// Loopback source addresses to spread sockets over (127.0.0.2 …)
    #[arg(long, default_value_t = 8)]
    pub source_ips: usize,
    /// Upper bound on the storm, in seconds
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

fn ack_frames(cursors: &[i64]) -> anyhow::Result<Vec<Message>> {
    cursors
        .chunks(1000)
        .map(|c| {
            Ok(Message::text(serde_json::to_string(&ClientFrame::Ack(
                AckRequest {
                    cursors: c.to_vec(),
                },
            ))?))
        })
        .collect()
}

/// Reads until `synced`; returns (messages, all cursors).
async fn backlog(ws: &mut Ws, limit: Duration) -> anyhow::Result<(u64, Vec<i64>)> {
    let mut cursors = Vec::new();
    let mut messages = 0;
    loop {
        let m = tokio::time::timeout(limit, ws.next())
            .await
            .context("no `synced` in time")?;
        match m {
            Some(Ok(Message::Text(t))) => {
                let f: Frame = serde_json::from_str(t.as_str())?;
                if let Some(c) = f.cursor {
                    cursors.push(c);
                }
                match f.kind.as_ref() {
                    "message" => messages += 1,
                    "synced" => return Ok((messages, cursors)),
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before `synced`"),
        }
    }
}

/// Loads the backlog: every loader sends `pending` messages and waits for
/// their `sent` answers.
async fn load(
    target: &Target,
    loaders: Vec<(String, String, Vec<String>)>,
    opts: &Opts,
) -> anyhow::Result<(u64, f64)> {
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let mut run_id = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut run_id);
    let run_id: String = run_id.iter().map(|b| format!("{b:02x}")).collect();
    let mut tasks = Vec::new();
    for (i, (token, conv, devices)) in loaders.into_iter().enumerate() {
        let (target, gate, run_id) = (target.clone(), gate.clone(), run_id.clone());
        let (pending, src) = (opts.pending, common::source_ip(i, opts.source_ips));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut ws = common::connect(&target, src, &token).await?;
            let (_, cursors) = backlog(&mut ws, Duration::from_secs(60)).await?;
            for m in ack_frames(&cursors)? {
                ws.feed(m).await?;
            }
            let mut filler = [0u8; CIPHERTEXT_RAW];
            rand::thread_rng().fill_bytes(&mut filler);
            for seq in 0..pending as u64 {
                let ct = Stamp {
                    sent_ns: now_ns(),
                    sender: u32::try_from(i).unwrap_or(u32::MAX),
                    seq,
                }
                .ciphertext(&filler);
                let frame = ClientFrame::Send(SendMessage {
                    client_msg_id: format!("{run_id}-{seq}"),
                    conversation_id: vestnik_proto::ConversationId::from_trusted(conv.clone()),
                    kind: Default::default(),
                    ciphertext: None,
                    envelopes: devices
                        .iter()
                        .map(|d| Envelope {
                            device_id: vestnik_proto::DeviceId::from_trusted(d.clone()),
                            msg_type: 1,
                            ciphertext: ct.clone(),
                        })
                        .collect(),
                });
                ws.feed(Message::text(serde_json::to_string(&frame)?))
                    .await?;
            }
            ws.flush().await?;
            let mut stored = 0u64;
            let mut answered = 0;
            while answered < pending {
                let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .context("no `sent` answer within 60 s")?;
                match m {
                    Some(Ok(Message::Text(t))) => {
                        let f: Frame = serde_json::from_str(t.as_str())?;
                        match f.kind.as_ref() {
                            "sent" => {
                                stored += 1;
                                answered += 1;
                            }
                            "error" => {
                                answered += 1;
                                eprintln!("[reconnect-storm] loader send refused: {}", t.as_str());
                            }
                            _ => {}
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("loader socket closed"),
                }
            }
            let _ = ws.close(None).await;
            Ok::<_, anyhow::Error>(stored)
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await??;
    }
    Ok((stored, t0.elapsed().as_secs_f64()))
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let target = Target::parse(&opts.base)?;
    let users = common::load_accounts(&opts.accounts)?;
    let d = users.iter().map(|u| u.devices.len()).min().unwrap_or(0);
    if d < 2 {
        bail!("reconnect-storm needs users with at least 2 devices");
    }
    let per_pair = 2 * d - 1;
    let pairs = opts.devices.div_ceil(per_pair);
    eprintln!(
        "[reconnect-storm] {pairs} pairs of users × {d} devices: {} storm devices",
        pairs * per_pair
    );
    let convs = common::pair_conversations(&target, &users, pairs, 16).await?;

    let mut loaders = Vec::with_capacity(pairs);
    let mut storm = Vec::with_capacity(pairs * per_pair);
    for (i, conv) in convs.iter().enumerate() {
        let (a, b) = (&users[2 * i], &users[2 * i + 1]);
        let (loader, rest) = a.devices.split_last().context("no devices")?;
        let targets: Vec<_> = rest.iter().chain(b.devices.iter()).collect();
        loaders.push((
            loader.access_token.clone(),
            conv.clone(),
            targets.iter().map(|d| d.device_id.clone()).collect(),
        ));
        storm.extend(targets.into_iter().map(|d| d.access_token.clone()));
    }

    eprintln!(
        "[reconnect-storm] {} loaders send {} messages each",
        loaders.len(),
        opts.pending
    );
    let (stored, load_secs) = load(&target, loaders, &opts).await?;
    eprintln!("[reconnect-storm] {stored} messages stored in {load_secs:.1} s; settling 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let n = storm.len();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let last_done_ns = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate =
        (opts.connect_concurrency > 0).then(|| Arc::new(Semaphore::new(opts.connect_concurrency)));
    let limit = Duration::from_secs_f64(opts.timeout);
    eprintln!("[reconnect-storm] {n} devices reconnect now");
    let cpu0 = CpuSample::take(opts.server_pid);
    let t0_ns = now_ns();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, token) in storm.into_iter().enumerate() {
        let (target, gate, done, failed, last_done_ns, mut stop) = (
            target.clone(),
            gate.clone(),
            done.clone(),
            failed.clone(),
            last_done_ns.clone(),
            stop_rx.clone(),
        );
        let src = common::source_ip(i, opts.source_ips);
        tasks.push(tokio::spawn(async move {
            let result = async {
                let permit = match gate {
                    Some(g) => Some(g.acquire_owned().await?),
                    None => None,
                };
                let mut ws = common::connect(&target, src, &token).await?;
                let connected = now_ns() - t0_ns;
                let (messages, cursors) = backlog(&mut ws, limit).await?;
                let synced = now_ns() - t0_ns;
                for m in ack_frames(&cursors)? {
                    ws.feed(m).await?;
                }
                // The server handles one socket's frames in order and answers
                // an ack only when it fails: the pong after the acks says
                // they are committed.
                let ping = ClientFrame::Ping {
                    nonce: Some("acked".into()),
                };
                ws.send(Message::text(serde_json::to_string(&ping)?))
                    .await?;
                let mut ack_errors = 0u64;
                let mut live = Vec::new();
                loop {
                    let m = tokio::time::timeout(limit, ws.next())
                        .await
                        .context("no pong after the acks in time")?;
                    match m {
                        Some(Ok(Message::Text(t))) => {
                            let f: Frame = serde_json::from_str(t.as_str())?;
                            match f.kind.as_ref() {
                                "pong" => break,
                                "error" => ack_errors += 1,
                                _ => live.extend(f.cursor),
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                        None => bail!("closed before the pong"),
                    }
                }
                let acked = now_ns() - t0_ns;
                for m in ack_frames(&live)? {
                    ws.feed(m).await?;
                }
                ws.flush().await?;
                drop(permit);
                Ok::<_, anyhow::Error>((
                    ws,
                    connected,
                    synced,
                    acked,
                    ack_errors,
                    messages,
                    cursors.len(),
                ))
            }
            .await;
            let (mut ws, connected, synced, acked, ack_errors, messages, items) = match result {
                Ok(r) => r,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            last_done_ns.fetch_max(now_ns() - t0_ns, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
            // Stay until everyone is done, acking receipts that arrive live.
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let f: Frame = serde_json::from_str(t.as_str())?;
                            if let Some(c) = f.cursor {
                                for m in ack_frames(&[c])? { ws.send(m).await?; }
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            let _ = ws.close(None).await;
            Ok((connected, synced, acked, ack_errors, messages, items))
        }));
    }
    loop {
        let (d, f) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        if (d + f) as usize >= n || t0.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained_secs = last_done_ns.load(Ordering::Relaxed) as f64 / 1e9;
    let cpu = cpu0.cores_since(opts.server_pid);
    let n_done = done.load(Ordering::Relaxed);
    eprintln!("[reconnect-storm] {n_done}/{n} drained (backlog received, acks committed) in {drained_secs:.2} s; acking receipts 2 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop_tx.send(true);

    let (mut connect_h, mut synced_h, mut acked_h) = (histogram(), histogram(), histogram());
    let (mut short, mut messages_total, mut items_total, mut ack_errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok((c, s, a, errors, m, items))) => {
                record(&mut connect_h, c);
                record(&mut synced_h, s);
                record(&mut acked_h, a);
                ack_errors += errors;
                messages_total += m;
                items_total += items as u64;
                if (m as usize) < opts.pending {
                    short += 1;
                }
            }
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let all = n_done as usize == n;
    let measured = json!({
        "drained_secs": if all { Some(common::round2(drained_secs)) } else { None },
        "devices_drained": n_done,
        "devices": n,
        "failed": failed.load(Ordering::Relaxed),
        "first_error": first_error,
        "devices_short_of_backlog": short,
        "backlog_messages_received": messages_total,
        "backlog_items_received": items_total,
        "messages_per_sec_delivered": common::round2(messages_total as f64 / drained_secs.max(1e-9)),
        "time_to_connected": summary(&connect_h),
        "time_to_synced": summary(&synced_h),
        "time_to_acks_committed": summary(&acked_h),
        "ack_errors": ack_errors,
        "load_messages_stored": stored,
        "load_secs": common::round2(load_secs),
        "cpu": cpu,
        "server_rss_mib": opts.server_pid.and_then(common::rss_bytes).map(|b| b / (1024 * 1024)),
    });
    let config = json!({
        "label": opts.label,
        "base": opts.base,
        "storm_devices": n,
        "pending_per_device": opts.pending,
        "devices_per_user": d,
        "connect_concurrency": if opts.connect_concurrency == 0 { "all at once".to_string() } else { opts.connect_concurrency.to_string() },
        "source_ips": opts.source_ips,
    });
    common::emit(
        &common::result("reconnect-storm", config, measured),
        opts.json.as_deref(),
    )
}
