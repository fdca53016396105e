//! Who may do what in a group or channel: the roles, and the checks every
//! group operation starts with.

use vestnik_core::ids;
use vestnik_store::SessionAuth;

use crate::{Realtime, RealtimeError};

pub(crate) fn is_manager(kind: &str, role: &str) -> bool {
    role == "owner" || (kind == "group" && role == "admin")
}

/// Whether a member with `role` may remove, ban or mute a member whose role
/// is `target`: the owner anyone, a manager plain members only.
pub(crate) fn may_act_on(kind: &str, role: &str, target: &str) -> bool {
    role == "owner" || (is_manager(kind, role) && target == plain_role(kind))
}

/// The role of someone added or joining.
pub(crate) fn plain_role(kind: &str) -> &'static str {
    if kind == "channel" {
        "subscriber"
    } else {
        "member"
    }
}

/// The roles the owner may hand out (ownership moves by transfer only).
pub(crate) fn settable_roles(kind: &str) -> [&'static str; 2] {
    if kind == "channel" {
        ["publisher", "subscriber"]
    } else {
        ["admin", "member"]
    }
}

/// What the old owner becomes after a transfer.
pub(crate) fn demoted_role(kind: &str) -> &'static str {
    if kind == "channel" {
        "publisher"
    } else {
        "admin"
    }
}

impl Realtime {
    /// The conversation's kind and the caller's role in it (groups and
    /// channels only); `NotMember` for anyone else or a bad id.
    pub(crate) async fn group_role(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
    ) -> Result<(String, String), RealtimeError> {
        let (c, role) = self.group_and_role(auth, conversation_id).await?;
        Ok((c.kind, role))
    }

    /// Like [`Self::group_role`], with the whole conversation row.
    pub(crate) async fn group_and_role(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
    ) -> Result<(vestnik_store::ConversationRow, String), RealtimeError> {
        if !ids::is_valid_id(conversation_id) {
            return Err(RealtimeError::NotMember);
        }
        let role = self
            .store
            .member_role(conversation_id, &auth.user_id)
            .await?
            .ok_or(RealtimeError::NotMember)?;
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(RealtimeError::NotMember)?;
        if c.kind == "direct" {
            return Err(RealtimeError::Forbidden(
                "a direct conversation has no roles or membership changes".into(),
            ));
        }
        Ok((c, role))
    }

    /// In a channel where the caller is a subscriber: the users it may
    /// address (the owner and publishers, and itself). `None` elsewhere.
    pub(crate) async fn staff_if_subscriber(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
    ) -> Result<Option<Vec<String>>, RealtimeError> {
        match self.store.conversation(conversation_id).await? {
            Some(c) if c.kind == "channel" => {}
            _ => return Ok(None),
        }
        let staff = self
            .store
            .channel_staff(conversation_id, &auth.user_id)
            .await?;
        let subscriber = staff
            .iter()
            .any(|m| m.user_id == auth.user_id && m.role == "subscriber");
        Ok(subscriber.then(|| staff.into_iter().map(|m| m.user_id).collect()))
    }

    pub(crate) fn require_manager(kind: &str, role: &str) -> Result<(), RealtimeError> {
        if is_manager(kind, role) {
            Ok(())
        } else if kind == "channel" {
            Err(RealtimeError::Forbidden(
                "only the channel's owner may do this".into(),
            ))
        } else {
            Err(RealtimeError::Forbidden(
                "only the owner or an admin may do this".into(),
            ))
        }
    }

    pub(crate) fn member_limit(&self, kind: &str) -> i64 {
        if kind == "channel" {
            i64::MAX
        } else {
            self.settings.group_max_members
        }
    }

    /// Splits users the caller adds to a group by their consent: those
    /// whose `group_adds` lets the caller add them (everyone, or contacts
    /// with the caller among them), those who get an invitation instead,
    /// and those who blocked the caller, whose answer looks like an
    /// invitation but who are sent nothing (the block is not revealed).
    pub(crate) async fn sort_adds(
        &self,
        auth: &SessionAuth,
        users: &[String],
    ) -> Result<Adds, RealtimeError> {
        let blocks = self.store.block_relations(&auth.user_id).await?;
        let mut adds = Adds::default();
        for (user, policy, caller_is_contact) in
            self.store.group_add_policies(users, &auth.user_id).await?
        {
            if blocks.blocked_by.contains(&user) {
                adds.silent.push(user);
            } else if policy == "everyone" || (policy == "contacts" && caller_is_contact) {
                adds.direct.push(user);
            } else {
                adds.invite.push(user);
            }
        }
        Ok(adds)
    }

    pub(crate) async fn require_active_user(&self, user_id: &str) -> Result<(), RealtimeError> {
        if !ids::is_valid_id(user_id) {
            return Err(RealtimeError::NoSuchUser);
        }
        match self.store.user_by_id(user_id).await? {
            Some(u) if u.is_active() => Ok(()),
            _ => Err(RealtimeError::NoSuchUser),
        }
    }
}

/// Users an add reaches, by their consent (see [`Realtime::sort_adds`]).
#[derive(Debug, Default)]
pub(crate) struct Adds {
    /// Added at once.
    pub direct: Vec<String>,
    /// Sent an invitation.
    pub invite: Vec<String>,
    /// Blocked the adder: answered as invited, sent nothing.
    pub silent: Vec<String>,
}

impl Adds {
    /// What the adder is told was invited.
    pub fn invited(&self) -> Vec<String> {
        let mut v: Vec<String> = self.invite.iter().chain(&self.silent).cloned().collect();
        v.sort();
        v
    }
}
