//! Profile pictures: uploaded as images, kept only as square JPEGs the
//! server re-encoded (no metadata survives), seen by conversation partners
//! only, pushed live, replaced and removed without leaving objects or quota
//! behind, scanned by clamd; bad uploads get clear errors.
use super::*;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// A PNG of `w`×`h` with a text chunk holding `secret` (as a camera's
/// location would be): the left and right thirds red, the middle green.
fn png_with_metadata(w: u32, h: u32, secret: &str) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| {
        if (w / 3..2 * w / 3).contains(&x) {
            image::Rgb([0, 255, 0])
        } else {
            image::Rgb([255, 0, 0])
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    // After the 8-byte signature and the IHDR chunk (4 + 4 + 13 + 4 bytes).
    let at = 8 + 25;
    let data = [b"Comment\0".as_slice(), secret.as_bytes()].concat();
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let typed = [b"tEXt".as_slice(), &data].concat();
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    png.splice(at..at, chunk);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn put_avatar(app: &TestApp, who: &User, content_type: &str, body: Vec<u8>) -> common::Res {
    let res = app
        .http
        .put(format!("{}/v1/account/avatar", app.base))
        .bearer_auth(&who.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("put");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    common::Res {
        status,
        body,
        headers,
    }
}

async fn avatar_of(app: &TestApp, viewer: &User, whose: &User) -> common::Res {
    app.get_auth(&format!("/v1/profiles/{}/avatar", whose.id), &viewer.token)
        .await
}

async fn profile_frame(ws: &mut common::Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "profile_changed" {
                return v;
            }
        }
    }
}

async fn profile_pictures_are_square_jpegs_seen_by_partners_only_and_replaced_in_place(
    app: TestApp,
) {
    let (alice, bob, eve) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
        user(&app, "eve@example.org").await,
    );
    let r = app
        .post_auth(
            "/v1/conversations",
            &alice.token,
            Some(json!({"kind": "direct", "peer_user_id": bob.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut bobs_socket = common::ws_connect(&app.base, &bob.token).await;

    let secret = "GPS 51.5007N 0.1246W, Pixel 9";
    let r = put_avatar(
        &app,
        &alice,
        "image/png",
        png_with_metadata(900, 600, secret),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let first = r.body["avatar"].as_str().expect("avatar id").to_owned();
    let f = profile_frame(&mut bobs_socket).await;
    assert_eq!(
        (f["user_id"].as_str(), f["avatar"].as_str()),
        (Some(alice.id.as_str()), Some(first.as_str()))
    );

    // Bob sees it: a 512 px square JPEG of the image's centre, no metadata.
    let r = avatar_of(&app, &bob, &alice).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["avatar"], first.as_str());
    let (status, jpeg) = fetch(&app, &r.body["download"], None).await;
    assert_eq!(status, 200);
    assert_eq!(Some(jpeg.len() as i64), r.body["size"].as_i64());
    let pic = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .expect("a JPEG")
        .to_rgb8();
    assert_eq!((pic.width(), pic.height()), (512, 512));
    let (centre, edge) = (pic.get_pixel(256, 256), pic.get_pixel(3, 256));
    assert!(centre[1] > 200 && centre[0] < 60, "centre {centre:?}");
    assert!(edge[0] > 200 && edge[1] < 60, "edge {edge:?}");
    assert!(
        !jpeg.windows(9).any(|w| w == b"GPS 51.50"),
        "the upload's metadata is not kept"
    );
    let r = app
        .get_auth(&format!("/v1/profiles?ids={}", alice.id), &bob.token)
        .await;
    assert_eq!(r.body["profiles"][0]["avatar"], first.as_str());

    // Eve shares nothing with Alice: no picture, as for a user without one.
    let r = avatar_of(&app, &eve, &alice).await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = avatar_of(&app, &alice, &eve).await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    // The picture is not conversation media: the media API neither serves
    // nor deletes it.
    let r = app
        .get_auth(&format!("/v1/media/{first}"), &alice.token)
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/media/{first}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let size = r_size(&app, &bob, &alice).await;
    assert_eq!(usage(&app, &alice).await, size, "counted against the quota");

    // Replacing it deletes the old object and releases its bytes.
    let img = image::RgbImage::from_pixel(300, 300, image::Rgb([10, 20, 200]));
    let mut jpeg_in = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpeg_in),
        image::ImageFormat::Jpeg,
    )
    .expect("jpeg");
    let r = put_avatar(&app, &alice, "image/jpeg", jpeg_in).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let second = r.body["avatar"].as_str().expect("avatar").to_owned();
    assert_ne!(second, first);
    assert_eq!(
        profile_frame(&mut bobs_socket).await["avatar"],
        second.as_str()
    );
    assert!(
        !object_exists(&app, &first).await,
        "the old picture is deleted"
    );
    assert!(object_exists(&app, &second).await);
    let size = r_size(&app, &bob, &alice).await;
    assert_eq!(usage(&app, &alice).await, size);

    // Bad uploads: a clear error each, and the picture stays as it was.
    let r = put_avatar(&app, &alice, "image/png", b"\x89PNG not really".to_vec()).await;
    assert_eq!((r.status, r.code()), (422, "not_an_image"), "{:?}", r.body);
    let r = put_avatar(&app, &alice, "text/plain", b"hello".to_vec()).await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = put_avatar(&app, &alice, "image/png", vec![0u8; (4 << 20) + 1]).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "payload_too_large"),
        "{:?}",
        r.body
    );
    let r = app
        .http
        .put(format!("{}/v1/account/avatar", app.base))
        .header("content-type", "image/png")
        .body(vec![1u8; 10])
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 401);
    let r = avatar_of(&app, &bob, &alice).await;
    assert_eq!(r.body["avatar"], second.as_str());

    // Removing it: the object, the bytes and the pointer go; Bob is told.
    let r = app
        .send(
            Method::DELETE,
            "/v1/account/avatar",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body.get("avatar").is_none(), "{:?}", r.body);
    let f = profile_frame(&mut bobs_socket).await;
    assert!(f.get("avatar").is_none(), "{f:?}");
    assert!(!object_exists(&app, &second).await);
    assert_eq!(usage(&app, &alice).await, 0);
    let r = avatar_of(&app, &bob, &alice).await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    // Removing none is not an error.
    let r = app
        .send(
            Method::DELETE,
            "/v1/account/avatar",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // With clamd configured the upload is scanned before it is decoded.
    if app.gw_config.clamd_addr.is_some() {
        let r = put_avatar(&app, &alice, "image/gif", vestnik_testkit::EICAR.into()).await;
        assert_eq!(
            (r.status, r.code()),
            (422, "media_infected"),
            "{:?}",
            r.body
        );
    }
}

async fn r_size(app: &TestApp, viewer: &User, whose: &User) -> i64 {
    let r = avatar_of(app, viewer, whose).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["size"].as_i64().expect("size")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_pictures_are_square_jpegs_seen_by_partners_only_and_replaced_in_place_local_sqlite(
) {
    let clamd = vestnik_testkit::clamd_addr();
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        tune(c);
        c.clamd_addr = clamd;
    })
    .await;
    if let Some(app) = app {
        profile_pictures_are_square_jpegs_seen_by_partners_only_and_replaced_in_place(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_pictures_are_square_jpegs_seen_by_partners_only_and_replaced_in_place_s3_postgres_redis(
) {
    let Some(s3) = vestnik_testkit::s3_server() else {
        return;
    };
    let clamd = vestnik_testkit::clamd_addr();
    let app = common::spawn_app_with(common::Backend::PostgresRedis, |c| {
        tune(c);
        c.clamd_addr = clamd;
        use_s3(c, &s3);
    })
    .await;
    if let Some(app) = app {
        profile_pictures_are_square_jpegs_seen_by_partners_only_and_replaced_in_place(app).await;
    }
}
