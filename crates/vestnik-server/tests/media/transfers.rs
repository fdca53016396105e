//! Objects up and down at signed URLs, bad uploads, tampered and foreign URLs.
use super::*;

media_backends!(
    an_object_goes_up_and_down_at_signed_urls_and_only_members_get_it,
    bad_uploads_get_clear_errors_and_leave_nothing_behind,
    tampered_expired_and_foreign_urls_are_refused,
);

async fn an_object_goes_up_and_down_at_signed_urls_and_only_members_get_it(app: TestApp) {
    let (alice, bob, carol) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
        user(&app, "carol@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();

    let g = grant(&app, &alice, &conv, bytes.len(), &sha(&bytes)).await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let upload_url = url_of(&app, &g.body["upload"]);
    if is_s3(&app) {
        // The bytes go to the object store, not to this server.
        let s3 = app.gw_config.s3_endpoint.as_deref().expect("s3");
        assert!(upload_url.starts_with(s3), "{upload_url}");
        assert!(!upload_url.starts_with(&app.base));
        // And this server has no blob endpoints to route bytes through.
        let r = app
            .http
            .put(format!("{}/v1/media/blob/x.y", app.base))
            .body("x")
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 404);
        // The bucket lets a browser page on the configured origin PUT and GET.
        for method in ["PUT", "GET"] {
            let pre = app
                .http
                .request(Method::OPTIONS, &upload_url)
                .header("origin", "http://127.0.0.1:9")
                .header("access-control-request-method", method)
                .header("access-control-request-headers", "x-amz-checksum-sha256")
                .send()
                .await
                .expect("preflight");
            let allowed = pre
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert!(
                pre.status().is_success(),
                "{method} preflight: {}",
                pre.status()
            );
            assert_eq!(allowed, "http://127.0.0.1:9", "{method} preflight");
        }
        let other = app
            .http
            .request(Method::OPTIONS, &upload_url)
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "PUT")
            .send()
            .await
            .expect("preflight");
        assert!(other
            .headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v != "http://evil.example"));
    }
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    // Not downloadable before it is completed.
    let r = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!((r.status, r.code()), (409, "media_not_ready"));
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!((r.status, r.code()), (409, "media_not_uploaded"));

    assert_eq!(put(&app, &g.body["upload"], bytes.clone()).await, 200);
    // Completing someone else's upload: as if it did not exist.
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &bob.token, None)
        .await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["size"].as_u64()),
        (Some("ready"), Some(300_000))
    );
    // Completing twice is harmless.
    let again = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(again.status, 200);

    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200, "{:?}", d.body);
    assert_eq!(
        d.body["media"]["sha256"].as_str(),
        Some(sha(&bytes).as_str())
    );
    let (status, got) = fetch(&app, &d.body["download"], None).await;
    assert_eq!(status, 200);
    assert!(got == bytes, "downloaded bytes differ");
    // Range requests, for resuming and seeking.
    let (status, part) = fetch(&app, &d.body["download"], Some("bytes=1000-1999")).await;
    assert_eq!(status, 206);
    assert!(part == bytes[1000..2000]);

    // Not a member: the media does not exist for carol.
    let r = app.get_auth(&format!("/v1/media/{id}"), &carol.token).await;
    assert_eq!((r.status, r.code()), (404, "media_not_found"));
    let r = app
        .get_auth("/v1/media/..%2F..%2Fetc%2Fpasswd", &carol.token)
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
    // And she cannot upload into a conversation she is not in.
    let r = grant(&app, &carol, &conv, 10, &sha(b"0123456789")).await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    assert_eq!(usage(&app, &alice).await, 300_000);
}

