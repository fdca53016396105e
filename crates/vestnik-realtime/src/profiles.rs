//! Display names (and the profile as a whole): set by their owner, seen by those who share a
//! conversation with them, and pushed to those when they change.

use vestnik_core::limits::{DISPLAY_NAME_MAX_CHARS, PROFILES_PER_REQUEST_MAX};
use vestnik_core::Action;
use vestnik_proto::{Profile, ProfileList, ProfileUpdate, ServerFrame, UserId};
use vestnik_store::{ProfileRow, SessionAuth};

use crate::service::bad;
use crate::{Realtime, RealtimeError};

/// Bidirectional controls reorder what follows them: a name could make the
/// text after it read as something else (`U+202E` and friends).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// The name to store: trimmed, `None` to clear.
fn parse_display_name(raw: &str) -> Result<Option<String>, RealtimeError> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > DISPLAY_NAME_MAX_CHARS
        || name.chars().any(|c| c.is_control() || is_bidi_control(c))
    {
        return Err(bad(format!(
            "display_name: expected 1-{DISPLAY_NAME_MAX_CHARS} characters without control or bidirectional-override characters"
        )));
    }
    Ok(Some(name.to_owned()))
}

fn profile(r: ProfileRow) -> Profile {
    Profile {
        user_id: r.id,
        display_name: r.display_name,
        avatar: r.avatar_media_id,
    }
}

impl Realtime {
    /// Sets (or, with an empty name, clears) the caller's display name and
    /// pushes the change to everyone who shares a conversation with them.
    pub async fn set_display_name(
        &self,
        auth: &SessionAuth,
        req: &ProfileUpdate,
    ) -> Result<Profile, RealtimeError> {
        let name = parse_display_name(&req.display_name)?;
        self.limit(Action::AccountChange, &auth.user_id).await?;
        self.store
            .set_display_name(&auth.user_id, name.as_deref(), self.clock.now_ms())
            .await?;
        self.profile_changed(&auth.user_id).await
    }

    /// Pushes the user's profile as it is now to everyone who shares a
    /// conversation with them, and returns it (after a name or picture
    /// change; the whole profile travels, so a partner that missed an
    /// earlier change is current after any later one).
    pub async fn profile_changed(&self, user_id: &str) -> Result<Profile, RealtimeError> {
        let profile = self.own_profile(user_id).await?;
        let frame = ServerFrame::ProfileChanged {
            user_id: profile.user_id.clone(),
            display_name: profile.display_name.clone(),
            avatar: profile.avatar.clone(),
        };
        self.tell_partners(user_id, frame).await;
        Ok(profile)
    }

    /// The user's own profile.
    pub async fn own_profile(&self, user_id: &str) -> Result<Profile, RealtimeError> {
        let own = [user_id.to_owned()];
        Ok(self
            .store
            .profiles(user_id, &own)
            .await?
            .into_iter()
            .next()
            .map_or_else(
                || Profile {
                    user_id: user_id.to_owned(),
                    display_name: None,
                    avatar: None,
                },
                profile,
            ))
    }

    /// The profiles among `ids` the caller may see.
    pub async fn profiles(
        &self,
        auth: &SessionAuth,
        ids: &[UserId],
    ) -> Result<ProfileList, RealtimeError> {
        if ids.is_empty() || ids.len() > PROFILES_PER_REQUEST_MAX {
            return Err(bad(format!(
                "ids: expected 1-{PROFILES_PER_REQUEST_MAX} user ids"
            )));
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = self.store.profiles(&auth.user_id, &ids).await?;
        Ok(ProfileList {
            profiles: rows.into_iter().map(profile).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_display_name;

    #[test]
    fn display_names_are_trimmed_bounded_and_free_of_controls() {
        assert_eq!(
            parse_display_name("  Alice  ").ok(),
            Some(Some("Alice".to_owned()))
        );
        assert_eq!(parse_display_name("   ").ok(), Some(None));
        assert!(parse_display_name(&"x".repeat(65)).is_err());
        assert!(parse_display_name(&"я".repeat(64)).is_ok());
        assert!(parse_display_name("a\nb").is_err());
        assert!(parse_display_name("evil\u{202E}gpj.exe").is_err());
    }
}
