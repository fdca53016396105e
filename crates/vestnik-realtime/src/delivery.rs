//! The send path (validated, then handed to the batch writers), pending
//! deliveries, acknowledgements, and the retention reaper's entry point.
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;
use vestnik_core::ids;
use vestnik_core::Action;
use vestnik_proto::{
    IncomingMessage, PendingPage, Receipt, SendKind, SendMessage, Sent, ServerFrame, SystemEvent,
};
use vestnik_store::{NewMessage, OutboxRow, SessionAuth};

use crate::service::{
    bad, public, ACK_MAX, MAX_CIPHERTEXT_CHARS, MAX_CLIENT_MSG_ID_CHARS, MAX_ENVELOPES,
    MAX_KEY_ENVELOPES, MSG_TYPE_MEGOLM, PAGE_MAX,
};
use crate::Realtime;
use crate::RealtimeError;

fn frame(row: OutboxRow) -> ServerFrame {
    if row.kind == "system" {
        let event = serde_json::from_str(&row.body).unwrap_or_else(|e| {
            tracing::warn!(error = %e, cursor = row.id, "malformed stored system event");
            SystemEvent {
                event_id: row.message_id.clone(),
                conversation_id: row.conversation_id.clone(),
                event: "unknown".into(),
                actor_user_id: row.sender_user_id.clone(),
                target_user_id: None,
                role: None,
                until: None,
                message_id: None,
                at: row.created_at,
            }
        });
        return ServerFrame::System {
            cursor: row.id,
            event,
        };
    }
    if row.kind == "receipt" {
        // The body lists the messages covered; older rows have none.
        let message_ids = serde_json::from_str::<Vec<String>>(&row.body)
            .ok()
            .filter(|ids| !ids.is_empty())
            .unwrap_or_else(|| vec![row.message_id.clone()]);
        ServerFrame::Receipt {
            cursor: row.id,
            receipt: Receipt {
                message_id: row.message_id,
                message_ids,
                conversation_id: row.conversation_id,
                user_id: row.sender_user_id,
                device_id: row.sender_device_id,
                kind: "delivered".into(),
                at: row.created_at,
            },
        }
    } else {
        ServerFrame::Message {
            cursor: row.id,
            message: IncomingMessage {
                message_id: row.message_id,
                conversation_id: row.conversation_id,
                seq: row.seq,
                sender_user_id: row.sender_user_id,
                sender_device_id: row.sender_device_id,
                msg_type: u8::try_from(row.msg_type).unwrap_or(1),
                ciphertext: row.body,
                sent_at: row.created_at,
            },
        }
    }
}

fn check_ciphertext(field: &str, c: &str) -> Result<(), RealtimeError> {
    if c.is_empty() || c.len() > MAX_CIPHERTEXT_CHARS {
        return Err(bad(format!(
            "{field}: expected 1-{MAX_CIPHERTEXT_CHARS} base64 characters, got {}",
            c.len()
        )));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        return Err(bad(format!("{field}: expected base64")));
    }
    Ok(())
}

impl Realtime {
    fn validate(msg: &SendMessage) -> Result<(), RealtimeError> {
        let n = msg.client_msg_id.chars().count();
        if n == 0 || n > MAX_CLIENT_MSG_ID_CHARS || msg.client_msg_id.chars().any(char::is_control)
        {
            return Err(bad(format!(
                "client_msg_id: expected 1-{MAX_CLIENT_MSG_ID_CHARS} printable characters"
            )));
        }
        if matches!(msg.kind, SendKind::Group | SendKind::Channel) {
            if !msg.envelopes.is_empty() {
                return Err(bad(
                    "envelopes: expected none with kind group or channel (send ciphertext)",
                ));
            }
            let Some(c) = &msg.ciphertext else {
                return Err(bad("ciphertext: required with kind group or channel"));
            };
            return check_ciphertext("ciphertext", c);
        }
        if msg.ciphertext.is_some() {
            return Err(bad(
                "ciphertext: only with kind group or channel (Olm messages use envelopes)",
            ));
        }
        let max = if msg.kind == SendKind::Keys {
            MAX_KEY_ENVELOPES
        } else {
            MAX_ENVELOPES
        };
        if msg.envelopes.is_empty() || msg.envelopes.len() > max {
            return Err(bad(format!(
                "envelopes: expected 1-{max}, got {}",
                msg.envelopes.len()
            )));
        }
        let mut seen = HashSet::new();
        for e in &msg.envelopes {
            if !seen.insert(e.device_id.as_str()) {
                return Err(bad(format!(
                    "envelopes: device {} appears twice",
                    e.device_id
                )));
            }
            if e.msg_type > 1 {
                return Err(bad(format!(
                    "envelopes.msg_type: expected 0 (pre-key) or 1, got {}",
                    e.msg_type
                )));
            }
            check_ciphertext("envelopes.ciphertext", &e.ciphertext)?;
        }
        Ok(())
    }

