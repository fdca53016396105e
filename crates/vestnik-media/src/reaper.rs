//! The TTL reaper: a loop per node (all nodes may run it; see
//! [`MediaService::reap`]).
use std::sync::Arc;
use std::time::Duration;

use crate::MediaService;

const BATCH: i64 = 500;

pub fn spawn_reaper(service: Arc<MediaService>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
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
            tokio::time::sleep(every).await;
        }
    })
}
