//! The per-user quota and the TTL reaper.
use super::*;

media_backends!(
    the_quota_counts_pending_and_ready_media_and_deletes_release_it,
    the_reaper_removes_expired_media_and_abandoned_uploads,
);

// The sweeper deletes every object its own database has no row for: in the
// bucket the other tests share, that would be their objects. It gets a
// bucket of its own (one, reused by every run: SeaweedFS gives each bucket
// volumes of its own, and a bucket per run used them all up).
mod sweep_local_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_url_stores_nothing_once_its_upload_is_closed() {
        let app = crate::common::spawn_app_with(crate::common::Backend::Sqlite, super::tune).await;
        if let Some(app) = app {
            super::an_upload_url_stores_nothing_once_its_upload_is_closed(app).await
        }
    }
}

mod sweep_s3_postgres_redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_url_stores_nothing_once_its_upload_is_closed() {
        let Some(s3) = vestnik_testkit::s3_server() else {
            return;
        };
        let app = crate::common::spawn_app_with(crate::common::Backend::PostgresRedis, |c| {
            super::tune(c);
            super::use_s3(c, &s3);
            c.s3_bucket = format!("{}-sweep", s3.bucket);
        })
        .await;
        if let Some(app) = app {
            super::an_upload_url_stores_nothing_once_its_upload_is_closed(app).await
        }
    }
}

/// A signed upload URL outlives its upload when the upload is completed or
/// deleted first. The local store refuses such a PUT; S3 cannot (its
/// signature is all it checks), so there the sweeper removes the object no
/// row accounts for. Either way nothing stays outside the quota.
async fn an_upload_url_stores_nothing_once_its_upload_is_closed(app: TestApp) {
    let alice = user(&app, "alice@example.org").await;
    let conv = conversation(&app, &alice, "group", &[]).await;
    let data = b"completed once".to_vec();
    let g = grant(&app, &alice, &conv, data.len(), &sha(&data)).await;
    let done = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &g.body["upload"], data.clone()).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{done}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let again = put(&app, &g.body["upload"], data.clone()).await;

    let gone = b"deleted before its bytes came".to_vec();
    let g = grant(&app, &alice, &conv, gone.len(), &sha(&gone)).await;
    let deleted = g.body["media"]["id"].as_str().expect("id").to_owned();
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{deleted}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let late = put(&app, &g.body["upload"], gone).await;
    if is_s3(&app) {
        assert_eq!(
            (again, late),
            (200, 200),
            "S3 takes any PUT its signature allows"
        );
        assert!(object_exists(&app, &deleted).await);
    } else {
        assert_eq!((again, late), (403, 403), "closed uploads take no bytes");
        assert!(!object_exists(&app, &deleted).await);
    }
    assert_eq!(usage(&app, &alice).await, data.len() as i64);

    // The sweeper removes what no row accounts for, and only that.
    let mut swept = 0;
    let mut after = None;
    loop {
        let (last, n) = app
            .gw
            .media
            .sweep(after.as_deref(), 1)
            .await
            .expect("sweep");
        swept += n;
        match last {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    // Earlier runs may have left objects in the sweeper's bucket; they go too.
    if is_s3(&app) {
        assert!(swept >= 1, "the late upload's object was swept");
    } else {
        assert_eq!(swept, 0, "the local store took no late bytes");
    }
    assert!(!object_exists(&app, &deleted).await);
    assert!(
        object_exists(&app, &done).await,
        "the completed upload stays"
    );
}

async fn the_quota_counts_pending_and_ready_media_and_deletes_release_it(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let mib = vec![7u8; 1 << 20];
    let first = upload(&app, &alice, &conv, &mib).await;
    let second = grant(&app, &alice, &conv, mib.len(), &sha(&mib)).await; // pending
    assert_eq!(second.status, 201);
    let _third = upload(&app, &alice, &conv, &mib).await;
    assert_eq!(usage(&app, &alice).await, 3 << 20);
    let r = grant(&app, &alice, &conv, 1, &sha(b"x")).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "quota_exceeded"),
        "{:?}",
        r.body
    );
    // Bob's quota is his own.
    let r = grant(&app, &bob, &conv, mib.len(), &sha(&mib)).await;
    assert_eq!(r.status, 201);

    // Only the owner deletes; the object, the record and the bytes go.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{first}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{first}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(!object_exists(&app, &first).await);
    let r = app
        .get_auth(&format!("/v1/media/{first}"), &bob.token)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(usage(&app, &alice).await, 2 << 20);
    let r = grant(&app, &alice, &conv, mib.len(), &sha(&mib)).await;
    assert_eq!(r.status, 201, "room again: {:?}", r.body);
}

async fn the_reaper_removes_expired_media_and_abandoned_uploads(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let ready = upload(&app, &alice, &conv, b"expires in five minutes").await;
    // Uploaded but never completed, and granted but never uploaded.
    let data = b"abandoned";
    let g = grant(&app, &alice, &conv, data.len(), &sha(data)).await;
    assert_eq!(put(&app, &g.body["upload"], data.to_vec()).await, 200);
    let abandoned = g.body["media"]["id"].as_str().expect("id").to_owned();
    let g = grant(&app, &alice, &conv, 5, &sha(b"never")).await;
    let never = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        app.gw.media.reap(100).await.expect("reap"),
        0,
        "nothing due yet"
    );

    // Past the upload window (60 s + 5 min grace) and the 5 min TTL.
    app.clock.advance_ms(7 * 60_000);
    let r = app
        .get_auth(&format!("/v1/media/{ready}"), &bob.token)
        .await;
    assert_eq!(
        r.status, 404,
        "expired media is not served even before the reaper runs"
    );
    // Two reapers at once (as on two nodes): each item is removed once.
    let (a, b) = tokio::join!(app.gw.media.reap(100), app.gw.media.reap(100));
    assert_eq!(a.expect("reap") + b.expect("reap"), 3);
    for id in [&ready, &abandoned, &never] {
        assert!(!object_exists(&app, id).await, "{id} object");
        let r = app
            .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
            .await;
        assert_eq!(r.status, 404, "{id} record");
    }
    assert_eq!(usage(&app, &alice).await, 0);
    assert_eq!(app.gw.media.reap(100).await.expect("reap"), 0);
}
