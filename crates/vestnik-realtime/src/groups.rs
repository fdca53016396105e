//! Groups and channels: creation, settings, membership and roles, invite
//! links, and the system events that announce every change.
//!
//! Group roles: the owner may do anything; admins change settings, add
//! members, remove plain members and create invites; members may only leave.
//! Channel roles: the owner runs the channel, publishers post, subscribers
//! read. A channel's system events go to its owner and publishers only (and
//! to the subscriber concerned), so a join costs O(1) rows, not O(subscribers).
use std::collections::BTreeSet;
use vestnik_core::Action;

use vestnik_core::ids;
use vestnik_proto::{
    AssignableRole, ChannelVisibility, Conversation, ConversationId, CreateConversation, Member,
    NewGroupSettings, PublicDeviceList, ServerFrame, SystemEvent, UpdateConversation, UserId,
};
use vestnik_store::{JoinOutcome, NewGroup, SessionAuth};

use crate::roles::*;
use crate::service::{bad, public};
use crate::{Realtime, RealtimeError};

pub use vestnik_core::limits::{
    AVATAR_REF_MAX_CHARS, INVITE_DEFAULT_TTL_SECS, INVITE_DEFAULT_USES, INVITE_MAX_USES,
    TITLE_MAX_CHARS, TOPIC_MAX_CHARS,
};
pub const INVITE_TTL_SECS: std::ops::RangeInclusive<i64> =
    vestnik_core::limits::INVITE_MIN_TTL_SECS..=vestnik_core::limits::INVITE_MAX_TTL_SECS;

pub(crate) fn text_field(
    name: &str,
    value: &Option<String>,
    max: usize,
    allow_empty: bool,
) -> Result<(), RealtimeError> {
    if let Some(v) = value {
        let n = v.chars().count();
        if (n == 0 && !allow_empty) || n > max || v.chars().any(char::is_control) {
            let min = if allow_empty { 0 } else { 1 };
            return Err(bad(format!(
                "{name}: expected {min}-{max} characters without control characters"
            )));
        }
    }
    Ok(())
}

impl Realtime {
    /// Creates a group or channel owned by the caller with the listed first
    /// members (a channel's join as subscribers).
    pub async fn create_group(
        &self,
        auth: &SessionAuth,
        req: CreateConversation,
    ) -> Result<Conversation, RealtimeError> {
        self.limit(Action::CreateConversation, &auth.user_id)
            .await?;
        let (kind, settings, visibility) = match req {
            CreateConversation::Direct { .. } => {
                return Err(bad(
                    "kind: direct conversations are opened with create_direct",
                ))
            }
            CreateConversation::Group(g) => ("group", g, None),
            CreateConversation::Channel(c) => (
                "channel",
                NewGroupSettings {
                    member_user_ids: c.member_user_ids,
                    title: c.title,
                    topic: c.topic,
                },
                Some(c.visibility.unwrap_or(ChannelVisibility::Private)),
            ),
        };
        text_field("title", &settings.title, TITLE_MAX_CHARS, false)?;
        text_field("topic", &settings.topic, TOPIC_MAX_CHARS, true)?;
        let visibility = visibility.map(|v| v.as_str().to_owned());
        if settings.member_user_ids.len() > vestnik_core::limits::CREATE_MEMBERS_MAX {
            return Err(bad(
                "member_user_ids: expected at most 1000 (add more later)",
            ));
        }
        let max = self.member_limit(kind);
        let others: BTreeSet<String> = settings
            .member_user_ids
            .into_iter()
            .map(String::from)
            .filter(|u| *u != auth.user_id)
            .collect();
        if others.len() as i64 + 1 > max {
            return Err(RealtimeError::GroupFull { max });
        }
        for u in &others {
            self.require_active_user(u).await?;
        }
        let others: Vec<String> = others.into_iter().collect();
        let adds = self.sort_adds(auth, &others).await?;
        let group = NewGroup {
            id: ids::new_id(),
            kind: kind.to_owned(),
            creator: auth.user_id.clone(),
            members: adds
                .direct
                .iter()
                .map(|u| (u.clone(), plain_role(kind).to_owned()))
                .collect(),
            title: settings.title,
            topic: settings.topic,
            visibility,
            created_at: self.clock.now_ms(),
        };
        self.store.create_group(&group).await?;
        self.announce(&auth.user_id, &group.id, kind, "created", None, None, &[])
            .await?;
        self.invite_to_group(auth, &group.id, &adds.invite).await?;
        let mut c = self
            .conversation_detail(auth, &ConversationId::from_trusted(group.id.clone()))
            .await?;
        c.invited_user_ids = adds.invited();
        Ok(c)
    }

