//! The bare WebSocket limit: an echo server and a client measuring round
//! trips, closed loop and at a fixed rate.
use anyhow::{bail, Context};
use futures::{FutureExt, SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::time::{Instant as TokioInstant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, histogram, now_ns, record, round2, summary};

use super::*;

/// `echo-server`: echoes every WebSocket text or binary frame.
pub async fn echo_server(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        bail!("the echo server listens on loopback only");
    }
    println!("listening {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    return;
                }
            }
        });
    }
}

pub(super) fn echo_frame(ns: u64, bytes: usize) -> Message {
    let mut s = format!("{ns:020}");
    s.extend(std::iter::repeat_n('x', bytes.saturating_sub(20)));
    Message::text(s)
}

pub(super) fn echo_sent_at(m: &Message) -> Option<u64> {
    m.to_text().ok()?.get(..20)?.parse().ok()
}

/// Closed loop (rate = None) or fixed rate over `conns` connections.
pub(super) async fn echo_client(
    addr: std::net::SocketAddr,
    opts: &Opts,
    rate: Option<f64>,
) -> anyhow::Result<Value> {
    let deadline = TokioInstant::now() + Duration::from_secs_f64(1.0 + opts.duration);
    let measure_from = now_ns() + 1_000_000_000;
    let measure_to = measure_from + (opts.duration * 1e9) as u64;
    let mut tasks = Vec::new();
    for i in 0..opts.echo_connections.max(1) {
        let src = common::source_ip(i, 4);
        let (window, bytes, conns) = (
            opts.echo_window.max(1),
            opts.echo_bytes,
            opts.echo_connections.max(1),
        );
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::TcpSocket::new_v4()?;
            if let Some(ip) = src {
                sock.bind(std::net::SocketAddr::new(ip, 0))?;
            }
            let stream = sock.connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                format!("ws://{addr}/"),
                stream,
                Some(common::ws_config()),
            )
            .await?;
            let mut h = histogram();
            let mut done = 0u64;
            match rate {
                None => {
                    for _ in 0..window {
                        ws.feed(echo_frame(now_ns(), bytes)).await?;
                    }
                    ws.flush().await?;
                    while TokioInstant::now() < deadline {
                        let Ok(Some(m)) = tokio::time::timeout_at(deadline, ws.next()).await else {
                            break;
                        };
                        let m = m?;
                        let now = now_ns();
                        if let Some(t) = echo_sent_at(&m) {
                            if now >= measure_from && now < measure_to {
                                record(&mut h, now - t);
                                done += 1;
                            }
                        }
                        ws.send(echo_frame(now_ns(), bytes)).await?;
                    }
                }
                Some(r) => {
                    let period = Duration::from_secs_f64(conns as f64 / r.max(1e-3));
                    let offset = Duration::from_nanos(
                        rand::thread_rng().gen_range(0..period.as_nanos().max(1) as u64),
                    );
                    let start = TokioInstant::now() + offset;
                    let start_ns = now_ns() + offset.as_nanos() as u64;
                    let mut tick = tokio::time::interval_at(start, period);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                    let mut k = 0u64;
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {
                                if TokioInstant::now() >= deadline { break; }
                                let intended = start_ns + k * period.as_nanos() as u64;
                                k += 1;
                                ws.send(echo_frame(intended, bytes)).await?;
                            }
                            m = ws.next() => {
                                let Some(m) = m else { break };
                                let m = m?;
                                let now = now_ns();
                                if let Some(t) = echo_sent_at(&m) {
                                    if t >= measure_from && t < measure_to {
                                        record(&mut h, now - t);
                                        done += 1;
                                    }
                                }
                            }
                        }
                    }
                    // Answers still on their way.
                    while let Ok(Some(Ok(m))) =
                        tokio::time::timeout(Duration::from_millis(200), ws.next()).await
                    {
                        if let Some(t) = echo_sent_at(&m) {
                            if t >= measure_from && t < measure_to {
                                record(&mut h, now_ns() - t);
                                done += 1;
                            }
                        }
                    }
                }
            }
            let _ = ws.close(None).now_or_never();
            Ok::<_, anyhow::Error>((done, h))
        }));
    }
    let (mut done, mut h) = (0u64, histogram());
    for t in tasks {
        let (d, hh) = t.await??;
        done += d;
        let _ = h.add(hh);
    }
    Ok(json!({
        "round_trips_per_sec": round2(done as f64 / opts.duration),
        "round_trip": summary(&h),
    }))
}

pub(super) async fn echo_bench(opts: &Opts) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["echo-server", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("echo server stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("echo server did not start")??
        .context("echo server exited")?;
    let addr: std::net::SocketAddr = line
        .strip_prefix("listening ")
        .context("unexpected echo server output")?
        .parse()?;
    let pid = child.id();
    let cpu0 = common::CpuSample::take(pid);
    let closed = echo_client(addr, opts, None).await;
    let cpu = cpu0.cores_since(pid);
    let fixed = echo_client(addr, opts, Some(opts.echo_rate)).await;
    let _ = child.kill().await;
    Ok(json!({
        "frame_bytes": opts.echo_bytes,
        "connections": opts.echo_connections,
        "closed_loop": {"window": opts.echo_window, "measured": closed?, "cpu": cpu},
        "fixed_rate": {"rate": opts.echo_rate, "measured": fixed?},
    }))
}
