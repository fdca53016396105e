//! Media metadata on both databases: the quota holds under concurrent grants,
//! and usage is released exactly once however many deleters race.
mod common;

use std::sync::Arc;

use common::{postgres_store, sqlite_store};
use vestnik_store::{MediaCreate, MediaRow, Store};

fn media(id: &str, size: i64) -> MediaRow {
    MediaRow {
        id: id.into(),
        owner_id: "ua".into(),
        conversation_id: "c1".into(),
        object_key: format!("m/{id}"),
        size,
        sha256: "00".repeat(32),
        class: "file".into(),
        state: "pending".into(),
        created_at: 1_000,
        upload_expires_at: 2_000,
        expires_at: 10_000,
        thumbnail_key: None,
    }
}

async fn quota_holds_under_concurrent_grants_and_deletes_release_once(store: Arc<dyn Store>) {
    // Twenty grants of 100 bytes race against a 1,000-byte quota.
    let grants = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create_media(&media(&format!("m{i}"), 100), 1_000)
                .await
        })
    });
    let mut created = 0;
    for g in grants {
        match g.await.expect("task").expect("create") {
            MediaCreate::Created => created += 1,
            MediaCreate::OverQuota { used } => assert!(used + 100 > 1_000, "refused at {used}"),
        }
    }
    assert_eq!(created, 10);
    assert_eq!(store.media_usage("ua").await.expect("usage"), 1_000);

    // Completing is allowed only inside the upload window, once.
    assert!(
        !store
            .mark_media_ready("m1", 2_000, None)
            .await
            .expect("late"),
        "window closed"
    );
    assert!(store
        .mark_media_ready("m0", 1_500, Some("m/m0-thumb"))
        .await
        .expect("ready"));
    assert!(!store
        .mark_media_ready("m0", 1_500, None)
        .await
        .expect("again"));
    let m0 = store.media("m0").await.expect("media").expect("row");
    assert_eq!(
        (m0.state.as_str(), m0.thumbnail_key.as_deref()),
        ("ready", Some("m/m0-thumb"))
    );

    // Expired (m0 at 10,000) and abandoned pending uploads (at 2,000) are reapable.
    let reapable = store.reapable_media(2_000, 100).await.expect("reapable");
    assert_eq!(
        reapable.len(),
        9,
        "the nine pending uploads, not the ready one"
    );
    let all = store.reapable_media(10_000, 100).await.expect("reapable");
    assert_eq!(all.len(), 10);

    // Three deleters race for every row: each row's usage is released once.
    let mut tasks = Vec::new();
    for row in &all {
        for _ in 0..3 {
            let store = store.clone();
            let id = row.id.clone();
            tasks.push(tokio::spawn(async move { store.delete_media(&id).await }));
        }
    }
    let mut deleted = 0;
    for t in tasks {
        if t.await.expect("task").expect("delete").is_some() {
            deleted += 1;
        }
    }
    assert_eq!(deleted, 10);
    assert_eq!(store.media_usage("ua").await.expect("usage"), 0);
    assert!(store.media("m0").await.expect("media").is_none());
}

#[tokio::test]
async fn quota_holds_under_concurrent_grants_and_deletes_release_once_sqlite() {
    let (store, dir) = sqlite_store().await;
    quota_holds_under_concurrent_grants_and_deletes_release_once(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn quota_holds_under_concurrent_grants_and_deletes_release_once_postgres() {
    if let Some(store) = postgres_store().await {
        quota_holds_under_concurrent_grants_and_deletes_release_once(store).await;
    }
}