    /// A conversation with its members and their roles (members only).
    pub async fn conversation_detail(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RealtimeError> {
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(RealtimeError::NotMember)?;
        // Channel subscribers do not see each other, and a channel's
        // subscriber list is too long to read on every call.
        let rows = if c.kind == "channel" {
            self.store
                .channel_staff(conversation_id, &auth.user_id)
                .await?
        } else {
            self.store.members_with_roles(conversation_id).await?
        };
        if !rows.iter().any(|m| m.user_id == auth.user_id) {
            return Err(RealtimeError::NotMember);
        }
        let mut member_user_ids: Vec<String> = rows.iter().map(|m| m.user_id.clone()).collect();
        member_user_ids.sort();
        Ok(Conversation {
            id: c.id,
            kind: c.kind,
            member_user_ids,
            members: rows
                .into_iter()
                .map(|m| Member {
                    user_id: m.user_id,
                    role: m.role,
                    joined_at: m.joined_at,
                })
                .collect(),
            invited_user_ids: Vec::new(),
            title: c.title,
            topic: c.topic,
            avatar_ref: c.avatar_ref,
            visibility: c.visibility,
            created_at: c.created_at,
        })
    }

    /// Every active device of every member: what a sender shares group keys
    /// with. A channel subscriber sees only the owner's and publishers'
    /// devices (where its keys come from and key requests go): subscribers
    /// do not learn of each other.
    pub async fn conversation_devices(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<PublicDeviceList, RealtimeError> {
        let mut members = self.member_of(auth, conversation_id).await?;
        if let Some(staff) = self.staff_if_subscriber(auth, conversation_id).await? {
            members = staff;
        }
        let devices = self.store.active_devices(&members).await?;
        Ok(PublicDeviceList {
            devices: devices.into_iter().map(public).collect(),
        })
    }

    /// Changes a group's title, topic or avatar (at least one); managers only. Announced to members.
    pub async fn update_group(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        req: UpdateConversation,
    ) -> Result<Conversation, RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        text_field("title", &req.title, TITLE_MAX_CHARS, false)?;
        text_field("topic", &req.topic, TOPIC_MAX_CHARS, true)?;
        text_field("avatar_ref", &req.avatar_ref, AVATAR_REF_MAX_CHARS, true)?;
        if req.title.is_none() && req.topic.is_none() && req.avatar_ref.is_none() {
            return Err(bad("expected at least one of title, topic, avatar_ref"));
        }
        self.store
            .update_conversation(
                conversation_id,
                req.title.as_deref(),
                req.topic.as_deref(),
                req.avatar_ref.as_deref(),
            )
            .await?;
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            "updated",
            None,
            None,
            &[],
        )
        .await?;
        self.conversation_detail(auth, conversation_id).await
    }

    /// Adds `user_id` to the group (a no-op if already a member); managers only.
    /// `GroupFull` when the group is at its member limit.
    pub async fn add_member(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<Conversation, RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        self.require_active_user(user_id).await?;
        self.limit(Action::AddMembers, &auth.user_id).await?;
        let already = self
            .store
            .member_role(conversation_id, user_id)
            .await?
            .is_some();
        let adds = self.sort_adds(auth, &[user_id.to_string()]).await?;
        if !already && adds.direct.is_empty() {
            if self.store.is_banned(conversation_id, user_id).await? {
                return Err(RealtimeError::Banned);
            }
            self.invite_to_group(auth, conversation_id, &adds.invite)
                .await?;
            let mut c = self.conversation_detail(auth, conversation_id).await?;
            c.invited_user_ids = adds.invited();
            return Ok(c);
        }
        let max = self.member_limit(&kind);
        match self
            .store
            .add_member(
                conversation_id,
                user_id,
                plain_role(&kind),
                self.clock.now_ms(),
                max,
            )
            .await?
        {
            JoinOutcome::Joined => {
                self.announce(
                    &auth.user_id,
                    conversation_id,
                    &kind,
                    "member_added",
                    Some(user_id),
                    None,
                    &[user_id.to_string()],
                )
                .await?;
            }
            JoinOutcome::AlreadyMember => {}
            JoinOutcome::Banned => return Err(RealtimeError::Banned),
            JoinOutcome::Full => return Err(RealtimeError::GroupFull { max }),
            JoinOutcome::Invalid => return Err(RealtimeError::NotMember),
        }
        self.conversation_detail(auth, conversation_id).await
    }

