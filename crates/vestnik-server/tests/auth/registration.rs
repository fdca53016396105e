//! Registration: e-mail codes, throttling, concurrency, existing addresses,
//! password and device-key checks.
use super::*;

both_backends!(
    five_wrong_codes_burn_the_code,
    an_expired_code_is_refused,
    a_resend_within_a_minute_is_throttled_with_retry_after,
    fifty_concurrent_registrations_of_one_address_make_one_account,
    registering_an_existing_address_sends_a_notice_not_a_code,
    weak_passwords_and_bad_device_keys_are_refused,
);

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
    // Those failures make this address suspicious: asking for more codes
    // now takes a proof of work, as a login would.
    let r = app
        .post("/v1/auth/register", json!({"email": "frank@example.org"}))
        .await;
    assert_eq!((r.status, r.code()), (403, "proof_of_work_required"));
    let challenge: vestnik_proto::PowChallenge =
        serde_json::from_value(r.body["error"]["pow"].clone()).expect("challenge");
    let r = app
        .post(
            "/v1/auth/register",
            json!({"email": "frank@example.org", "pow": vestnik_auth::solve_pow(&challenge)}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
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