    /// The send context: a node-local copy for a direct conversation when the
    /// sender addressed exactly the devices it lists, else the database's.
    async fn send_context_for(
        &self,
        auth: &SessionAuth,
        msg: &SendMessage,
    ) -> Result<Arc<vestnik_store::SendContext>, RealtimeError> {
        if msg.kind == SendKind::Message {
            if let Some(ctx) = self.contexts.get(&msg.conversation_id, &auth.user_id) {
                let expected: BTreeSet<&str> = ctx
                    .devices
                    .iter()
                    .map(|d| d.device_id.as_str())
                    .filter(|d| *d != auth.device_id)
                    .collect();
                let given: BTreeSet<&str> =
                    msg.envelopes.iter().map(|e| e.device_id.as_str()).collect();
                if expected == given || ctx.blocked {
                    return Ok(ctx);
                }
            }
        }
        let ctx = Arc::new(
            self.store
                .send_context(&msg.conversation_id, &auth.user_id)
                .await?,
        );
        self.contexts.put(&msg.conversation_id, &auth.user_id, &ctx);
        Ok(ctx)
    }

    /// Checks the sender may write here and encrypted for exactly the current
    /// devices, stores the message (batched), pushes it to online devices.
    pub async fn send(&self, auth: &SessionAuth, msg: SendMessage) -> Result<Sent, RealtimeError> {
        Self::validate(&msg)?;
        // Before anything is read or stored: a refused send costs nothing
        // and is not stored (the client retries after `retry_after_ms`).
        self.limit(Action::SendMessage, &auth.device_id).await?;
        if msg.kind == SendKind::Channel {
            return self.publish(auth, msg).await;
        }
        let ctx = self.send_context_for(auth, &msg).await?;
        if !ctx.members.contains(&auth.user_id) {
            return Err(RealtimeError::NotMember);
        }
        // A muted member may still share keys (others' sessions must keep
        // working), not write.
        if let Some(until) = ctx.sender_muted_until {
            if until > self.clock.now_ms() && msg.kind != SendKind::Keys {
                return Err(RealtimeError::Muted { until });
            }
        }
        // Blocked by the other person of a direct chat: the send is accepted
        // and answered like any other, so the block is not revealed (as
        // Signal does), but nothing reaches them: no envelope, no receipt.
        // Blocking is between two people: it does not silence a group.
        let withheld: HashSet<&str> = if ctx.blocked && ctx.kind == "direct" {
            ctx.devices
                .iter()
                .filter(|d| d.user_id != auth.user_id)
                .map(|d| d.device_id.as_str())
                .collect()
        } else {
            HashSet::new()
        };
        if msg.kind == SendKind::Group && ctx.kind != "group" {
            return Err(bad(
                "kind: group messages go to groups; direct chats use Olm envelopes",
            ));
        }
        if ctx.kind == "channel" && msg.kind != SendKind::Keys {
            return Err(bad(
                "kind: a channel takes posts (kind channel) and key shares (kind keys)",
            ));
        }
        // A channel subscriber's key traffic (key requests) goes to the
        // owner and publishers only, never to other subscribers.
        let addressable = if ctx.kind == "channel" {
            self.staff_if_subscriber(auth, &msg.conversation_id).await?
        } else {
            None
        };
        let devices = &ctx.devices;
        let expected: BTreeSet<&str> = devices
            .iter()
            .filter(|d| addressable.as_ref().is_none_or(|u| u.contains(&d.user_id)))
            .map(|d| d.device_id.as_str())
            .filter(|d| *d != auth.device_id)
            .collect();
        let given: BTreeSet<&str> = msg.envelopes.iter().map(|e| e.device_id.as_str()).collect();
        let addressed_right = match msg.kind {
            SendKind::Message => expected == given,
            SendKind::Keys => given.is_subset(&expected),
            SendKind::Group | SendKind::Channel => true,
        };
        if !addressed_right {
            // A retry of a message stored before the device list changed gets
            // its original answer, not a demand to re-encrypt.
            if let Some(stored) = self
                .store
                .stored_message(&auth.device_id, &msg.client_msg_id)
                .await?
            {
                if stored.conversation_id != msg.conversation_id.as_str() {
                    return Err(RealtimeError::ClientMsgIdReused);
                }
                return Ok(Sent {
                    client_msg_id: msg.client_msg_id,
                    message_id: stored.id,
                    conversation_id: msg.conversation_id.into(),
                    seq: stored.seq,
                    sent_at: stored.created_at,
                });
            }
            return Err(RealtimeError::DeviceListStale(
                devices
                    .iter()
                    .filter(|d| addressable.as_ref().is_none_or(|u| u.contains(&d.user_id)))
                    .cloned()
                    .map(public)
                    .collect(),
            ));
        }
        let (envelopes, group_body) = match msg.ciphertext {
            // One ciphertext for all: each device gets a row pointing at it.
            Some(body) if msg.kind == SendKind::Group => (
                expected
                    .iter()
                    .map(|d| ((*d).to_owned(), MSG_TYPE_MEGOLM, String::new()))
                    .collect(),
                Some((MSG_TYPE_MEGOLM, body)),
            ),
            _ => (
                msg.envelopes
                    .into_iter()
                    .filter(|e| !withheld.contains(e.device_id.as_str()))
                    .map(|e| (e.device_id.into(), i64::from(e.msg_type), e.ciphertext))
                    .collect(),
                None,
            ),
        };
        let new = NewMessage {
            id: ids::new_id(),
            conversation_id: msg.conversation_id.to_string(),
            sender_user_id: auth.user_id.clone(),
            sender_device_id: auth.device_id.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            created_at: self.clock.now_ms(),
            envelopes,
            group_body: group_body.clone(),
        };
        let (tx, rx) = oneshot::channel();
        let envelopes = new.envelopes.clone();
        self.writer.submit(new, tx)?;
        let stored = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        if stored.duplicate {
            // The key names a stored message; it must be this one's retry,
            // not a key reused for another conversation (read only for
            // retries, which are rare).
            let same = self
                .store
                .stored_message(&auth.device_id, &msg.client_msg_id)
                .await?
                .is_some_and(|s| s.conversation_id == msg.conversation_id.as_str());
            if !same {
                return Err(RealtimeError::ClientMsgIdReused);
            }
        }
        if !stored.duplicate {
            metrics::counter!("vestnik_messages_stored_total").increment(1);
            let mut frames = Vec::with_capacity(stored.outbox.len());
            let by_device: std::collections::HashMap<&str, (i64, &String)> = envelopes
                .iter()
                .map(|(d, t, b)| (d.as_str(), (*t, b)))
                .collect();
            for (cursor, device_id) in &stored.outbox {
                let Some(&(msg_type, body)) = by_device.get(device_id.as_str()) else {
                    continue;
                };
                let (msg_type, body) = match &group_body {
                    Some((t, b)) => (*t, b),
                    None => (msg_type, body),
                };
                let f = ServerFrame::Message {
                    cursor: *cursor,
                    message: IncomingMessage {
                        message_id: stored.message_id.clone(),
                        conversation_id: msg.conversation_id.to_string(),
                        seq: stored.seq,
                        sender_user_id: auth.user_id.clone(),
                        sender_device_id: auth.device_id.clone(),
                        msg_type: u8::try_from(msg_type).unwrap_or(1),
                        ciphertext: body.clone(),
                        sent_at: stored.created_at,
                    },
                };
                frames.push((device_id.clone(), f));
            }
            self.deliver(frames).await;
        }
        Ok(Sent {
            client_msg_id: msg.client_msg_id,
            message_id: stored.message_id,
            conversation_id: msg.conversation_id.into(),
            seq: stored.seq,
            sent_at: stored.created_at,
        })
    }

