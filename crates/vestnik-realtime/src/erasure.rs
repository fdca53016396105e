//! What the members of a deleted account's groups learn. The events name
//! no actor (an empty `actor_user_id`): nothing the server keeps may point
//! at the account once it is deleted, and members know who left from the
//! member list they hold.

use vestnik_store::ErasedAccount;

use crate::Realtime;

/// The actor of a change the server made.
const SERVER: &str = "";

impl Realtime {
    /// Announces a deleted account's departure from its groups and channels,
    /// and the new owner of those it owned. The account is gone already, so
    /// failures are logged, not returned: there is nothing to retry.
    pub async fn account_erased(&self, erased: &ErasedAccount) {
        for (conversation_id, kind) in &erased.left {
            if let Err(e) = self
                .announce(
                    SERVER,
                    conversation_id,
                    kind,
                    "member_left",
                    None,
                    None,
                    &[],
                )
                .await
            {
                tracing::warn!(error = %e, "announcing a deleted account's departure");
            }
        }
        for s in &erased.succession {
            let announced = async {
                self.announce(
                    SERVER,
                    &s.conversation_id,
                    &s.kind,
                    "member_left",
                    None,
                    None,
                    &[],
                )
                .await?;
                self.announce(
                    SERVER,
                    &s.conversation_id,
                    &s.kind,
                    "owner_changed",
                    Some(&s.new_owner),
                    Some("owner"),
                    &[],
                )
                .await
            };
            if let Err(e) = announced.await {
                tracing::warn!(error = %e, "announcing a deleted owner's successor");
            }
        }
    }
}
