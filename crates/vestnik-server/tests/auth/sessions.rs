//! Sessions: the whole journey, refresh rotation and reuse, revocation.
use super::*;

both_backends!(
    the_whole_journey_register_login_2fa_refresh_logout_all_works,
    refresh_token_reuse_revokes_the_whole_family,
    a_refresh_retried_within_30_s_gets_the_same_pair_and_keeps_the_device,
    used_refresh_tokens_are_forgotten_once_they_have_expired,
    revoked_and_expired_tokens_are_refused_everywhere,
    revoking_a_device_ends_its_session_and_removes_its_keys,
);

async fn the_whole_journey_register_login_2fa_refresh_logout_all_works(app: TestApp) {
    let email = "Alice@Example.org";
    let s1 = app.register(email, PW).await;
    let t1 = s1["access_token"].as_str().expect("token").to_owned();
    assert_eq!(s1["token_type"], "Bearer");

    let acct = app.get_auth("/v1/account", &t1).await;
    assert_eq!(
        (acct.status, acct.body["email"].as_str()),
        (200, Some("alice@example.org"))
    );

    // 2FA on: setup, then enable with a current code.
    let setup = app.post_auth("/v1/auth/2fa/setup", &t1, None).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let secret = setup.body["secret"].as_str().expect("secret").to_owned();
    assert!(setup.body["otpauth_uri"]
        .as_str()
        .expect("uri")
        .starts_with("otpauth://totp/Vestnik:alice%40example"));
    let wrong = app
        .post_auth("/v1/auth/2fa/enable", &t1, Some(json!({"code": "000000"})))
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_totp"));
    let en = app
        .post_auth(
            "/v1/auth/2fa/enable",
            &t1,
            Some(json!({"code": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(en.status, 200, "{:?}", en.body);
    assert_eq!(en.body["recovery_codes"].as_array().map(Vec::len), Some(10));

    // Login now needs the second factor.
    let r = app.login(email, PW, json!({})).await;
    assert_eq!((r.status, r.code()), (401, "totp_required"));
    app.clock.advance_ms(30_000);
    let r = app
        .login(email, PW, json!({"totp": totp_now(&app, &secret)}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t2 = r.body["access_token"].as_str().expect("token").to_owned();
    let refresh2 = r.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    let devices = app.get_auth("/v1/devices", &t2).await;
    let list = devices.body["devices"].as_array().expect("devices").clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|d| d["current"] == true).count(), 1);

    // Refresh rotates both tokens; the old access token stops working.
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": refresh2}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t3 = r.body["access_token"].as_str().expect("token").to_owned();
    assert_ne!(t3, t2);
    assert_eq!(app.get_auth("/v1/devices", &t2).await.status, 401);
    assert_eq!(app.get_auth("/v1/devices", &t3).await.status, 200);

    // logout-all ends every session and removes every device's keys.
    let device_ids: Vec<String> = list
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        app.post_auth("/v1/auth/logout-all", &t3, None).await.status,
        204
    );
    for t in [&t1, &t3] {
        let r = app.get_auth("/v1/account", t).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"));
    }
    for id in device_ids {
        assert_eq!(
            app.gw.store.one_time_key_count(&id).await.expect("count"),
            0
        );
    }
    // The account itself still works: log in again.
    app.clock.advance_ms(30_000);
    let r = app
        .login(email, PW, json!({"totp": totp_now(&app, &secret)}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

async fn refresh_token_reuse_revokes_the_whole_family(app: TestApp) {
    let s = app.register("bob@example.org", PW).await;
    let r0 = s["refresh_token"].as_str().expect("refresh").to_owned();
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!(r.status, 200);
    let a1 = r.body["access_token"].as_str().expect("a").to_owned();
    let r1 = r.body["refresh_token"].as_str().expect("r").to_owned();

    // The stolen, already used token comes back, later than a client would
    // retry a lost answer.
    app.clock.advance_ms(31_000);
    let reuse = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!((reuse.status, reuse.code()), (401, "refresh_token_reused"));
    // Every token of that family is dead now: the latest access and refresh too.
    assert_eq!(app.get_auth("/v1/devices", &a1).await.status, 401);
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": r1}))
        .await;
    assert_eq!(r.status, 401);
    // And the owner can see it happened.
    let again = app.login("bob@example.org", PW, json!({})).await;
    let t = again.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let audit = app.get_auth("/v1/account/audit", &t).await;
    let events: Vec<&str> = audit.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"refresh_reuse"), "{events:?}");
}

/// A client whose refresh answer was lost (or that refreshed twice at once)
/// sends the rotated token again: within 30 s, while its successor is still
/// the session's, it gets that same pair instead of losing the device.
async fn a_refresh_retried_within_30_s_gets_the_same_pair_and_keeps_the_device(app: TestApp) {
    let s = app.register("dora@example.org", PW).await;
    let r0 = s["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = |t: String| {
        let app = &app;
        async move {
            app.post("/v1/auth/refresh", json!({"refresh_token": t}))
                .await
        }
    };
    let first = refresh(r0.clone()).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    app.clock.advance_ms(5_000);
    let retry = refresh(r0.clone()).await;
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    for k in ["access_token", "refresh_token", "device_id", "user_id"] {
        assert_eq!(retry.body[k], first.body[k], "{k}");
    }
    assert_eq!(
        retry.body["access_expires_in"].as_i64(),
        first.body["access_expires_in"].as_i64().map(|s| s - 5)
    );
    let a1 = first.body["access_token"].as_str().expect("a").to_owned();
    let r1 = first.body["refresh_token"].as_str().expect("r").to_owned();
    assert_eq!(app.get_auth("/v1/devices", &a1).await.status, 200);

    // Two refreshes of the same token at once both get the one new pair.
    let (x, y) = tokio::join!(refresh(r1.clone()), refresh(r1.clone()));
    assert_eq!(
        (x.status, y.status),
        (200, 200),
        "{:?} {:?}",
        x.body,
        y.body
    );
    assert_eq!(x.body["refresh_token"], y.body["refresh_token"]);
    let a2 = x.body["access_token"].as_str().expect("a").to_owned();
    assert_ne!(a2, a1);

    // Once the successor has itself been rotated, the old token is reuse
    // even within the 30 s: the family ends.
    let r = refresh(r0).await;
    assert_eq!((r.status, r.code()), (401, "refresh_token_reused"));
    assert_eq!(app.get_auth("/v1/devices", &a2).await.status, 401);
    // A token nobody issued is simply unknown.
    let r = refresh("vsr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
}

/// Each refresh leaves the used token's row for reuse detection; once that
/// token has expired there is nothing left to detect, and the row goes.
async fn used_refresh_tokens_are_forgotten_once_they_have_expired(app: TestApp) {
    let s = app.register("erin@example.org", PW).await;
    let r0 = s["refresh_token"].as_str().expect("refresh").to_owned();
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!(r.status, 200);
    let prune = || app.gw.auth.prune_used_refresh_tokens(2);
    assert_eq!(prune().await.expect("prune"), 0, "r0 has not expired yet");
    app.clock
        .advance_ms(app.gw_config.refresh_token_ttl_secs * 1000 + 1000);
    assert_eq!(prune().await.expect("prune"), 1);
    assert_eq!(prune().await.expect("prune"), 0);
    // Long expired, it is simply unknown now: no reuse alarm.
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
}

async fn revoked_and_expired_tokens_are_refused_everywhere(app: TestApp) {
    let s = app.register("carol@example.org", PW).await;
    let t = s["access_token"].as_str().expect("token").to_owned();
    let protected = ["/v1/account", "/v1/devices", "/v1/account/audit"];
    for p in protected {
        assert_eq!(app.get_auth(p, &t).await.status, 200, "{p}");
    }
    // Forged and malformed tokens.
    for bad in [
        "vsa_forged",
        "not-a-token",
        "vsa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = app.get_auth("/v1/account", bad).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"));
    }
    let r = app.send(Method::GET, "/v1/account", None, None).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));

    // Expired: 15 minutes later the access token is refused, the refresh token still works.
    app.clock.advance_ms(16 * 60 * 1000);
    for p in protected {
        assert_eq!(app.get_auth(p, &t).await.status, 401, "{p}");
    }
    let r = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": s["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t2 = r.body["access_token"].as_str().expect("token").to_owned();

    // Revoked by logout: refused everywhere at once.
    assert_eq!(
        app.post_auth("/v1/auth/logout", &t2, None).await.status,
        204
    );
    for p in protected {
        assert_eq!(app.get_auth(p, &t2).await.status, 401, "{p}");
    }
    assert_eq!(
        app.post_auth("/v1/auth/2fa/setup", &t2, None).await.status,
        401
    );
    let r = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": r.body["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 401);
}

