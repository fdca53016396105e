//! The closed sets of names the API uses: conversation kinds, member roles,
//! channel visibility, media classes and presence settings. Each parses from
//! its snake_case wire name and is stated as an enum in the OpenAPI document.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A name outside the set it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected one of {expected}, got {got:?}")]
pub struct UnknownName {
    what: &'static str,
    expected: String,
    got: String,
}

macro_rules! names {
    ($(#[$doc:meta])* $name:ident ($what:literal) { $($(#[$vdoc:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the order the API documents them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire (and database) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(UnknownName {
                        what: $what,
                        expected: $name::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        got: other.chars().take(32).collect(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

names!(
    /// What a conversation is.
    ConversationKind ("kind") {
        /// Two users, end-to-end encrypted with Olm.
        Direct = "direct",
        /// Up to `group_max_members` members, Megolm.
        Group = "group",
        /// A broadcast log read by subscribers.
        Channel = "channel",
    }
);

names!(
    /// A member's role. Groups: owner, admin, member. Channels: owner,
    /// publisher, subscriber. Direct conversations: member.
    MemberRole ("role") {
        /// Created or was handed the group or channel; one per conversation.
        Owner = "owner",
        /// Groups: manages members and settings.
        Admin = "admin",
        /// Groups and direct conversations: reads and sends.
        Member = "member",
        /// Channels: may post.
        Publisher = "publisher",
        /// Channels: reads posts.
        Subscriber = "subscriber",
    }
);

names!(
    /// The roles an owner may hand out (ownership moves by transfer only).
    /// Groups take `admin` or `member`; channels `publisher` or `subscriber`.
    AssignableRole ("role") {
        /// Groups: manages members and settings.
        Admin = "admin",
        /// Groups: reads and sends.
        Member = "member",
        /// Channels: may post.
        Publisher = "publisher",
        /// Channels: reads posts.
        Subscriber = "subscriber",
    }
);

names!(
    /// Who may read a channel.
    ChannelVisibility ("visibility") {
        /// Anyone may subscribe; posts are plaintext to subscribers.
        Public = "public",
        /// By invite; posts are encrypted with a key the owner shares over Olm.
        Private = "private",
    }
);

names!(
    /// What kind of file an upload is (a hint: the bytes are ciphertext either way).
    MediaClass ("class") {
        /// A picture (public channels get a server-made preview).
        Image = "image",
        /// A video.
        Video = "video",
        /// Audio, such as a voice note.
        Audio = "audio",
        /// Anything else.
        File = "file",
    }
);

names!(
    /// Who sees a user's presence.
    PresenceVisibility ("visibility") {
        /// Everyone one shares a conversation with (in large groups, on asking).
        Everyone = "everyone",
        /// One's contacts only (`GET /v1/contacts`: whom one opened a direct
        /// conversation with, or added).
        Contacts = "contacts",
        /// No one: presence frames about this user carry neither `online` nor `last_seen`.
        Nobody = "nobody",
    }
);

names!(
    /// Who may find a user by their e-mail address (`GET /v1/users/lookup`).
    Discoverability ("find_by_email") {
        /// Any signed-in user who knows the address.
        Everyone = "everyone",
        /// No one: a lookup answers as for an address without an account.
        Nobody = "nobody",
    }
);

names!(
    /// Who may add a user to groups and channels; anyone else's add becomes
    /// an invitation the user accepts or declines.
    GroupAdds ("who") {
        /// Any group's owner or admin.
        Everyone = "everyone",
        /// The user's contacts.
        Contacts = "contacts",
        /// No one: every add is an invitation.
        Nobody = "nobody",
    }
);

impl AssignableRole {
    /// The same role as a member's role.
    pub fn as_member_role(self) -> MemberRole {
        match self {
            AssignableRole::Admin => MemberRole::Admin,
            AssignableRole::Member => MemberRole::Member,
            AssignableRole::Publisher => MemberRole::Publisher,
            AssignableRole::Subscriber => MemberRole::Subscriber,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_from_its_wire_form_and_serialises_to_it() {
        for k in ConversationKind::ALL {
            assert_eq!(k.as_str().parse::<ConversationKind>().as_ref(), Ok(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        for r in MemberRole::ALL {
            assert_eq!(r.as_str().parse::<MemberRole>().as_ref(), Ok(r));
        }
        for c in MediaClass::ALL {
            assert_eq!(c.as_str().parse::<MediaClass>().as_ref(), Ok(c));
        }
    }

    #[test]
    fn an_unknown_name_says_what_was_expected() {
        let err = "owner".parse::<AssignableRole>().expect_err("owner");
        assert_eq!(
            err.to_string(),
            "role: expected one of admin, member, publisher, subscriber, got \"owner\""
        );
        assert!(serde_json::from_str::<PresenceVisibility>("\"friends\"").is_err());
    }
}
