//! What one user sees of others and decides about them: profiles,
//! contacts, group invitations, blocks.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What others see of an account instead of its id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Profile {
    /// Whose.
    pub user_id: String,
    /// Absent when none is set (show the id, or the address one knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The profile picture's id, absent when none is set; it changes
    /// whenever the picture does, so clients cache the bytes under it
    /// (`GET /v1/profiles/{user_id}/avatar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// Where to fetch a profile picture: a square JPEG the server made from the
/// uploaded image (metadata stripped).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AvatarDownload {
    /// Whose.
    pub user_id: String,
    /// The picture's id (as in `Profile.avatar`).
    pub avatar: String,
    /// Bytes of the JPEG.
    pub size: i64,
    /// The request that downloads it (short-lived).
    pub download: crate::SignedRequest,
}

/// Sets the caller's display name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1-64 characters, no control characters, not only spaces; an empty
    /// string clears it. Leading and trailing spaces are trimmed.
    #[schema(max_length = 64)]
    pub display_name: String,
}

/// The profiles asked for that the caller may see (its own, and those of
/// users it shares a conversation with); others are left out.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProfileList {
    /// In id order.
    pub profiles: Vec<Profile>,
}

/// Who may add the caller to groups and channels.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupAddSettings {
    /// `everyone`, `contacts` or `nobody`.
    pub who: crate::GroupAdds,
}

/// The caller's contacts: whom it opened a direct conversation with, or
/// added by hand. They decide `contacts` for presence and group adds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ContactList {
    /// Sorted.
    pub user_ids: Vec<String>,
}

/// An invitation to a group or channel, waiting for the caller's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Invitation {
    /// The group or channel.
    pub conversation_id: String,
    /// `group` or `channel`.
    pub kind: String,
    /// Its title, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Who tried to add the caller (absent once that account is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When it lapses, Unix milliseconds.
    pub expires_at: i64,
}

/// The caller's pending invitations, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct InvitationList {
    /// The invitations.
    pub invitations: Vec<Invitation>,
}

/// The users the caller blocked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct BlockList {
    /// Sorted.
    pub blocked_user_ids: Vec<String>,
}