    /// Removes `user_id`, or leaves when it is the caller. The owner must hand
    /// ownership over before leaving a group that has other members.
    pub async fn remove_member(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        let leaving = *user_id == auth.user_id;
        if leaving {
            if role == "owner" && self.store.members(conversation_id).await?.len() > 1 {
                return Err(RealtimeError::OwnerMustTransfer);
            }
        } else {
            let target = self
                .store
                .member_role(conversation_id, user_id)
                .await?
                .ok_or(RealtimeError::NoSuchUser)?;
            if !may_act_on(&kind, &role, &target) {
                return Err(RealtimeError::Forbidden(
                    "the owner may remove anyone; a group admin only plain members".into(),
                ));
            }
        }
        if !self.store.remove_member(conversation_id, user_id).await? {
            return Ok(());
        }
        let (event, target) = if leaving {
            ("member_left", None)
        } else {
            ("member_removed", Some(user_id))
        };
        // The one who left or was removed learns it too.
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            event,
            target.map(|u| u.as_str()),
            None,
            &[user_id.to_string()],
        )
        .await
    }

    /// Gives `user_id` one of the roles the owner may assign; owner only, never the owner's own role.
    pub async fn set_role(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
        new_role: AssignableRole,
    ) -> Result<(), RealtimeError> {
        let new_role = new_role.as_str();
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        if role != "owner" {
            return Err(RealtimeError::Forbidden(
                "only the owner may change roles".into(),
            ));
        }
        let [a, b] = settable_roles(&kind);
        if new_role != a && new_role != b {
            return Err(bad(format!(
                "role: expected {a} or {b}, got {new_role:?} (use the owner endpoint to transfer ownership)"
            )));
        }
        if *user_id == auth.user_id {
            return Err(bad(
                "the owner's role changes only by transferring ownership",
            ));
        }
        if !self
            .store
            .set_role(conversation_id, user_id, new_role)
            .await?
        {
            return Err(RealtimeError::NoSuchUser);
        }
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            "role_changed",
            Some(user_id),
            Some(new_role),
            &[user_id.to_string()],
        )
        .await
    }

    /// Makes `user_id` the owner; the caller is demoted (to admin in a group, publisher in a channel). Owner only.
    pub async fn transfer_ownership(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        if role != "owner" {
            return Err(RealtimeError::Forbidden(
                "only the owner may transfer ownership".into(),
            ));
        }
        if *user_id == auth.user_id {
            return Err(bad("user_id: you already own this group"));
        }
        match self
            .store
            .transfer_ownership(conversation_id, &auth.user_id, user_id, demoted_role(&kind))
            .await?
        {
            vestnik_store::TransferOutcome::Transferred => {}
            vestnik_store::TransferOutcome::NotMember => return Err(RealtimeError::NoSuchUser),
            vestnik_store::TransferOutcome::NotOwner => {
                return Err(RealtimeError::Forbidden(
                    "only the owner may transfer ownership".into(),
                ))
            }
        }
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            "owner_changed",
            Some(user_id),
            Some("owner"),
            &[],
        )
        .await
    }

    /// Queues a system event for every member's devices (a channel's: its
    /// owner's and publishers'), the actor's, and `also`'s (someone who just
    /// left or whose role changed), and pushes it to those online.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn announce(
        &self,
        actor: &str,
        conversation_id: &str,
        kind: &str,
        event: &str,
        target: Option<&str>,
        role: Option<&str>,
        also: &[String],
    ) -> Result<(), RealtimeError> {
        let users = self.audience(conversation_id, kind, actor, also).await?;
        let ev = SystemEvent {
            event_id: ids::new_id(),
            conversation_id: conversation_id.to_owned(),
            event: event.to_owned(),
            actor_user_id: actor.to_owned(),
            target_user_id: target.map(str::to_owned),
            role: role.map(str::to_owned),
            until: None,
            message_id: None,
            at: self.clock.now_ms(),
        };
        self.queue_event(ev, &users).await
    }

    /// Who hears of a change: every member (a channel's owner and
    /// publishers), the actor, and `also`.
    pub(crate) async fn audience(
        &self,
        conversation_id: &str,
        kind: &str,
        actor: &str,
        also: &[String],
    ) -> Result<Vec<String>, RealtimeError> {
        let mut users = if kind == "channel" {
            self.store.managers(conversation_id).await?
        } else {
            self.store.members(conversation_id).await?
        };
        users.push(actor.to_owned());
        users.extend(also.iter().cloned());
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// Queues a system event for every device of `users` and pushes it to
    /// those online.
    pub(crate) async fn queue_event(
        &self,
        ev: SystemEvent,
        users: &[String],
    ) -> Result<(), RealtimeError> {
        let now = ev.at;
        let body =
            serde_json::to_string(&ev).map_err(|e| RealtimeError::InvalidInput(e.to_string()))?;
        let rows = self
            .store
            .push_system(
                &vestnik_store::SystemEventRow {
                    event_id: ev.event_id.clone(),
                    conversation_id: ev.conversation_id.clone(),
                    actor: ev.actor_user_id.clone(),
                    body,
                    created_at: now,
                    expires_at: now + self.settings.retention_ms,
                },
                users,
            )
            .await?;
        self.deliver(
            rows.into_iter()
                .map(|r| {
                    (
                        r.device_id,
                        ServerFrame::System {
                            cursor: r.id,
                            event: ev.clone(),
                        },
                    )
                })
                .collect(),
        )
        .await;
        Ok(())
    }
}
