//! `fanout`: one message into a group (or one post into a public channel)
//! whose members are all online; the time until the last member has it.
//! Messages go one at a time, `--interval-ms` apart, so each is measured on
//! its own rather than queued behind the previous one.
use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, histogram, now_ns, record, summary, Frame, Target};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Server base URL (loopback only)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// JSON lines of `vestnik admin seed` (the first device of each user is used)
    #[arg(long)]
    pub accounts: PathBuf,
    /// `group` or `channel`
    #[arg(long, default_value = "group")]
    pub kind: String,
    /// Members besides the sender (group) or subscribers (channel)
    #[arg(long, default_value_t = 49)]
    pub members: usize,
    /// Messages to send, one at a time
    #[arg(long, default_value_t = 30)]
    pub messages: usize,
    /// Pause between messages
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Loopback source addresses to spread sockets over (127.0.0.2 …)
    #[arg(long, default_value_t = 8)]
    pub source_ips: usize,
    /// Sockets (and subscribe requests) being opened at once
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// How long to wait for a message to reach everyone before calling it lost
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

/// 272 base64 characters (~200 bytes, an E2EE-sized message) whose first
/// eight characters are the message index.
fn body(i: usize) -> String {
    format!("{i:08}{}", "A".repeat(264))
}

async fn post_json(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = http.post(&url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("POST {url}: {status} {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let target = Target::parse(&opts.base)?;
    if opts.kind != "group" && opts.kind != "channel" {
        bail!("--kind: expected group or channel");
    }
    let users = common::load_accounts(&opts.accounts)?;
    if users.len() < opts.members + 1 {
        bail!(
            "{} members and a sender need {} seeded users; the file has {}",
            opts.members,
            opts.members + 1,
            users.len()
        );
    }
    let token = |i: usize| users[i].devices[0].access_token.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;

    // The conversation: a group with everyone, or a public channel everyone subscribes to.
    let t_setup = Instant::now();
    let conv = if opts.kind == "group" {
        let ids: Vec<&str> = users[1..=opts.members]
            .iter()
            .map(|u| u.id.as_str())
            .collect();
        let c = post_json(
            &http,
            format!("{}/v1/conversations", target.base),
            &token(0),
            Some(json!({"kind": "group", "title": "bench", "member_user_ids": ids})),
        )
        .await?;
        c["id"].as_str().context("group without id")?.to_owned()
    } else {
        let c = post_json(
            &http,
            format!("{}/v1/conversations", target.base),
            &token(0),
            Some(json!({"kind": "channel", "title": "bench", "visibility": "public"})),
        )
        .await?;
        let id = c["id"].as_str().context("channel without id")?.to_owned();
        let results: Vec<anyhow::Result<Value>> = futures::stream::iter(1..=opts.members)
            .map(|i| {
                let (http, url, t) = (
                    &http,
                    format!("{}/v1/conversations/{id}/subscribe", target.base),
                    token(i),
                );
                async move { post_json(http, url, &t, None).await }
            })
            .buffer_unordered(opts.connect_concurrency.max(1))
            .collect()
            .await;
        for r in results {
            r?;
        }
        id
    };
    eprintln!(
        "[fanout] {} {conv} with {} members ready in {:.1} s; connecting",
        opts.kind,
        opts.members,
        t_setup.elapsed().as_secs_f64()
    );

    // Every member online: one socket each, synced before the first message.
    let n = opts.messages;
    let last_ns: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let first_ns: Arc<Vec<AtomicU64>> =
        Arc::new((0..n).map(|_| AtomicU64::new(u64::MAX)).collect());
    let got: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let synced = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let want = if opts.kind == "group" {
        "message"
    } else {
        "channel_post"
    };
    let mut tasks = Vec::new();
    for i in 1..=opts.members {
        let (target, t, gate, synced, mut stop) = (
            target.clone(),
            token(i),
            gate.clone(),
            synced.clone(),
            stop_rx.clone(),
        );
        let (last_ns, first_ns, got) = (last_ns.clone(), first_ns.clone(), got.clone());
        let src = common::source_ip(i, opts.source_ips);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let ws = common::connect(&target, src, &t).await?;
            let (mut sink, mut stream) = ws.split();
            let mut is_synced = false;
            let mut permit = Some(permit);
            loop {
                let m = tokio::select! {
                    m = stream.next() => m,
                    _ = stop.changed() => break,
                };
                let text = match m {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("socket closed"),
                };
                let at = now_ns();
                let f: Frame = serde_json::from_str(text.as_str())?;
                if f.kind == "synced" && !is_synced {
                    is_synced = true;
                    permit.take();
                    synced.fetch_add(1, Ordering::Relaxed);
                } else if f.kind == want {
                    let idx = f
                        .ciphertext
                        .as_deref()
                        .and_then(|c| c.get(..8))
                        .and_then(|d| d.parse::<usize>().ok());
                    if let Some(k) = idx.filter(|k| *k < last_ns.len()) {
                        last_ns[k].fetch_max(at, Ordering::Relaxed);
                        first_ns[k].fetch_min(at, Ordering::Relaxed);
                        got[k].fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Group members take delivery like a real client does.
                if let Some(c) = f.cursor {
                    let ack = json!({"type": "ack", "cursors": [c]}).to_string();
                    sink.send(Message::text(ack)).await?;
                }
            }
            let _ = sink.close().await;
            Ok::<_, anyhow::Error>(())
        }));
    }
    let t_connect = Instant::now();
    while (synced.load(Ordering::Relaxed) as usize) < opts.members {
        if t_connect.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {} members connected in 300 s",
                synced.load(Ordering::Relaxed),
                opts.members
            );
        }
        if tasks.iter().any(|t| t.is_finished()) {
            bail!("a member's socket failed while connecting");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "[fanout] {} members online in {:.1} s; sending {n} messages",
        opts.members,
        t_connect.elapsed().as_secs_f64()
    );

    let cpu0 = common::CpuSample::take(opts.server_pid);
    let mut sent_ns = vec![0u64; n];
    let send_url = format!("{}/v1/messages", target.base);
    let sender = token(0);
    let t_run = Instant::now();
    for (i, sent) in sent_ns.iter_mut().enumerate() {
        *sent = now_ns();
        post_json(
            &http,
            send_url.clone(),
            &sender,
            Some(
                json!({"client_msg_id": format!("fanout-{}-{i}", *sent), "conversation_id": conv,
                "kind": opts.kind, "ciphertext": body(i)}),
            ),
        )
        .await?;
        // Wait for this one to reach everyone (or time out) before the next.
        let deadline = Instant::now() + Duration::from_secs_f64(opts.timeout);
        while (got[i].load(Ordering::Relaxed) as usize) < opts.members && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(opts.interval_ms)).await;
    }
    let run_secs = t_run.elapsed().as_secs_f64();
    let cpu = cpu0.cores_since(opts.server_pid);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let (mut last_h, mut first_h) = (histogram(), histogram());
    let mut incomplete = 0u64;
    for i in 0..n {
        let g = got[i].load(Ordering::Relaxed) as usize;
        if g < opts.members {
            incomplete += 1;
            continue;
        }
        record(
            &mut last_h,
            last_ns[i]
                .load(Ordering::Relaxed)
                .saturating_sub(sent_ns[i]),
        );
        record(
            &mut first_h,
            first_ns[i]
                .load(Ordering::Relaxed)
                .saturating_sub(sent_ns[i]),
        );
    }
    let measured = json!({
        "members": opts.members,
        "messages": n,
        "messages_short_of_someone": incomplete,
        "send_to_last_member": summary(&last_h),
        "send_to_first_member": summary(&first_h),
        "run_secs": common::round2(run_secs),
        "cpu": cpu,
    });
    let config = json!({
        "label": opts.label,
        "base": opts.base,
        "kind": opts.kind,
        "members": opts.members,
        "messages": n,
        "interval_ms": opts.interval_ms,
        "ciphertext_chars": body(0).len(),
    });
    common::emit(
        &common::result(&format!("fanout-{}", opts.kind), config, measured),
        opts.json.as_deref(),
    )
}
