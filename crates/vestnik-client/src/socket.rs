//! The WebSocket task: connects with the bearer token, stores and
//! acknowledges what arrives, carries the outbox's sends, pings, and
//! reconnects with backoff until told to stop.
use std::sync::Arc;
use std::time::Instant;

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vestnik_proto::{AckRequest, ClientFrame, CloseReason, ServerFrame};

use crate::backoff::Backoff;
use crate::engine::{Flow, Inner};
use crate::error::{ClientError, Result};
use crate::types::ClientEvent;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Cursors acknowledged in one frame at most (the server takes up to 1000).
const ACK_BATCH: usize = 200;
/// Outgoing frames queued for the socket.
const OUTGOING_QUEUE: usize = 64;

/// `http(s)://host` → `ws(s)://host/v1/ws`.
pub(crate) fn ws_url(base: &str) -> Result<String> {
    if let Some(rest) = base.strip_prefix("https://") {
        Ok(format!("wss://{rest}/v1/ws"))
    } else if let Some(rest) = base.strip_prefix("http://") {
        Ok(format!("ws://{rest}/v1/ws"))
    } else {
        Err(ClientError::InvalidInput(format!(
            "server_url: expected http:// or https://, got {base:?}"
        )))
    }
}

async fn stop_requested(stop: &mut watch::Receiver<bool>, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = stop.wait_for(|v| *v) => {}
        _ = shutdown.wait_for(|v| *v) => {}
    }
}

fn is_stopped(stop: &watch::Receiver<bool>, shutdown: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || *shutdown.borrow()
}

