//! The TTL reaper: a loop per node (all nodes may run it; see
//! [`MediaService::reap`]).
use std::sync::Arc;
use std::time::Duration;

use vestnik_core::Background;

use crate::{MediaError, MediaService};
use vestnik_core::limits::MEDIA_REAP_BATCH as BATCH;

/// Sweeps the whole store for objects without a row every `every` (see
/// [`MediaService::sweep`]), a page at a time.
pub fn spawn_sweeper(service: Arc<MediaService>, every: Duration, background: &Background) {
    background.every(every, move || {
        let service = service.clone();
        async move {
            let mut after: Option<String> = None;
            loop {
                match service.sweep(after.as_deref(), SWEEP_PAGE).await {
                    Ok((Some(last), _)) => after = Some(last),
                    Ok((None, _)) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "media sweeper pass failed");
                        break;
                    }
                }
            }
        }
    });
}

/// Objects listed per sweeper page.
const SWEEP_PAGE: usize = 500;

/// Reaps expired media every `every` until `background` stops.
pub fn spawn_reaper(service: Arc<MediaService>, every: Duration, background: &Background) {
    background.every(every, move || {
        let service = service.clone();
        async move {
            loop {
                match service.reap(BATCH).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "media reaper pass failed");
                        break;
                    }
                }
            }
        }
    });
}

impl MediaService {
    /// One pass of the orphan sweeper over up to `limit` objects after
    /// `after`: deletes objects no media row accounts for (an upload that
    /// finished after its row was deleted, or an S3 upload URL used after
    /// the upload was closed, which S3 cannot refuse). Returns the last key
    /// seen (None at the end of the store) and how many were deleted.
    pub async fn sweep(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Option<String>, usize), MediaError> {
        let keys = self.blobs.list(after, limit).await?;
        let mut deleted = 0;
        for key in &keys {
            // `m/<id>` and `m/<id>-thumb`; other names are not ours to judge.
            let id = key
                .strip_prefix("m/")
                .map(|k| k.strip_suffix("-thumb").unwrap_or(k))
                .filter(|id| vestnik_core::ids::is_valid_id(id));
            let Some(id) = id else { continue };
            if self.store.media(id).await?.is_none() {
                self.blobs.delete(key).await?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            metrics::counter!("vestnik_media_orphans_swept_total").increment(deleted as u64);
            tracing::info!(deleted, "media sweeper removed objects without a row");
        }
        let last = if keys.len() < limit {
            None
        } else {
            keys.last().cloned()
        };
        Ok((last, deleted))
    }

    /// One reaper pass over at most `limit` rows; returns how many were
    /// removed. Safe to run on every node at once: deleting a missing object
    /// succeeds and only one deleter of a row releases its bytes.
    pub async fn reap(&self, limit: i64) -> Result<usize, MediaError> {
        let due = self
            .store
            .reapable_media(self.clock.now_ms(), limit)
            .await?;
        let mut removed = 0;
        for m in &due {
            match self.delete_objects(m).await {
                Ok(()) => {
                    if self.store.delete_media(&m.id).await?.is_some() {
                        removed += 1;
                    }
                }
                // Left for the next pass; the row still accounts for it.
                Err(e) => {
                    tracing::warn!(error = %e, media = %m.id, "reaper could not delete an object")
                }
            }
        }
        if removed > 0 {
            metrics::counter!("vestnik_media_reaped_total").increment(removed as u64);
        }
        Ok(removed)
    }
}
