//! The TTL reaper: a loop per node (all nodes may run it; see
//! [`MediaService::reap`]).
use std::sync::Arc;
use std::time::Duration;

use vestnik_core::Background;

use crate::MediaService;
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