impl Inner {
    async fn open_socket(&self) -> Result<Ws> {
        let url = ws_url(self.api.base())?;
        for attempt in 0..2 {
            let token = self.api.access_token().await?;
            let mut req = url.as_str().into_client_request()?;
            req.headers_mut().insert(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().map_err(|_| {
                    ClientError::Protocol("access token is not a header value".into())
                })?,
            );
            let connecting = tokio_tungstenite::connect_async_with_config(req, None, true);
            match tokio::time::timeout(self.config.request_timeout, connecting).await {
                Ok(Ok((ws, _))) => return Ok(ws),
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(res)))
                    if res.status() == http::StatusCode::UNAUTHORIZED && attempt == 0 =>
                {
                    self.api.refresh(&token).await?;
                }
                Ok(Err(tokio_tungstenite::tungstenite::Error::Http(res))) => {
                    let body = res.body().clone().unwrap_or_default();
                    return Err(crate::api::api_error(res.status(), &body));
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => {
                    return Err(ClientError::Transport(format!(
                        "websocket handshake took longer than {:?}",
                        self.config.request_timeout
                    )))
                }
            }
        }
        Err(ClientError::SessionEnded(
            "the server refused the refreshed token".into(),
        ))
    }

    async fn send_ack(
        sink: &mut futures::stream::SplitSink<Ws, Message>,
        acks: &mut Vec<i64>,
    ) -> Result<()> {
        if acks.is_empty() {
            return Ok(());
        }
        let frame = ClientFrame::Ack(AckRequest {
            cursors: std::mem::take(acks),
        });
        let text =
            serde_json::to_string(&frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
        sink.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// The socket's token expired on the server: refresh it and hand the
    /// new one to the socket (no reconnect, so sockets whose tokens expire
    /// together do not all reconnect together).
    async fn reauthenticate(self: Arc<Self>) {
        let result = async {
            let expired = self.api.access_token().await?;
            self.api.refresh(&expired).await?;
            let fresh = self.api.access_token().await?;
            let link = self.link.borrow().clone();
            if let Some(tx) = link {
                let _ = tx
                    .send(ClientFrame::Reauth {
                        access_token: fresh.into(),
                    })
                    .await;
            }
            Ok::<(), ClientError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::debug!("socket re-authenticated");
                self.counters
                    .reauths
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            // The server closes the socket after its grace; the reconnect
            // then meets the same failure and reports it.
            Err(e) => tracing::warn!(error = %e, "re-authenticating the socket failed"),
        }
    }

    /// Runs one connection until it breaks or the client stops it. Returns
    /// why it ended, whether the backlog was fully received, and the
    /// server's close reason when it closed with one of ours.
    async fn run_session(
        self: &Arc<Self>,
        ws: Ws,
        stop: &mut watch::Receiver<bool>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> (String, bool, Option<CloseReason>) {
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<ClientFrame>(OUTGOING_QUEUE);
        self.link.send_replace(Some(tx));
        let mut acks: Vec<i64> = Vec::new();
        let mut synced = false;
        let keepalive = self.config.keepalive;
        let mut ping = tokio::time::interval(keepalive);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut closed_with = None;
        let reason = loop {
            tokio::select! {
                biased;
                _ = stop_requested(stop, shutdown) => {
                    let _ = Self::send_ack(&mut sink, &mut acks).await;
                    let _ = sink.send(Message::Close(None)).await;
                    break "closed by the client".to_owned();
                }
                m = stream.next() => match m {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        let frame = match serde_json::from_str::<ServerFrame>(text.as_str()) {
                            Ok(f) => f,
                            Err(e) => {
                                tracing::warn!(error = %e, "ignoring a frame this client does not understand");
                                continue;
                            }
                        };
                        match frame {
                            ServerFrame::ReauthRequired { .. } => {
                                tokio::spawn(self.clone().reauthenticate());
                                continue;
                            }
                            // Others claimed our one-time keys: top up now,
                            // not at the next periodic check.
                            ServerFrame::KeysLow { .. } => {
                                self.schedule_key_check();
                                continue;
                            }
                            _ => {}
                        }
                        match self.on_frame(frame, &mut acks).await {
                            Ok(Flow::Continue) => {}
                            Ok(Flow::Synced) => {
                                if let Err(e) = Self::send_ack(&mut sink, &mut acks).await {
                                    break e.to_string();
                                }
                                synced = true;
                                if let Err(e) = self.decrypt_all_pending().await {
                                    tracing::warn!(error = %e, "decrypting waiting group messages failed");
                                }
                                self.emit(ClientEvent::Synced);
                                self.spawn_channel_catch_up();
                                self.schedule_key_check();
                                self.outbox_wake.notify_one();
                            }
                            Err(e) => {
                                // Not stored, so not acknowledged: it comes again.
                                let _ = Self::send_ack(&mut sink, &mut acks).await;
                                break format!("processing a frame failed: {e}");
                            }
                        }
                        if acks.len() >= ACK_BATCH {
                            if let Err(e) = Self::send_ack(&mut sink, &mut acks).await {
                                break e.to_string();
                            }
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        closed_with = f.as_ref().and_then(|f| CloseReason::from_code(u16::from(f.code)));
                        break format!("closed by the server ({})", f.map(|f| f.to_string()).unwrap_or_default());
                    }
                    Some(Ok(_)) => last_heard = Instant::now(),
                    Some(Err(e)) => break format!("websocket: {e}"),
                    None => break "connection closed".to_owned(),
                },
                Some(frame) = rx.recv() => {
                    let text = match serde_json::to_string(&frame) {
                        Ok(t) => t,
                        Err(e) => break format!("encoding a frame: {e}"),
                    };
                    if let Err(e) = sink.send(Message::Text(text.into())).await {
                        break format!("websocket: {e}");
                    }
                }
                // Acknowledge as soon as nothing else is waiting.
                _ = std::future::ready(()), if !acks.is_empty() => {
                    if let Err(e) = Self::send_ack(&mut sink, &mut acks).await {
                        break e.to_string();
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > keepalive * 3 {
                        break format!("no frame from the server for {:?}", last_heard.elapsed());
                    }
                    let ping = ClientFrame::Ping { nonce: None };
                    let text = serde_json::to_string(&ping).unwrap_or_default();
                    if let Err(e) = sink.send(Message::Text(text.into())).await {
                        break format!("websocket: {e}");
                    }
                }
            }
        };
        drop(rx);
        self.link.send_replace(None);
        // Pending sends learn the socket is gone and go again later.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        (reason, synced, closed_with)
    }

    /// The connection task: connect, run, back off, repeat.
    pub(crate) async fn socket_task(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut backoff = Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        loop {
            if is_stopped(&stop, &shutdown) {
                break;
            }
            let opened = tokio::select! {
                r = self.open_socket() => r,
                _ = stop_requested(&mut stop, &mut shutdown) => break,
            };
            match opened {
                Ok(ws) => {
                    // `devices_changed` frames missed while offline are not
                    // replayed: fetch every group's devices again before use.
                    if let Err(e) = self.store.mark_group_devices_stale(None).await {
                        tracing::warn!(error = %e, "marking group devices stale failed");
                    }
                    self.counters
                        .connections
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.emit(ClientEvent::Connected);
                    let (reason, synced, closed_with) =
                        self.run_session(ws, &mut stop, &mut shutdown).await;
                    tracing::debug!(%reason, "socket closed");
                    match closed_with {
                        Some(CloseReason::SessionEnded) => {
                            self.emit(ClientEvent::SessionEnded { reason });
                            break;
                        }
                        // Refreshed on the way in (the upgrade answers 401):
                        // no need to wait first.
                        Some(CloseReason::Reauthenticate) => {
                            self.emit(ClientEvent::Disconnected { reason });
                            continue;
                        }
                        _ => self.emit(ClientEvent::Disconnected { reason }),
                    }
                    if synced {
                        backoff.reset();
                    }
                }
                Err(ClientError::SessionEnded(reason)) => {
                    self.emit(ClientEvent::SessionEnded { reason });
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "connecting failed"),
            }
            if is_stopped(&stop, &shutdown) {
                break;
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop_requested(&mut stop, &mut shutdown) => break,
            }
        }
        self.link.send_replace(None);
    }
}
