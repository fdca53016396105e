//! Public-channel media: virus scanning (and a clamd outage) and
//! server-made previews.
use super::*;

media_backends!(public_channel_images_get_a_server_made_preview_and_encrypted_ones_do_not,);

/// Public-channel media is plaintext, so the server scans it with clamd
/// when one is configured; encrypted media is never read.
async fn public_channel_uploads_are_scanned_and_infected_ones_refused(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let eicar = vestnik_testkit::EICAR.as_bytes().to_vec();
    let g = grant(&app, &alice, &channel, eicar.len(), &sha(&eicar)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &g.body["upload"], eicar.clone()).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "media_infected"),
        "{:?}",
        r.body
    );
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("Vestnik.Test.EICAR"));
    assert!(
        !object_exists(&app, &id).await,
        "the infected object is deleted"
    );
    assert_eq!(usage(&app, &alice).await, 0);

    // A clean file in the same channel passes.
    let clean = upload(&app, &alice, &channel, b"just a public announcement").await;
    let r = app
        .get_auth(&format!("/v1/media/{clean}"), &bob.token)
        .await;
    assert_eq!(r.status, 200);

    // In a group the bytes are ciphertext to the server: never scanned.
    let group = conversation(&app, &alice, "group", &[&bob]).await;
    upload(&app, &alice, &group, &eicar).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channel_uploads_are_scanned_and_infected_ones_refused_local_sqlite() {
    let Some(clamd) = vestnik_testkit::clamd_addr() else {
        return;
    };
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        tune(c);
        c.clamd_addr = Some(clamd);
    })
    .await;
    if let Some(app) = app {
        public_channel_uploads_are_scanned_and_infected_ones_refused(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channel_uploads_are_scanned_and_infected_ones_refused_s3_postgres_redis() {
    let (Some(clamd), Some(s3)) = (vestnik_testkit::clamd_addr(), vestnik_testkit::s3_server())
    else {
        return;
    };
    let app = common::spawn_app_with(common::Backend::PostgresRedis, |c| {
        tune(c);
        c.clamd_addr = Some(clamd);
        use_s3(c, &s3);
    })
    .await;
    if let Some(app) = app {
        public_channel_uploads_are_scanned_and_infected_ones_refused(app).await;
    }
}

async fn public_channel_images_get_a_server_made_preview_and_encrypted_ones_do_not(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let img = image::RgbImage::from_fn(1000, 500, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");

    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let id = upload(&app, &alice, &channel, &png).await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    let (status, jpeg) = fetch(&app, &d.body["thumbnail"], None).await;
    assert_eq!(status, 200);
    let preview = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG preview");
    assert_eq!((preview.width(), preview.height()), (320, 160));

    // Deleting the media deletes its preview too.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let gone = app
        .gw
        .media
        .blobs()
        .head(&format!("m/{id}-thumb"))
        .await
        .expect("head");
    assert!(gone.is_none(), "preview deleted");

    // In a group the same bytes are (to the server) ciphertext: no preview.
    let group = conversation(&app, &alice, "group", &[&bob]).await;
    let id = upload(&app, &alice, &group, &png).await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert!(d.body.get("thumbnail").is_none(), "{:?}", d.body);
}

/// With clamd unreachable a public upload is refused with 503 (never
/// published unscanned, never a 500), nothing is lost, and completing it
/// again once clamd is back publishes it.
async fn a_clamd_outage_holds_public_uploads_until_it_is_back(app: TestApp, mut link: ClamdLink) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let body = b"a public announcement, scanned before anyone sees it".to_vec();
    let g = grant(&app, &alice, &channel, body.len(), &sha(&body)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    assert_eq!(put(&app, &g.body["upload"], body).await, 200);

    link.cut().await;
    let path = format!("/v1/media/{id}/complete");
    let complete = || app.post_auth(&path, &alice.token, None);
    let r = complete().await;
    assert_eq!(
        (r.status, r.code()),
        (503, "scanner_unavailable"),
        "{:?}",
        r.body
    );
    assert_ne!(
        app.get_auth(&format!("/v1/media/{id}"), &bob.token)
            .await
            .status,
        200,
        "not published unscanned"
    );
    assert!(object_exists(&app, &id).await, "the upload is kept");

    link.restore().await;
    let r = complete().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        app.get_auth(&format!("/v1/media/{id}"), &bob.token)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamd_outage_holds_public_uploads_until_it_is_back_local_sqlite() {
    let Some(clamd) = vestnik_testkit::clamd_addr() else {
        return;
    };
    let link = ClamdLink::open("127.0.0.1:0".parse().expect("addr"), clamd).await;
    let via = link.addr.to_string();
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        tune(c);
        c.clamd_addr = Some(via);
    })
    .await;
    if let Some(app) = app {
        a_clamd_outage_holds_public_uploads_until_it_is_back(app, link).await;
    }
}