    /// A page of what waits for this device after `after`, oldest first.
    pub async fn pending(
        &self,
        auth: &SessionAuth,
        after: i64,
        limit: i64,
    ) -> Result<PendingPage, RealtimeError> {
        let limit = limit.clamp(1, PAGE_MAX);
        let mut rows = self.store.outbox(&auth.device_id, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(PendingPage {
            items: rows.into_iter().map(frame).collect(),
            more,
        })
    }

    /// Deletes what this device has stored and tells the senders.
    pub async fn ack(&self, auth: &SessionAuth, cursors: &[i64]) -> Result<(), RealtimeError> {
        if cursors.len() > ACK_MAX {
            return Err(bad(format!(
                "cursors: expected at most {ACK_MAX}, got {}",
                cursors.len()
            )));
        }
        if cursors.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let job = vestnik_store::AckBatchItem {
            device_id: auth.device_id.clone(),
            user_id: auth.user_id.clone(),
            cursors: cursors.to_vec(),
        };
        self.acks
            .try_send((job, tx))
            .map_err(|_| RealtimeError::Unavailable)?;
        let receipts = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        self.deliver(
            receipts
                .into_iter()
                .map(|r| (r.device_id.clone(), frame(r)))
                .collect(),
        )
        .await;
        Ok(())
    }

    /// Runs the retention reaper once now (it also runs every minute).
    pub async fn expire_now(&self) -> Result<u64, RealtimeError> {
        let now = self.clock.now_ms();
        Ok(self
            .store
            .expire(
                now,
                crate::service::cutoffs(
                    now,
                    (
                        self.settings.retention_ms,
                        self.settings.channel_retention_ms,
                    ),
                ),
                100_000,
            )
            .await?)
    }

    /// Pages of the backlog for a freshly connected device.
    pub async fn backlog_page(
        &self,
        device_id: &str,
        after: i64,
    ) -> Result<Vec<ServerFrame>, RealtimeError> {
        Ok(self
            .store
            .outbox(device_id, after, PAGE_MAX)
            .await?
            .into_iter()
            .map(frame)
            .collect())
    }
}
