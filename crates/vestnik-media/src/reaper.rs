//! The TTL reaper: a loop per node (all nodes may run it; see
//! [`MediaService::reap`]).
use std::sync::Arc;
use std::time::Duration;

use vestnik_core::Background;

use crate::MediaService;
use vestnik_core::limits::MEDIA_REAP_BATCH as BATCH;

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
