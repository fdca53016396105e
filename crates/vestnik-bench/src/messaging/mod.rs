//! `throughput` and `latency`: 1:1 messages between pairs of seeded users.
//!
//! Every device of both users of a pair holds a socket. The first device of
//! each user sends to the other user (one envelope per device of both users
//! except the sending one: 3 with 2 devices each). Every device acks what it
//! receives (messages and the receipts they cause), in batches. A message
//! counts as done when all its envelopes reached their devices.
//!
//! Closed loop (no `--rate`): each sender keeps `--window` sends unanswered.
//! Fixed rate: `--rate` messages/s over all senders; each timestamp is the
//! *intended* send time, so a stalled server shows up as latency rather than
//! as a lower send rate (no coordinated omission).
use anyhow::bail;
use hdrhistogram::Histogram;
use rand::RngCore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

mod conn;

use crate::common::{self, histogram, now_ns, summary, CpuSample, Target, CIPHERTEXT_RAW};
use conn::Conn;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Server base URL (loopback only)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// JSON lines of `vestnik admin seed` (users of 2 devices)
    #[arg(long)]
    pub accounts: PathBuf,
    /// Pairs of users (each pair is one direct conversation); needs 2×pairs users
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Messages per second over all senders; omitted = closed loop
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: unanswered sends per sender
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Fixed rate: a sender with this many messages not yet fully delivered skips ticks
    #[arg(long, default_value_t = 200)]
    pub max_in_flight: usize,
    /// Both users of a pair send (otherwise only the first)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub bidirectional: bool,
    /// Seconds of sending before measuring
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait, after sending stops, for the last deliveries
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Upper bound on messages sent in the whole run
    #[arg(long, default_value_t = 5_000_000)]
    pub max_messages: u64,
    /// Ack after this many received items …
    #[arg(long, default_value_t = 64)]
    pub ack_batch: usize,
    /// … or this many milliseconds after the first unacked one; 0 = as soon
    /// as nothing more is readable, which is what `vestnik-client` does
    #[arg(long, default_value_t = 0)]
    pub ack_delay_ms: u64,
    /// Loopback source addresses to spread sockets over (127.0.0.2 …); 0 = kernel's choice
    #[arg(long, default_value_t = 4)]
    pub source_ips: usize,
    /// Sockets being opened at once
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Server process id: its CPU time and RSS are sampled
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Append the result as a JSON line to this file (`-` = stdout instead of the table)
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Free-form label stored with the result (e.g. the backend)
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Slots per sender in the delivery tracker; bounds messages in flight.
const RING: usize = 512;

const CONNECTING: u8 = 0;
const RUNNING: u8 = 1;
const STOP_SENDING: u8 = 2;
const CLOSE: u8 = 3;

struct Slot {
    seq: AtomicU64,
    remaining: AtomicU32,
}

struct Shared {
    run_id: String,
    slots: Vec<Slot>,
    measure_from: AtomicU64,
    measure_to: AtomicU64,
    ready: AtomicU64,
    sent: AtomicU64,
    answered: AtomicU64,
    stored: AtomicU64,
    completed: AtomicU64,
    max_messages: u64,
}

impl Shared {
    fn in_window(&self, t: u64) -> bool {
        t >= self.measure_from.load(Ordering::Relaxed)
            && t < self.measure_to.load(Ordering::Relaxed)
    }

    fn slot(&self, sender: u32, seq: u64) -> Option<&Slot> {
        self.slots
            .get(sender as usize * RING + (seq as usize % RING))
    }
}

struct SenderSpec {
    idx: u32,
    conversation_id: String,
    devices: Vec<String>,
    /// Fixed rate: nanoseconds between this sender's messages.
    period_ns: Option<u64>,
}

struct ConnSpec {
    token: String,
    src: Option<std::net::IpAddr>,
    sender: Option<SenderSpec>,
}

#[derive(Default)]
struct Stats {
    delivery: Option<Histogram<u64>>,
    complete: Option<Histogram<u64>>,
    answered: Option<Histogram<u64>>,
    lag: Option<Histogram<u64>>,
    deliveries_in_window: u64,
    completed_in_window: u64,
    receipts: u64,
    deliveries: u64,
    sent: u64,
    stored: u64,
    skipped: u64,
    ack_frames: u64,
    errors: BTreeMap<String, u64>,
    disconnected: u64,
}

impl Stats {
    fn new() -> Self {
        Self {
            delivery: Some(histogram()),
            complete: Some(histogram()),
            answered: Some(histogram()),
            lag: Some(histogram()),
            ..Self::default()
        }
    }

