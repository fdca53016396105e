//! Who may do what in a group or channel: the roles, and the checks every
//! group operation starts with.

use vestnik_core::ids;
use vestnik_store::SessionAuth;

use crate::{Realtime, RealtimeError};

pub(crate) fn is_manager(kind: &str, role: &str) -> bool {
    role == "owner" || (kind == "group" && role == "admin")
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

    /// Someone who blocked the caller cannot be added by them to a group or
    /// channel. The refusal is the one a privacy setting gives, so it does
    /// not tell a block from a setting.
    pub(crate) async fn require_may_add<'a>(
        &self,
        auth: &SessionAuth,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), RealtimeError> {
        let blocks = self.store.block_relations(&auth.user_id).await?;
        if users
            .into_iter()
            .any(|u| blocks.blocked_by.iter().any(|b| b == u))
        {
            return Err(RealtimeError::MayNotAdd);
        }
        Ok(())
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