async fn revoking_a_device_ends_its_session_and_removes_its_keys(app: TestApp) {
    let s = app.register("quinn@example.org", PW).await;
    let t1 = s["access_token"].as_str().expect("token").to_owned();
    let d1 = s["device_id"].as_str().expect("device").to_owned();
    let l = app.login("quinn@example.org", PW, json!({})).await;
    let t2 = l.body["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.gw.store.one_time_key_count(&d1).await.expect("count"),
        5
    );
    // The (cached) device list sees the new device and, below, the revocation.
    let before = app.get_auth("/v1/devices", &t2).await;
    assert_eq!(before.body["devices"].as_array().map(Vec::len), Some(2));
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/devices/{d1}"),
            Some(&t2),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(app.get_auth("/v1/account", &t1).await.status, 401);
    assert_eq!(app.get_auth("/v1/account", &t2).await.status, 200);
    assert_eq!(
        app.gw.store.one_time_key_count(&d1).await.expect("count"),
        0
    );
    let devices = app.get_auth("/v1/devices", &t2).await;
    assert_eq!(devices.body["devices"].as_array().map(Vec::len), Some(1));
    // Someone else's device id is simply not found.
    let other = app.register("rita@example.org", PW).await;
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/devices/{}", other["device_id"].as_str().expect("id")),
            Some(&t2),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "device_not_found"));
}
