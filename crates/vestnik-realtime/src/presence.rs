//! Ephemeral signals: typing, read markers and presence (who sees whom is
//! decided here; nothing of it is stored but read markers and settings).
use std::collections::HashSet;
use vestnik_core::Action;
use vestnik_proto::{ConversationId, PresenceVisibility, ServerFrame, UserId};
use vestnik_store::SessionAuth;

use crate::service::bad;
use crate::service::PRESENCE_SUBSCRIBE_MAX;
use crate::Realtime;
use crate::RealtimeError;

impl Realtime {
    /// Relays "typing…" to the other members' devices; nothing is stored.
    pub async fn typing(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        typing: bool,
    ) -> Result<(), RealtimeError> {
        self.ephemeral_rate(auth).await?;
        let members = self.member_of(auth, conversation_id).await?;
        self.not_a_channel(conversation_id).await?;
        let f = ServerFrame::Typing {
            conversation_id: conversation_id.to_string(),
            user_id: auth.user_id.clone(),
            typing,
        };
        // Whoever blocked the typist does not see them type.
        let blocks = self.store.block_relations(&auth.user_id).await?;
        let others: Vec<String> = members
            .into_iter()
            .filter(|m| *m != auth.user_id && !blocks.blocked_by.contains(m))
            .collect();
        let devices = self.store.active_devices(&others).await?;
        self.deliver(
            devices
                .into_iter()
                .map(|d| (d.device_id, f.clone()))
                .collect(),
        )
        .await;
        Ok(())
    }

