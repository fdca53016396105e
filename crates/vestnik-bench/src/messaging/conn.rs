//! One device's socket in `throughput` and `latency`: it receives, acks
//! in batches, and (for a pair's first device) sends, closed-loop or at a
//! fixed rate.
use anyhow::{bail, Context};
use futures::{FutureExt, SinkExt, StreamExt};
use rand::{Rng, RngCore};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{Instant as TokioInstant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use vestnik_proto::{AckRequest, ClientFrame, Envelope, SendMessage};

use super::*;
use crate::common::{now_ns, record, Frame, Stamp, Ws, CIPHERTEXT_RAW};

/// One device's socket: receives and acks; sends too when it has a `sender`.
pub(super) struct Conn {
    ws: Ws,
    shared: Arc<Shared>,
    opts: Arc<Opts>,
    stats: Stats,
    acks: Vec<i64>,
    backlog_cursors: HashSet<i64>,
    sender: Option<SenderSpec>,
    fillers: Vec<[u8; CIPHERTEXT_RAW]>,
    send_times: Vec<u64>,
    next_seq: u64,
    in_flight: usize,
    /// Fixed rate: ticks so far (the intended time of tick k is start + k·period).
    ticks: u64,
    rate_start_ns: u64,
}

impl Conn {
    pub(super) fn new(
        ws: Ws,
        shared: Arc<Shared>,
        opts: Arc<Opts>,
        sender: Option<SenderSpec>,
    ) -> Self {
        // Random bytes the stamps are written into, one per envelope.
        let fillers = (0..8)
            .map(|_| {
                let mut f = [0u8; CIPHERTEXT_RAW];
                rand::thread_rng().fill_bytes(&mut f);
                f
            })
            .collect();
        Self {
            ws,
            shared,
            opts,
            stats: Stats::new(),
            acks: Vec::new(),
            backlog_cursors: HashSet::new(),
            sender,
            fillers,
            send_times: vec![0; RING],
            next_seq: 0,
            in_flight: 0,
            ticks: 0,
            rate_start_ns: 0,
        }
    }

    async fn send_ack(&mut self) -> anyhow::Result<()> {
        while !self.acks.is_empty() {
            let n = self.acks.len().min(1000);
            let cursors: Vec<i64> = self.acks.drain(..n).collect();
            let text = serde_json::to_string(&ClientFrame::Ack(AckRequest { cursors }))?;
            self.ws.feed(Message::text(text)).await?;
            self.stats.ack_frames += 1;
        }
        self.ws.flush().await?;
        Ok(())
    }

    /// Handles one frame; true when it was `synced`.
    fn on_frame(&mut self, text: &str, live: bool) -> anyhow::Result<bool> {
        let f: Frame = serde_json::from_str(text).context("unparseable server frame")?;
        match f.kind.as_ref() {
            "message" => {
                let cursor = f.cursor.unwrap_or_default();
                if live && self.backlog_cursors.contains(&cursor) {
                    return Ok(false);
                }
                if !live {
                    self.backlog_cursors.insert(cursor);
                }
                self.acks.push(cursor);
                let Some(stamp) = f.ciphertext.as_deref().and_then(Stamp::parse) else {
                    *self
                        .stats
                        .errors
                        .entry("foreign_message".into())
                        .or_default() += 1;
                    return Ok(false);
                };
                let now = now_ns();
                self.stats.deliveries += 1;
                let in_window = self.shared.in_window(now);
                if in_window {
                    self.stats.deliveries_in_window += 1;
                }
                if self.shared.in_window(stamp.sent_ns) {
                    record(
                        hist(&mut self.stats.delivery),
                        now.saturating_sub(stamp.sent_ns),
                    );
                }
                if let Some(slot) = self.shared.slot(stamp.sender, stamp.seq) {
                    if slot.seq.load(Ordering::Acquire) == stamp.seq
                        && slot.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    {
                        self.shared.completed.fetch_add(1, Ordering::Relaxed);
                        if in_window {
                            self.stats.completed_in_window += 1;
                        }
                        if self.shared.in_window(stamp.sent_ns) {
                            record(
                                hist(&mut self.stats.complete),
                                now.saturating_sub(stamp.sent_ns),
                            );
                        }
                    }
                }
            }
            "receipt" => {
                if let Some(c) = f.cursor {
                    self.acks.push(c);
                }
                self.stats.receipts += 1;
            }
            "sent" => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.stats.stored += 1;
                self.shared.stored.fetch_add(1, Ordering::Relaxed);
                self.shared.answered.fetch_add(1, Ordering::Relaxed);
                let seq = f
                    .client_msg_id
                    .as_deref()
                    .and_then(|id| id.rsplit('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if let Some(seq) = seq {
                    let t = self.send_times[seq as usize % RING];
                    if self.shared.in_window(t) {
                        record(hist(&mut self.stats.answered), now_ns().saturating_sub(t));
                    }
                }
            }
            "error" => {
                let code = f.code.as_deref().unwrap_or("unknown").to_owned();
                if f.client_msg_id.is_some() {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.shared.answered.fetch_add(1, Ordering::Relaxed);
                }
                *self.stats.errors.entry(code).or_default() += 1;
            }
            "synced" => return Ok(true),
            _ => {}
        }
        Ok(false)
    }

    /// Queues one send; false once the run's message budget is spent.
    async fn send_one(&mut self, sent_ns: u64) -> anyhow::Result<bool> {
        let Some(s) = &self.sender else {
            return Ok(false);
        };
        if self.shared.sent.fetch_add(1, Ordering::Relaxed) >= self.shared.max_messages {
            return Ok(false);
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let stamp = Stamp {
            sent_ns,
            sender: s.idx,
            seq,
        };
        if let Some(slot) = self.shared.slot(s.idx, seq) {
            slot.remaining.store(
                u32::try_from(s.devices.len()).unwrap_or(u32::MAX),
                Ordering::Release,
            );
            slot.seq.store(seq, Ordering::Release);
        }
        self.send_times[seq as usize % RING] = sent_ns;
        let envelopes = s
            .devices
            .iter()
            .zip(&self.fillers)
            .map(|(d, filler)| Envelope {
                device_id: vestnik_proto::DeviceId::from_trusted(d.clone()),
                msg_type: 1,
                ciphertext: stamp.ciphertext(filler),
            })
            .collect();
        let frame = ClientFrame::Send(SendMessage {
            client_msg_id: format!("{}-{seq}", self.shared.run_id),
            conversation_id: vestnik_proto::ConversationId::from_trusted(s.conversation_id.clone()),
            kind: Default::default(),
            envelopes,
            ciphertext: None,
        });
        self.ws
            .feed(Message::text(serde_json::to_string(&frame)?))
            .await?;
        self.in_flight += 1;
        self.stats.sent += 1;
        Ok(true)
    }

    /// Fixed rate: whether the slot a new message would take is still in use.
    fn ring_full(&self) -> bool {
        let Some(s) = &self.sender else { return true };
        if self.in_flight >= self.opts.max_in_flight.min(RING - 1) {
            return true;
        }
        let seq = self.next_seq + 1;
        self.shared.slot(s.idx, seq).is_some_and(|slot| {
            slot.remaining.load(Ordering::Acquire) > 0
                && slot.seq.load(Ordering::Acquire) + RING as u64 == seq
        })
    }

    pub(super) async fn run(mut self, mut phase: watch::Receiver<u8>) -> anyhow::Result<Stats> {
        // The backlog, then `synced`.
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .context("no `synced` within 60 s")?;
            match m {
                Some(Ok(Message::Text(t))) => {
                    if self.on_frame(t.as_str(), false)? {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before `synced`"),
            }
        }
        self.send_ack().await?;
        self.shared.ready.fetch_add(1, Ordering::Relaxed);

        let ack_delay = Duration::from_millis(self.opts.ack_delay_ms);
        let ack_timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(ack_timer);
        let mut ack_armed = false;
        let period = self
            .sender
            .as_ref()
            .and_then(|s| s.period_ns)
            .map(Duration::from_nanos);
        let mut ticker: Option<tokio::time::Interval> = None;
        let mut current = *phase.borrow();
        let mut sending = true;
        loop {
            if current == RUNNING && sending && self.sender.is_some() {
                match period {
                    None => {
                        // Closed loop: refill the window.
                        let mut queued = false;
                        while self.in_flight < self.opts.window {
                            if !self.send_one(now_ns()).await? {
                                sending = false;
                                break;
                            }
                            queued = true;
                        }
                        if queued {
                            self.ws.flush().await?;
                        }
                    }
                    Some(p) if ticker.is_none() => {
                        let offset = Duration::from_nanos(
                            rand::thread_rng().gen_range(0..p.as_nanos().max(1) as u64),
                        );
                        let mut t = tokio::time::interval_at(TokioInstant::now() + offset, p);
                        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        self.rate_start_ns = now_ns() + offset.as_nanos() as u64;
                        ticker = Some(t);
                    }
                    Some(_) => {}
                }
            }
            if current >= CLOSE {
                break;
            }
            tokio::select! {
                m = self.ws.next() => {
                    let mut m = m;
                    // Everything already readable, then one ack decision.
                    loop {
                        match m {
                            Some(Ok(Message::Text(t))) => { self.on_frame(t.as_str(), true)?; }
                            Some(Ok(Message::Close(_))) | None => {
                                self.stats.disconnected += 1;
                                return Ok(self.stats);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                *self.stats.errors.entry(format!("socket: {e}")).or_default() += 1;
                                self.stats.disconnected += 1;
                                return Ok(self.stats);
                            }
                        }
                        match self.ws.next().now_or_never() {
                            Some(next) => m = next,
                            None => break,
                        }
                    }
                    if self.acks.len() >= self.opts.ack_batch || ack_delay.is_zero() {
                        self.send_ack().await?;
                        ack_armed = false;
                    } else if !self.acks.is_empty() && !ack_armed {
                        ack_timer.as_mut().reset(TokioInstant::now() + ack_delay);
                        ack_armed = true;
                    }
                }
                () = &mut ack_timer, if ack_armed => {
                    ack_armed = false;
                    self.send_ack().await?;
                }
                _ = async { match ticker.as_mut() { Some(t) => t.tick().await, None => std::future::pending().await } },
                    if current == RUNNING && sending => {
                    let intended = self.rate_start_ns
                        + self.ticks * period.map_or(0, |p| p.as_nanos() as u64);
                    self.ticks += 1;
                    if self.ring_full() {
                        self.stats.skipped += 1;
                    } else {
                        record(hist(&mut self.stats.lag), now_ns().saturating_sub(intended));
                        if self.send_one(intended).await? {
                            self.ws.flush().await?;
                        } else {
                            sending = false;
                        }
                    }
                }
                r = phase.changed() => {
                    if r.is_err() { break; }
                    current = *phase.borrow_and_update();
                }
            }
        }
        self.send_ack().await?;
        let _ = self.ws.close(None).await;
        Ok(self.stats)
    }
}
