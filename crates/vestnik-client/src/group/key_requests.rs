//! Lost key shares: a device missing a session's key asks the sending
//! device, which shares it again only to a device it gave it to before and
//! that is still a member device.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vestnik_proto::PublicDevice;

use super::same_device;
use crate::engine::Inner;
use crate::error::Result;
use crate::payload::Payload;

impl Inner {
    /// Asks `sender` (in the background, at most once a minute per session)
    /// to share `session_id` again.
    pub(super) fn spawn_key_request(
        self: &Arc<Self>,
        conversation_id: &str,
        sender: PublicDevice,
        session_id: &str,
    ) {
        if !self.key_traffic_allowed(format!("req:{session_id}")) {
            return;
        }
        let inner = self.clone();
        let (conversation_id, session_id) = (conversation_id.to_owned(), session_id.to_owned());
        // Not awaited here: on the socket, a send's answer arrives through
        // the very frame loop that is handling this message.
        tokio::spawn(async move {
            let payload = Payload::key_request(&conversation_id, &session_id).to_bytes();
            match inner.send_keys(&conversation_id, &[sender], &payload).await {
                Ok(_) => {
                    inner
                        .counters
                        .key_requests_sent
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, %session_id, "key request failed"),
            }
        });
    }

    /// Answers a key request from `requester` in the background.
    pub(crate) fn spawn_key_answer(
        self: &Arc<Self>,
        conversation_id: &str,
        requester: PublicDevice,
        session_id: &str,
    ) {
        let inner = self.clone();
        let (conversation_id, session_id) = (conversation_id.to_owned(), session_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = inner
                .answer_key_request(&conversation_id, &requester, &session_id)
                .await
            {
                tracing::debug!(error = %e, %session_id, requester = %requester.device_id, "answering a key request failed");
            }
        });
    }

    async fn answer_key_request(
        &self,
        conversation_id: &str,
        requester: &PublicDevice,
        session_id: &str,
    ) -> Result<()> {
        let Some(owner) = self.store.group_session(session_id).await? else {
            return Ok(());
        };
        if owner.sender_device_id != self.account.device_id
            || owner.conversation_id != conversation_id
        {
            return Ok(());
        }
        let shares = self.store.group_shares(session_id).await?;
        let Some((identity_key, index)) = shares.get(&requester.device_id) else {
            // Never given this session: it is a device we did not know of
            // when it was made. Our next message rotates and includes it.
            tracing::debug!(requester = %requester.device_id, %session_id, "key request from a device the session was not made for");
            self.store
                .mark_group_devices_stale(Some(conversation_id))
                .await?;
            return Ok(());
        };
        if *identity_key != requester.identity_key {
            return Ok(());
        }
        // The server's current list, not the cache: a removal may be seconds old.
        let current = self.fetch_group_devices(conversation_id).await?;
        if !current.iter().any(|d| same_device(d, requester)) {
            return Ok(());
        }
        if !self.key_traffic_allowed(format!("ans:{session_id}:{}", requester.device_id)) {
            return Ok(());
        }
        let key = self
            .device
            .lock()
            .await
            .export_group_session(session_id, Some(*index))?;
        let payload = Payload::group_key(conversation_id, session_id, &key, true).to_bytes();
        self.send_keys(conversation_id, std::slice::from_ref(requester), &payload)
            .await?;
        self.counters
            .group_keys_shared
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
