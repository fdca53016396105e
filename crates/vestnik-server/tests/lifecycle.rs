//! Stopping a node stops everything it started: the reapers, pruners,
//! housekeeping, presence heartbeat and the consumer of routed frames end
//! once the HTTP server has let its requests finish.
mod common;

use common::TestApp;
use std::time::Duration;

both_backends!(stopping_the_server_stops_every_background_task);

async fn stopping_the_server_stops_every_background_task(mut app: TestApp) {
    let running = app.gw.background.running();
    // Retention reaper, housekeeping, routed-frame consumer, presence
    // heartbeat, media reaper, used-token pruner.
    assert!(
        running >= 6,
        "expected the node's loops, got {running} tasks"
    );
    app.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while app.gw.background.running() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} background tasks still running 15 s after shutdown",
            app.gw.background.running()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        app.gw.background.shutdown().is_cancelled(),
        "the signal reached the tasks"
    );
}
