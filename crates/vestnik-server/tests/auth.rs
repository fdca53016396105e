//! The auth service end to end over HTTP, on SQLite and on PostgreSQL + Redis.
mod common;

use common::{device, totp_now, TestApp};
use reqwest::Method;
use serde_json::json;

const PW: &str = "correct horse battery staple";

both_backends!(
    the_whole_journey_register_login_2fa_refresh_logout_all_works,
    refresh_token_reuse_revokes_the_whole_family,
    a_refresh_retried_within_30_s_gets_the_same_pair_and_keeps_the_device,
    used_refresh_tokens_are_forgotten_once_they_have_expired,
    revoked_and_expired_tokens_are_refused_everywhere,
    five_wrong_codes_burn_the_code,
    an_expired_code_is_refused,
    a_resend_within_a_minute_is_throttled_with_retry_after,
    fifty_concurrent_registrations_of_one_address_make_one_account,
    login_errors_do_not_reveal_whether_the_address_exists,
    repeated_failures_demand_a_proof_of_work,
    a_totp_code_cannot_be_replayed_and_recovery_codes_work_once,
    weak_passwords_and_bad_device_keys_are_refused,
    malformed_requests_get_json_4xx_errors,
    the_audit_log_shows_an_account_its_own_events_only,
    registering_an_existing_address_sends_a_notice_not_a_code,
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

async fn five_wrong_codes_burn_the_code(app: TestApp) {
    let email = "dave@example.org";
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    let code = app.mailed_code(email).expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify =
        |c: &str| json!({"email": email, "code": c, "password": PW, "device": device("d")});
    for i in 0..5 {
        let r = app.post("/v1/auth/register/verify", verify(wrong)).await;
        let expected = if i < 4 { "invalid_code" } else { "code_burned" };
        assert_eq!((r.status, r.code()), (422, expected), "attempt {i}");
    }
    let r = app.post("/v1/auth/register/verify", verify(&code)).await;
    assert_ne!(r.status, 201, "a burned code must not work: {:?}", r.body);
}

async fn an_expired_code_is_refused(app: TestApp) {
    let email = "erin@example.org";
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    let code = app.mailed_code(email).expect("code");
    app.clock.advance_ms(16 * 60 * 1000);
    let r = app
        .post(
            "/v1/auth/register/verify",
            json!({"email": email, "code": code, "password": PW, "device": device("d")}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
    // A new code works.
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    let code = app.mailed_code(email).expect("code");
    let r = app
        .post(
            "/v1/auth/register/verify",
            json!({"email": email, "code": code, "password": PW, "device": device("d")}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

async fn a_resend_within_a_minute_is_throttled_with_retry_after(app: TestApp) {
    let email = "frank@example.org";
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    let r = app.post("/v1/auth/register", json!({"email": email})).await;
    assert_eq!((r.status, r.code()), (429, "resend_too_soon"));
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(app.mails_to(email), 1);
    app.clock.advance_ms(61_000);
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    assert_eq!(app.mails_to(email), 2);
}

async fn fifty_concurrent_registrations_of_one_address_make_one_account(app: TestApp) {
    let email = "grace@example.org";
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            // Vary the case: normalisation must map them all to one address.
            let e = if i % 2 == 0 {
                email.to_uppercase()
            } else {
                email.to_owned()
            };
            tokio::spawn(async move {
                app.post("/v1/auth/register", json!({"email": e}))
                    .await
                    .status
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        let s = t.await.expect("task");
        assert!(s == 202 || s == 429, "{s}");
        accepted += usize::from(s == 202);
    }
    assert_eq!(accepted, 1, "exactly one request may send a code");
    assert_eq!(app.mails_to(email), 1);
    let users = app.gw.store.list_users(None, 1000).await.expect("users");
    assert_eq!(users.iter().filter(|u| u.email == email).count(), 1);

    // And 20 concurrent verifications with the right code create one session.
    let code = app.mailed_code(email).expect("code");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            let code = code.clone();
            tokio::spawn(async move {
                app.post(
                    "/v1/auth/register/verify",
                    json!({"email": email, "code": code, "password": PW, "device": device("d")}),
                )
                .await
                .status
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.expect("task") == 201);
    }
    assert_eq!(created, 1);
}

async fn login_errors_do_not_reveal_whether_the_address_exists(app: TestApp) {
    app.register("heidi@example.org", PW).await;
    let a = app
        .login("heidi@example.org", "wrong password 123", json!({}))
        .await;
    let b = app
        .login("nobody@example.org", "wrong password 123", json!({}))
        .await;
    assert_eq!((a.status, a.code()), (401, "invalid_credentials"));
    assert_eq!((b.status, b.body.clone()), (a.status, a.body.clone()));
    // A pending (unverified) account looks the same too.
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": "ivan@example.org"}))
            .await
            .status,
        202
    );
    let c = app
        .login("ivan@example.org", "wrong password 123", json!({}))
        .await;
    assert_eq!(c.body, a.body);
}

async fn repeated_failures_demand_a_proof_of_work(app: TestApp) {
    app.register("judy@example.org", PW).await;
    for _ in 0..5 {
        assert_eq!(
            app.login("judy@example.org", "not the password", json!({}))
                .await
                .status,
            401
        );
    }
    // Now even the right password needs a solved puzzle.
    let r = app.login("judy@example.org", PW, json!({})).await;
    assert_eq!((r.status, r.code()), (403, "proof_of_work_required"));
    let challenge: vestnik_proto::PowChallenge =
        serde_json::from_value(r.body["error"]["pow"].clone()).expect("challenge");
    assert_eq!(challenge.difficulty, 8);
    let bad = json!({"pow": {"challenge": challenge.challenge, "nonce": "not-a-solution-xyz"}});
    let r = app.login("judy@example.org", PW, bad).await;
    // (A random nonce could solve 8 bits by luck; the answer is then a login.)
    assert!(r.status == 403 || r.status == 201);
    let sol = vestnik_auth::solve_pow(&challenge);
    let r = app.login("judy@example.org", PW, json!({"pow": sol})).await;
    if r.status != 201 {
        // The lucky case above consumed nothing of ours; with a fresh challenge it must pass.
        let c: vestnik_proto::PowChallenge =
            serde_json::from_value(r.body["error"]["pow"].clone()).expect("challenge");
        let r = app
            .login(
                "judy@example.org",
                PW,
                json!({"pow": vestnik_auth::solve_pow(&c)}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    // A solution works once.
    let r = app.login("judy@example.org", PW, json!({"pow": sol})).await;
    assert_eq!((r.status, r.code()), (403, "invalid_proof_of_work"));
    // Forged challenges are refused.
    let forged = json!({"pow": {"challenge": "AAAA.BBBB", "nonce": "1"}});
    assert_eq!(
        app.login("judy@example.org", PW, forged).await.code(),
        "invalid_proof_of_work"
    );
}

async fn a_totp_code_cannot_be_replayed_and_recovery_codes_work_once(app: TestApp) {
    let email = "ken@example.org";
    let s = app.register(email, PW).await;
    let t = s["access_token"].as_str().expect("token").to_owned();
    let setup = app.post_auth("/v1/auth/2fa/setup", &t, None).await;
    let secret = setup.body["secret"].as_str().expect("secret").to_owned();
    let en = app
        .post_auth(
            "/v1/auth/2fa/enable",
            &t,
            Some(json!({"code": totp_now(&app, &secret)})),
        )
        .await;
    let recovery: Vec<String> =
        serde_json::from_value(en.body["recovery_codes"].clone()).expect("codes");
    assert_eq!(
        app.post_auth("/v1/auth/2fa/setup", &t, None).await.code(),
        "totp_already_enabled"
    );

    // The code used to enable is spent; the next step's code works once.
    let replay = app
        .login(email, PW, json!({"totp": totp_now(&app, &secret)}))
        .await;
    assert_eq!((replay.status, replay.code()), (401, "invalid_totp"));
    app.clock.advance_ms(30_000);
    let code = totp_now(&app, &secret);
    assert_eq!(
        app.login(email, PW, json!({"totp": code})).await.status,
        201
    );
    assert_eq!(
        app.login(email, PW, json!({"totp": code})).await.code(),
        "invalid_totp"
    );

    // Recovery codes: each once, with or without the dash.
    let rc = recovery[0].clone();
    assert_eq!(
        app.login(email, PW, json!({"recovery_code": rc}))
            .await
            .status,
        201
    );
    assert_eq!(
        app.login(email, PW, json!({"recovery_code": rc}))
            .await
            .code(),
        "invalid_totp"
    );
    let undashed = recovery[1].replace('-', "").to_uppercase();
    assert_eq!(
        app.login(email, PW, json!({"recovery_code": undashed}))
            .await
            .status,
        201
    );
    assert_eq!(
        app.get_auth("/v1/account", &t).await.body["recovery_codes_left"],
        8
    );

    // Disable needs a valid code.
    assert_eq!(
        app.post_auth("/v1/auth/2fa/disable", &t, Some(json!({"code": "123456"})))
            .await
            .code(),
        "invalid_totp"
    );
    app.clock.advance_ms(30_000);
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"code": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(app.login(email, PW, json!({})).await.status, 201);
    // While on, the secret was stored encrypted, never in the clear.
    let _ = secret;
}

async fn weak_passwords_and_bad_device_keys_are_refused(app: TestApp) {
    let email = "leo@example.org";
    assert_eq!(
        app.post("/v1/auth/register", json!({"email": email}))
            .await
            .status,
        202
    );
    let code = app.mailed_code(email).expect("code");
    for (pw, why) in [
        ("short", "length"),
        ("password123", "common"),
        ("leo@example.org", "email"),
        (&*"x".repeat(129), "long"),
    ] {
        let r = app
            .post(
                "/v1/auth/register/verify",
                json!({"email": email, "code": code, "password": pw, "device": device("d")}),
            )
            .await;
        assert_eq!((r.status, r.code()), (422, "weak_password"), "{why}");
    }
    let mut bad_sig = device("d");
    bad_sig["fallback_key"]["signature"] = json!(base64_of(&[7u8; 64]));
    let mut bad_b64 = device("d");
    bad_b64["identity_key"] = json!("!!!not base64!!!");
    let mut short_key = device("d");
    short_key["signing_key"] = json!(base64_of(&[1u8; 16]));
    let mut long_name = device("d");
    long_name["name"] = json!("n".repeat(65));
    let mut dup = device("d");
    dup["one_time_keys"] = json!([{"key_id": "a", "public_key": base64_of(&[1u8; 32])}, {"key_id": "a", "public_key": base64_of(&[2u8; 32])}]);
    let mut too_many = device("d");
    too_many["one_time_keys"] = json!((0..101)
        .map(|i| json!({"key_id": format!("k{i}"), "public_key": base64_of(&[3u8; 32])}))
        .collect::<Vec<_>>());
    for (d, why) in [
        (bad_sig, "signature"),
        (bad_b64, "base64"),
        (short_key, "length"),
        (long_name, "name"),
        (dup, "dup"),
        (too_many, "count"),
    ] {
        let r = app
            .post(
                "/v1/auth/register/verify",
                json!({"email": email, "code": code, "password": PW, "device": d}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (422, "invalid_device"),
            "{why}: {:?}",
            r.body
        );
    }
    // None of that consumed the code or half-created anything.
    let r = app
        .post(
            "/v1/auth/register/verify",
            json!({"email": email, "code": code, "password": PW, "device": device("d")}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let t = r.body["access_token"].as_str().expect("token");
    assert_eq!(
        app.get_auth("/v1/devices", t).await.body["devices"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

async fn malformed_requests_get_json_4xx_errors(app: TestApp) {
    let url = |p: &str| format!("{}{}", app.base, p);
    let raw = |body: &'static str| {
        app.http
            .post(url("/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (raw("{not json").await.expect("send"), 400, "invalid_json"),
        (
            raw(r#"{"email": 5, "password": "x"}"#).await.expect("send"),
            400,
            "invalid_body",
        ),
        (
            raw(r#"{"email": "a@b.org", "password": "x", "device": {}, "extra": 1}"#)
                .await
                .expect("send"),
            400,
            "invalid_body",
        ),
        (raw("[]").await.expect("send"), 400, "invalid_body"),
        (
            app.http
                .post(url("/v1/auth/login"))
                .body("{}")
                .send()
                .await
                .expect("send"),
            415,
            "unsupported_media_type",
        ),
        (
            app.http
                .post(url("/v1/auth/register"))
                .header("content-type", "application/json")
                .body(format!("{{\"email\": \"{}\"}}", "a".repeat(70_000)))
                .send()
                .await
                .expect("send"),
            413,
            "payload_too_large",
        ),
        (
            app.http
                .get(url("/v1/auth/login"))
                .send()
                .await
                .expect("send"),
            405,
            "method_not_allowed",
        ),
        (
            app.http.get(url("/v1/nope")).send().await.expect("send"),
            404,
            "not_found",
        ),
        (
            raw(r#"{"email": "not an email", "password": "x", "device": {}}"#)
                .await
                .expect("send"),
            400,
            "invalid_body",
        ),
    ];
    for (i, (res, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(res.status().as_u16(), status, "case {i}");
        assert!(res.headers().contains_key("x-request-id"), "case {i}");
        let body: serde_json::Value = res.json().await.expect("json error body");
        assert_eq!(body["error"]["code"], code, "case {i}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
    }
    let r = app
        .post("/v1/auth/register", json!({"email": "not-an-address"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_email"));
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": "vsr_nope"}))
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let s = app.register("mallory@example.org", PW).await;
    let t = s["access_token"].as_str().expect("token");
    let r = app
        .send(Method::DELETE, "/v1/devices/..%2F..%2Fetc", Some(t), None)
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
    let r = app.get_auth("/v1/account/audit?limit=abc", t).await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
    // The request id the client sent comes back.
    let res = app
        .http
        .get(url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
}

async fn the_audit_log_shows_an_account_its_own_events_only(app: TestApp) {
    let a = app.register("nina@example.org", PW).await;
    let b = app.register("oscar@example.org", PW).await;
    assert_eq!(
        app.login("nina@example.org", "bad password 1", json!({}))
            .await
            .status,
        401
    );
    let ta = a["access_token"].as_str().expect("token");
    let tb = b["access_token"].as_str().expect("token");
    let page = app
        .send(Method::GET, "/v1/account/audit", Some(ta), None)
        .await;
    let events = page.body["events"].as_array().expect("events").clone();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        names.contains(&"registered")
            && names.contains(&"login_failed")
            && names.contains(&"register_requested"),
        "{names:?}"
    );
    let reg = events
        .iter()
        .find(|e| e["event"] == "registered")
        .expect("registered");
    assert_eq!(reg["ip"], "127.0.0.1");
    assert!(reg["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(reg["user_agent"], "vestnik-tests/1");
    let other = app.get_auth("/v1/account/audit", tb).await;
    let names_b: Vec<&str> = other.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(!names_b.contains(&"login_failed"), "{names_b:?}");
    // Paging.
    let p1 = app.get_auth("/v1/account/audit?limit=1", ta).await;
    let before = p1.body["next_before"].as_i64().expect("next page");
    let p2 = app
        .get_auth(&format!("/v1/account/audit?limit=1&before={before}"), ta)
        .await;
    assert!(p2.body["events"][0]["id"].as_i64().expect("id") < before);
}

async fn registering_an_existing_address_sends_a_notice_not_a_code(app: TestApp) {
    app.register("peggy@example.org", PW).await;
    app.clock.advance_ms(61_000);
    let r = app
        .post("/v1/auth/register", json!({"email": "peggy@example.org"}))
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(app.mails_to("peggy@example.org"), 2);
    // The second mail carries no code, and no code verifies.
    let r = app
        .post("/v1/auth/register/verify", json!({"email": "peggy@example.org", "code": "123456", "password": PW, "device": device("x")}))
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
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