    fn merge(&mut self, o: Stats) {
        for (a, b) in [
            (&mut self.delivery, o.delivery),
            (&mut self.complete, o.complete),
            (&mut self.answered, o.answered),
            (&mut self.lag, o.lag),
        ] {
            if let (Some(a), Some(b)) = (a.as_mut(), b) {
                let _ = a.add(b);
            }
        }
        self.deliveries_in_window += o.deliveries_in_window;
        self.completed_in_window += o.completed_in_window;
        self.receipts += o.receipts;
        self.deliveries += o.deliveries;
        self.sent += o.sent;
        self.stored += o.stored;
        self.skipped += o.skipped;
        self.ack_frames += o.ack_frames;
        self.disconnected += o.disconnected;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

fn hist(h: &mut Option<Histogram<u64>>) -> &mut Histogram<u64> {
    h.get_or_insert_with(histogram)
}

pub async fn run(opts: Opts, scenario: &str) -> anyhow::Result<()> {
    let target = Target::parse(&opts.base)?;
    let users = common::load_accounts(&opts.accounts)?;
    if opts.pairs == 0 {
        bail!("--pairs: expected at least 1");
    }
    eprintln!("[{scenario}] opening {} direct conversations", opts.pairs);
    let convs = common::pair_conversations(&target, &users, opts.pairs, 16).await?;

    let senders_per_pair = if opts.bidirectional { 2 } else { 1 };
    let n_senders = opts.pairs * senders_per_pair;
    let period_ns = opts
        .rate
        .map(|r| (n_senders as f64 / r.max(1e-3) * 1e9) as u64);
    let mut run_id = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut run_id);
    let shared = Arc::new(Shared {
        run_id: run_id.iter().map(|b| format!("{b:02x}")).collect(),
        slots: (0..n_senders * RING)
            .map(|_| Slot {
                seq: AtomicU64::new(u64::MAX),
                remaining: AtomicU32::new(0),
            })
            .collect(),
        measure_from: AtomicU64::new(u64::MAX),
        measure_to: AtomicU64::new(u64::MAX),
        ready: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        stored: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        max_messages: opts.max_messages,
    });

    let mut specs = Vec::new();
    for (i, conv) in convs.iter().enumerate() {
        let (a, b) = (&users[2 * i], &users[2 * i + 1]);
        for (side, (me, peer)) in [(a, b), (b, a)].into_iter().enumerate() {
            for (k, d) in me.devices.iter().enumerate() {
                let sender = (k == 0 && (side == 0 || opts.bidirectional)).then(|| SenderSpec {
                    idx: u32::try_from(i * senders_per_pair + side).unwrap_or(u32::MAX),
                    conversation_id: conv.clone(),
                    devices: me
                        .devices
                        .iter()
                        .skip(1)
                        .chain(peer.devices.iter())
                        .map(|d| d.device_id.clone())
                        .collect(),
                    period_ns,
                });
                let n = specs.len();
                specs.push(ConnSpec {
                    token: d.access_token.clone(),
                    src: common::source_ip(n, opts.source_ips),
                    sender,
                });
            }
        }
    }
    let n_conns = specs.len();
    let envelopes_per_message = specs
        .iter()
        .find_map(|s| s.sender.as_ref().map(|s| s.devices.len()))
        .unwrap_or(0);

    eprintln!("[{scenario}] connecting {n_conns} sockets ({n_senders} senders)");
    let opts = Arc::new(opts);
    let (phase_tx, phase_rx) = watch::channel(CONNECTING);
    let gate = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n_conns);
    for spec in specs {
        let (shared, opts, target, gate, phase) = (
            shared.clone(),
            opts.clone(),
            target.clone(),
            gate.clone(),
            phase_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ws = {
                let _permit = gate.acquire_owned().await?;
                let mut last = None;
                let mut ws = None;
                for _ in 0..3 {
                    match common::connect(&target, spec.src, &spec.token).await {
                        Ok(w) => {
                            ws = Some(w);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                match ws {
                    Some(w) => w,
                    None => return Err(last.unwrap_or_else(|| anyhow::anyhow!("connect failed"))),
                }
            };
            Conn::new(ws, shared, opts, spec.sender).run(phase).await
        }));
    }

    // Every socket synced, bounded in time.
    let t0 = Instant::now();
    while (shared.ready.load(Ordering::Relaxed) as usize) < n_conns {
        if t0.elapsed() > Duration::from_secs(120) || tasks.iter().any(|t| t.is_finished()) {
            let _ = phase_tx.send(CLOSE);
            for t in tasks {
                if let Ok(Err(e)) = t.await {
                    bail!("a socket failed before the run: {e:#}");
                }
            }
            bail!("not every socket synced within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "[{scenario}] {n_conns} sockets synced in {connect_secs:.1} s; warming up {} s",
        opts.warmup
    );

    let _ = phase_tx.send(RUNNING);
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
    let batch0 = common::metric_sum_count(&target, "vestnik_send_batch_size").await;
    let cpu0 = CpuSample::take(opts.server_pid);
    let completed0 = shared.completed.load(Ordering::Relaxed);
    let start = now_ns();
    shared.measure_from.store(start, Ordering::Relaxed);
    let window_start = Instant::now();
    let mut timeline = Vec::new();
    let mut last = completed0;
    while window_start.elapsed().as_secs_f64() < opts.duration {
        let left = opts.duration - window_start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(left.clamp(0.0, 1.0))).await;
        let c = shared.completed.load(Ordering::Relaxed);
        timeline.push(c - last);
        eprintln!(
            "[{scenario}] +{:.0}s: {} messages fully delivered",
            window_start.elapsed().as_secs_f64(),
            c - last
        );
        last = c;
    }
    let end = now_ns();
    shared.measure_to.store(end, Ordering::Relaxed);
    let window_secs = (end - start) as f64 / 1e9;
    let cpu = cpu0.cores_since(opts.server_pid);
    let batch1 = common::metric_sum_count(&target, "vestnik_send_batch_size").await;
    let completed_window = shared.completed.load(Ordering::Relaxed) - completed0;
    let _ = phase_tx.send(STOP_SENDING);

    // Drain: every stored message delivered everywhere, bounded in time.
    let drain_start = Instant::now();
    loop {
        let sent = shared.sent.load(Ordering::Relaxed).min(opts.max_messages);
        let answered = shared.answered.load(Ordering::Relaxed);
        let done = answered >= sent
            && shared.completed.load(Ordering::Relaxed) >= shared.stored.load(Ordering::Relaxed);
        if done || drain_start.elapsed().as_secs_f64() > opts.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let the last acks go out before closing.
    tokio::time::sleep(Duration::from_millis(opts.ack_delay_ms + 50)).await;
    let _ = phase_tx.send(CLOSE);
    let mut stats = Stats::new();
    let mut failed = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => stats.merge(s),
            Ok(Err(e)) => failed.push(format!("{e:#}")),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let batch_mean = match (batch0, batch1) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some(common::round2((s1 - s0) / (c1 - c0))),
        _ => None,
    };
    let batches_per_sec = match (batch0, batch1) {
        (Some((_, c0)), Some((_, c1))) => Some(common::round2((c1 - c0) / window_secs)),
        _ => None,
    };
    let stored = stats.stored;
    let completed = shared.completed.load(Ordering::Relaxed);
    let mut sorted = timeline.clone();
    sorted.sort_unstable();
    let measured = json!({
        "messages_per_sec": common::round2(completed_window as f64 / window_secs),
        "deliveries_per_sec": common::round2(stats.deliveries_in_window as f64 / window_secs),
        "per_second": {
            "min": sorted.first(),
            "median": sorted.get(sorted.len() / 2),
            "max": sorted.last(),
        },
        "window_secs": common::round2(window_secs),
        "sockets": n_conns,
        "senders": n_senders,
        "envelopes_per_message": envelopes_per_message,
        "connect_secs": common::round2(connect_secs),
        "sent": stats.sent,
        "stored": stored,
        "fully_delivered": completed,
        "undelivered_after_drain": stored.saturating_sub(completed),
        "skipped_ticks": stats.skipped,
        "receipts_received": stats.receipts,
        "ack_frames": stats.ack_frames,
        "errors": stats.errors,
        "disconnected": stats.disconnected,
        "failed_sockets": failed.len(),
        "latency_send_to_sent": summary(hist(&mut stats.answered)),
        "latency_send_to_each_delivery": summary(hist(&mut stats.delivery)),
        "latency_send_to_all_delivered": summary(hist(&mut stats.complete)),
        "sender_lag": if opts.rate.is_some() { summary(hist(&mut stats.lag)) } else { Value::Null },
        "server_batch_size_mean": batch_mean,
        "server_batches_per_sec": batches_per_sec,
        "cpu": cpu,
        "server_rss_mib": opts.server_pid.and_then(common::rss_bytes).map(|b| b / (1024 * 1024)),
    });
    if let Some(e) = failed.first() {
        eprintln!("[{scenario}] {} sockets failed; first: {e}", failed.len());
    }
    let config = json!({
        "label": opts.label,
        "base": opts.base,
        "pairs": opts.pairs,
        "mode": if opts.rate.is_some() { "fixed-rate" } else { "closed-loop" },
        "rate": opts.rate,
        "window": opts.rate.is_none().then_some(opts.window),
        "bidirectional": opts.bidirectional,
        "warmup_secs": opts.warmup,
        "duration_secs": opts.duration,
        "ack_batch": opts.ack_batch,
        "ack_delay_ms": opts.ack_delay_ms,
        "ciphertext_chars": 4 * CIPHERTEXT_RAW / 3,
    });
    common::emit(
        &common::result(scenario, config, measured),
        opts.json.as_deref(),
    )
}