async fn bad_uploads_get_clear_errors_and_leave_nothing_behind(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let good = sha(b"hello world");
    for (body, code) in [
        (
            json!({"conversation_id": conv, "size": 2 << 20, "sha256": good, "class": "file"}),
            "media_too_large",
        ),
        (
            json!({"conversation_id": conv, "size": 0, "sha256": good, "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": -5, "sha256": good, "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": "xyz", "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good.to_uppercase(), "class": "file"}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "../../exe"}),
            "invalid_body",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "ttl_secs": 10}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "ttl_secs": 999_999_999}),
            "invalid_input",
        ),
        (
            json!({"conversation_id": "../etc", "size": 11, "sha256": good, "class": "file"}),
            "invalid_body",
        ),
        (
            json!({"conversation_id": conv, "size": 11, "sha256": good, "class": "file", "name": "x"}),
            "invalid_body",
        ),
    ] {
        let r = app
            .post_auth("/v1/media", &alice.token, Some(body.clone()))
            .await;
        assert_eq!(r.code(), code, "{body} → {:?}", r.body);
        // 400 when the body does not parse, 422 when a value is refused.
        let want = if code == "invalid_body" { 400 } else { 422 };
        assert_eq!(r.status, want, "{body} → {}", r.status);
    }
    assert_eq!(usage(&app, &alice).await, 0, "refused grants hold nothing");

    // A channel's subscribers may not post media into it.
    let channel = conversation(&app, &alice, "channel", &[&bob]).await;
    let r = grant(&app, &bob, &channel, 11, &good).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));

    let data = b"hello world".to_vec();
    let g = grant(&app, &alice, &conv, data.len(), &good).await;
    assert_eq!(g.status, 201);
    let id = g.body["media"]["id"].as_str().expect("id").to_owned();
    let upload = &g.body["upload"];
    // Longer, shorter, or other bytes of the same length: the store refuses.
    let mut longer = data.clone();
    longer.push(b'!');
    for (what, body) in [
        ("longer", longer),
        ("shorter", data[..5].to_vec()),
        ("other bytes", b"HELLO WORLD".to_vec()),
    ] {
        let status = put(&app, upload, body).await;
        assert!((400..500).contains(&status), "{what}: {status}");
    }
    assert!(!object_exists(&app, &id).await, "nothing stored");
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!((r.status, r.code()), (409, "media_not_uploaded"));

    // An object that somehow differs from its grant (written straight into
    // the store with the right key) is caught at completion and deleted.
    let g2 = grant(&app, &alice, &conv, data.len(), &good).await;
    let id2 = g2.body["media"]["id"].as_str().expect("id").to_owned();
    let other = b"other thing".to_vec();
    let sneaky = app
        .gw
        .media
        .blobs()
        .presign_put(
            &format!("m/{id2}"),
            &vestnik_media::UploadSpec {
                size: other.len() as u64,
                sha256: sha(&other),
            },
            Duration::from_secs(60),
            vestnik_core::Clock::now_ms(&app.clock),
        )
        .expect("presign");
    let sneaky = serde_json::to_value(&sneaky).expect("json");
    assert_eq!(put(&app, &sneaky, other).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id2}/complete"), &alice.token, None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "media_mismatch"),
        "{:?}",
        r.body
    );
    assert!(
        !object_exists(&app, &id2).await,
        "the mismatching object is deleted"
    );
    let r = app
        .post_auth(&format!("/v1/media/{id2}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 404, "and its record");

    // The first grant still holds its bytes until completed or reaped.
    assert_eq!(usage(&app, &alice).await, data.len() as i64);
    assert_eq!(put(&app, upload, data).await, 200);
    let r = app
        .post_auth(&format!("/v1/media/{id}/complete"), &alice.token, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn tampered_expired_and_foreign_urls_are_refused(app: TestApp) {
    let (alice, bob) = (
        user(&app, "alice@example.org").await,
        user(&app, "bob@example.org").await,
    );
    let conv = conversation(&app, &alice, "group", &[&bob]).await;
    let id = upload(&app, &alice, &conv, b"top secret ciphertext").await;
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    assert_eq!(d.status, 200);
    let url = url_of(&app, &d.body["download"]);

    // One changed character anywhere in the signature: refused.
    let tampered = if is_s3(&app) {
        let i = url.find("X-Amz-Signature=").expect("sig") + 16;
        let flip = if &url[i..=i] == "0" { "1" } else { "0" };
        format!("{}{flip}{}", &url[..i], &url[i + 1..])
    } else {
        let flip = if url.ends_with('A') { "B" } else { "A" };
        format!("{}{flip}", &url[..url.len() - 1])
    };
    let status = app.http.get(&tampered).send().await.expect("get").status();
    assert_eq!(status.as_u16(), 403);
    // A download URL does not accept uploads.
    let status = app
        .http
        .put(&url)
        .body("x")
        .send()
        .await
        .expect("put")
        .status();
    assert!(status.as_u16() == 403 || status.as_u16() == 405, "{status}");
    if !is_s3(&app) {
        // Path tricks in the token go nowhere.
        for bad in ["..%2F..%2Fvestnik.db", "m%2F..%2F..%2Fserver.key", "x.y"] {
            let r = app
                .http
                .get(format!("{}/v1/media/blob/{bad}", app.base))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 403, "{bad}");
        }
    }

    // Download URLs live 2 s here.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    app.clock.advance_ms(2_100);
    let status = app.http.get(&url).send().await.expect("get").status();
    assert_eq!(status.as_u16(), 403, "expired");
    // A fresh grant works again.
    let d = app.get_auth(&format!("/v1/media/{id}"), &bob.token).await;
    let (status, _) = fetch(&app, &d.body["download"], None).await;
    assert_eq!(status, 200);
}
