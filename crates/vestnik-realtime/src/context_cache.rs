//! A node-local, short-lived copy of the send context of direct
//! conversations, so a busy chat does not read its members, devices and
//! blocks from the database for every message.
//!
//! Only direct conversations are kept: their members never change. The
//! copy is trusted only when the sender addressed exactly the devices it
//! lists; on any difference the caller reads the database again, so a new
//! or removed device never earns the sender a false "device list stale".
//! What a copy can get wrong, for at most [`TTL`]: a block or unblock made
//! on another node, and an envelope accepted for a device revoked meanwhile
//! (whose sessions are already gone, so it cannot fetch it).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use vestnik_core::limits::SEND_CONTEXT_MAX_ENTRIES as MAX_ENTRIES;
use vestnik_core::limits::SEND_CONTEXT_REFRESH_AFTER as REFRESH_AFTER;
pub use vestnik_core::limits::SEND_CONTEXT_TTL as TTL;
use vestnik_store::SendContext;

/// (conversation, sender) → the copy.
type Entries = HashMap<(String, String), Entry>;

struct Entry {
    read_at: Instant,
    ctx: Arc<SendContext>,
    /// A caller was told to refresh this copy.
    refreshing: bool,
}

#[derive(Default)]
pub struct ContextCache {
    entries: Mutex<Entries>,
}

impl ContextCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh-enough copy for (conversation, sender), if any. None tells
    /// the caller to read the database and `put` what it read; once a copy
    /// is due for refresh, only one caller is told so.
    pub fn get(&self, conversation_id: &str, sender: &str) -> Option<Arc<SendContext>> {
        self.get_at(conversation_id, sender, Instant::now())
    }

    fn get_at(
        &self,
        conversation_id: &str,
        sender: &str,
        now: Instant,
    ) -> Option<Arc<SendContext>> {
        let key = (conversation_id.to_owned(), sender.to_owned());
        let mut map = self.lock();
        let entry = map.get_mut(&key)?;
        let age = now.saturating_duration_since(entry.read_at);
        if age >= TTL {
            map.remove(&key);
            return None;
        }
        if age >= REFRESH_AFTER && !entry.refreshing {
            entry.refreshing = true;
            return None;
        }
        Some(entry.ctx.clone())
    }

    /// Keeps a direct conversation's context; others are not cached.
    pub fn put(&self, conversation_id: &str, sender: &str, ctx: &Arc<SendContext>) {
        if ctx.kind != "direct" {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            (conversation_id.to_owned(), sender.to_owned()),
            Entry {
                read_at: Instant::now(),
                ctx: ctx.clone(),
                refreshing: false,
            },
        );
    }

    /// Forgets every copy involving `user_id` (a block or a device change
    /// made on this node takes effect here at once).
    pub fn forget_user(&self, user_id: &str) {
        self.lock().retain(|(_, sender), entry| {
            sender != user_id && !entry.ctx.members.iter().any(|m| m == user_id)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ctx(kind: &str) -> Arc<SendContext> {
        Arc::new(SendContext {
            members: vec!["a".into(), "b".into()],
            kind: kind.into(),
            ..SendContext::default()
        })
    }

    #[test]
    fn only_direct_contexts_are_kept_and_they_can_be_forgotten() {
        let c = ContextCache::default();
        c.put("g", "a", &ctx("group"));
        assert!(c.get("g", "a").is_none());
        c.put("d", "a", &ctx("direct"));
        assert!(c.get("d", "a").is_some());
        assert!(c.get("d", "b").is_none(), "per sender");
        c.forget_user("b");
        assert!(c.get("d", "a").is_none(), "b is a member");
    }

    #[test]
    fn one_caller_refreshes_a_copy_due_for_it_and_nobody_uses_it_past_its_ttl() {
        let c = ContextCache::default();
        c.put("d", "a", &ctx("direct"));
        let read = Instant::now();
        assert!(c
            .get_at("d", "a", read + Duration::from_millis(100))
            .is_some());
        let due = read + REFRESH_AFTER + Duration::from_millis(10);
        assert!(
            c.get_at("d", "a", due).is_none(),
            "the first caller refreshes"
        );
        assert!(
            c.get_at("d", "a", due).is_some(),
            "the others keep the copy"
        );
        assert!(c.get_at("d", "a", read + TTL).is_none(), "expired");
        assert!(c.get_at("d", "a", read + TTL).is_none(), "and gone");
        c.put("d", "a", &ctx("direct"));
        assert!(c.get("d", "a").is_some(), "refreshed");
    }
}
