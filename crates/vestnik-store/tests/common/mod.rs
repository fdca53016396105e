//! Fresh migrated stores for the store's contract tests.
#![allow(dead_code)]
use std::sync::Arc;

use vestnik_store::Store;

/// A migrated store in a new SQLite file; remove the directory afterwards.
pub async fn sqlite_store() -> (Arc<dyn Store>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("vestnik-store-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let store = vestnik_store::open(&url, 2).await.expect("open sqlite");
    store.migrate().await.expect("migrate");
    (store, dir)
}

/// A migrated store on a fresh database of the test PostgreSQL server.
pub async fn postgres_store() -> Option<Arc<dyn Store>> {
    Some(postgres_store_and_url().await?.0)
}

/// `postgres_store`, with its database's URL for a second, raw connection.
pub async fn postgres_store_and_url() -> Option<(Arc<dyn Store>, String)> {
    let url = vestnik_testkit::fresh_pg_database("vestnik_store_test").await?;
    let store = vestnik_store::open(&url, 4)
        .await
        .expect("open fresh database");
    store.migrate().await.expect("migrate");
    Some((store, url))
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:x}", std::process::id())
}