    /// Moves this account's read marker forward and tells every member's
    /// devices (the reader's other devices included).
    pub async fn read(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<(), RealtimeError> {
        self.ephemeral_rate(auth).await?;
        let members = self.member_of(auth, conversation_id).await?;
        self.not_a_channel(conversation_id).await?;
        let last = self
            .store
            .conversation(conversation_id)
            .await?
            .map_or(0, |c| c.last_seq);
        if seq < 1 || seq > last {
            return Err(bad(format!("seq: expected 1..={last}, got {seq}")));
        }
        if !self
            .store
            .set_read_marker(conversation_id, &auth.user_id, seq, self.clock.now_ms())
            .await?
        {
            return Ok(());
        }
        let f = ServerFrame::Read {
            conversation_id: conversation_id.to_string(),
            user_id: auth.user_id.clone(),
            seq,
        };
        // Whoever blocked the reader does not learn how far they read.
        let blocks = self.store.block_relations(&auth.user_id).await?;
        let audience: Vec<String> = members
            .into_iter()
            .filter(|m| !blocks.blocked_by.contains(m))
            .collect();
        let devices = self.store.active_devices(&audience).await?;
        let targets = devices
            .into_iter()
            .filter(|d| d.device_id != auth.device_id);
        self.deliver(targets.map(|d| (d.device_id, f.clone())).collect())
            .await;
        Ok(())
    }

    /// Who has read how far (for groups: every member's marker).
    pub async fn read_markers(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<vestnik_proto::ReadMarkers, RealtimeError> {
        self.member_of(auth, conversation_id).await?;
        let markers = self.store.read_markers(conversation_id).await?;
        Ok(vestnik_proto::ReadMarkers {
            markers: markers
                .into_iter()
                .map(|(user_id, seq, at)| vestnik_proto::ReadMarker { user_id, seq, at })
                .collect(),
        })
    }

    /// Typing and read markers would fan out to every subscriber of a channel.
    async fn not_a_channel(&self, conversation_id: &str) -> Result<(), RealtimeError> {
        match self.store.conversation(conversation_id).await? {
            Some(c) if c.kind == "channel" => {
                Err(bad("typing and read markers are not relayed in channels"))
            }
            _ => Ok(()),
        }
    }

    /// Typing and read frames cost fan-out for nothing stored: cap them per device.
    async fn ephemeral_rate(&self, auth: &SessionAuth) -> Result<(), RealtimeError> {
        self.limit(Action::Ephemeral, &auth.device_id).await
    }

    /// The presence of users the caller shares a conversation with; anyone
    /// else (or anyone hiding) reads as unknown, so nothing leaks.
    pub async fn subscribe_presence(
        &self,
        auth: &SessionAuth,
        user_ids: &[UserId],
    ) -> Result<Vec<ServerFrame>, RealtimeError> {
        self.ephemeral_rate(auth).await?;
        if user_ids.len() > PRESENCE_SUBSCRIBE_MAX {
            return Err(bad(format!(
                "user_ids: expected at most {PRESENCE_SUBSCRIBE_MAX}, got {}",
                user_ids.len()
            )));
        }
        // A block either way hides presence both ways.
        let blocks = self.store.block_relations(&auth.user_id).await?;
        let partners: HashSet<String> = self
            .store
            .partners_of(&auth.user_id)
            .await?
            .into_iter()
            .filter(|u| !blocks.between(u))
            .collect();
        let visible: Vec<String> = user_ids
            .iter()
            .filter(|u| partners.contains(u.as_str()))
            .map(|u| u.to_string())
            .collect();
        let info = self.store.presence_info(&visible).await?;
        // `contacts`: only those who have the caller among their contacts.
        let contacts_only: Vec<String> = info
            .iter()
            .filter(|(_, _, v)| v == "contacts")
            .map(|(u, _, _)| u.clone())
            .collect();
        let listed_by: HashSet<String> = self
            .store
            .having_contact(&contacts_only, &auth.user_id)
            .await?
            .into_iter()
            .collect();
        let mut known = std::collections::HashMap::new();
        for (user_id, last_seen, visibility) in info {
            let shown = match visibility.as_str() {
                "everyone" => true,
                "contacts" => listed_by.contains(&user_id),
                _ => false,
            };
            if shown {
                known.insert(user_id, last_seen);
            }
        }
        let online = self
            .online_users(&known.keys().cloned().collect::<Vec<_>>())
            .await?;
        Ok(user_ids
            .iter()
            .map(|u| match known.get(u.as_str()) {
                Some(last_seen) => ServerFrame::Presence {
                    user_id: u.to_string(),
                    online: Some(online.contains(u.as_str())),
                    last_seen: *last_seen,
                },
                None => ServerFrame::Presence {
                    user_id: u.to_string(),
                    online: None,
                    last_seen: None,
                },
            })
            .collect())
    }

    /// Users with at least one device connected to any node.
    async fn online_users(&self, users: &[String]) -> Result<HashSet<String>, RealtimeError> {
        let devices = self.store.active_devices(users).await?;
        let ids: Vec<String> = devices.iter().map(|d| d.device_id.clone()).collect();
        let located = self
            .presence
            .locate(&ids)
            .await
            .map_err(|e| RealtimeError::Bus(e.to_string()))?;
        Ok(devices
            .into_iter()
            .zip(located)
            .filter(|(d, nodes)| !nodes.is_empty() || self.hub.is_online(&d.device_id))
            .map(|(d, _)| d.user_id)
            .collect())
    }

    /// A device of `user_id` connected or disconnected: record last seen and
    /// tell their partners (unless hidden). Not every member of a large
    /// group: each connect would be a frame to each of its members, so a
    /// group of 1,000 coming online would be a million frames (measured: the
    /// first message after 1,000 members connected waited 0.5 s behind
    /// them). There, clients ask with `subscribe_presence`.
    pub async fn presence_changed(&self, user_id: &str) {
        let result: Result<(), RealtimeError> = async {
            let info = self.store.presence_info(&[user_id.to_owned()]).await?;
            let Some((_, _, visibility)) = info.into_iter().next() else {
                return Ok(());
            };
            let online = self
                .online_users(&[user_id.to_owned()])
                .await?
                .contains(user_id);
            let now = self.clock.now_ms();
            if !online {
                self.store.set_last_seen(user_id, now).await?;
            }
            if visibility == "nobody" {
                return Ok(());
            }
            let f = ServerFrame::Presence {
                user_id: user_id.to_owned(),
                online: Some(online),
                last_seen: (!online).then_some(now),
            };
            let blocks = self.store.block_relations(user_id).await?;
            let contacts: Option<HashSet<String>> = if visibility == "contacts" {
                Some(self.store.contacts(user_id).await?.into_iter().collect())
            } else {
                None
            };
            let partners: Vec<String> = self
                .store
                .presence_audience(user_id, self.settings.presence_push_max_group)
                .await?
                .into_iter()
                .filter(|u| !blocks.between(u))
                .filter(|u| contacts.as_ref().is_none_or(|c| c.contains(u)))
                .collect();
            let devices = self.store.active_devices(&partners).await?;
            self.deliver(
                devices
                    .into_iter()
                    .map(|d| (d.device_id, f.clone()))
                    .collect(),
            )
            .await;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "presence update failed");
        }
    }

    /// Sets who may see the caller's online status and last-seen time.
    pub async fn set_presence_visibility(
        &self,
        auth: &SessionAuth,
        visibility: PresenceVisibility,
    ) -> Result<(), RealtimeError> {
        Ok(self
            .store
            .set_presence_visibility(&auth.user_id, visibility.as_str())
            .await?)
    }
}
