//! Identifiers, parsed once where they enter: a request body, a path, a frame.
//!
//! Every id the server mints is a UUIDv7 as 32 lowercase hex characters. A
//! value of these types has that form, so services never re-check it, and the
//! OpenAPI document states it as a pattern, so generated clients know it too.
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// The form of every id: 32 lowercase hex characters.
pub const ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// An id that did not have the form of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an id of 32 lowercase hex characters, got {got} characters{detail}")]
pub struct InvalidId {
    got: usize,
    detail: &'static str,
}

fn check_id(s: &str) -> Result<(), InvalidId> {
    if s.len() != 32 {
        return Err(InvalidId {
            got: s.chars().count(),
            detail: "",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(InvalidId {
            got: 32,
            detail: " that are not all lowercase hex",
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the form of an id that came from outside.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            /// An id the server minted or read back from its own store.
            pub fn from_trusted(s: String) -> Self {
                debug_assert!(check_id(&s).is_ok(), "not an id: {s:?}");
                Self(s)
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ID_PATTERN))
                    .min_length(Some(32))
                    .max_length(Some(32))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A user (account).
    UserId
);
id_type!(
    /// A device of a user: the unit that holds keys and receives envelopes.
    DeviceId
);
id_type!(
    /// A direct conversation, group or channel.
    ConversationId
);
id_type!(
    /// A stored message or channel post.
    MessageId
);
id_type!(
    /// An uploaded (encrypted) media object.
    MediaId
);
id_type!(
    /// An invite link, as its group's managers list and revoke it (not the
    /// secret token that joins).
    InviteId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_of_32_lowercase_hex_characters_parses_and_round_trips() {
        let id = UserId::parse("0190f1e2d3c4b5a6978800aabbccddee").expect("id");
        assert_eq!(UserId::parse(id.as_str()).as_ref(), Ok(&id));
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(serde_json::from_str::<UserId>(&json).ok(), Some(id));
    }

    #[test]
    fn malformed_ids_are_refused_with_what_was_expected() {
        for bad in [
            "",
            "abc",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcdef0",
            "é123456789abcdef0123456789abcde",
        ] {
            let err = ConversationId::parse(bad).expect_err(bad);
            assert!(err.to_string().starts_with("expected an id of 32"), "{err}");
            assert!(serde_json::from_str::<ConversationId>(&format!("{bad:?}")).is_err());
        }
    }
}
