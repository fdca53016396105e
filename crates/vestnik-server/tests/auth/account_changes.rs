//! Changing the password (knowing it), resetting it (by a mailed code, with
//! 2FA still asked), and moving the account to another address.
use super::*;
use crate::login::registered_with_2fa;

both_backends!(
    changing_the_password_needs_the_current_one_and_can_sign_out_the_other_devices,
    a_password_reset_by_mailed_code_asks_2fa_and_ends_every_session,
    a_password_reset_for_an_unknown_address_looks_the_same_and_mails_nothing,
    moving_to_a_new_address_is_confirmed_from_it_and_the_old_one_is_told,
    an_account_nobody_may_find_by_address_looks_like_no_account,
);

const NEW_PW: &str = "another horse, another battery";

fn tok(v: &serde_json::Value) -> String {
    v["access_token"].as_str().expect("token").to_owned()
}

async fn changing_the_password_needs_the_current_one_and_can_sign_out_the_other_devices(
    app: TestApp,
) {
    let laptop = app.register("alice@example.org", PW).await;
    let phone = app.login("alice@example.org", PW, json!({})).await.body;
    let tablet = app.login("alice@example.org", PW, json!({})).await.body;
    let change = |current: &str, new: &str, others: bool| json!({"current_password": current, "new_password": new, "sign_out_other_devices": others});
    let r = app
        .post_auth(
            "/v1/account/password",
            &tok(&laptop),
            Some(change("not my password", NEW_PW, true)),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_password"));
    let r = app
        .post_auth(
            "/v1/account/password",
            &tok(&laptop),
            Some(change(PW, "password", true)),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "weak_password"));
    // Nothing changed so far.
    assert_eq!(
        app.login("alice@example.org", PW, json!({})).await.status,
        201
    );

    let before = app.mails_to("alice@example.org");
    let r = app
        .post_auth(
            "/v1/account/password",
            &tok(&laptop),
            Some(change(PW, NEW_PW, true)),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // This device goes on; every other one is signed out.
    assert_eq!(app.get_auth("/v1/account", &tok(&laptop)).await.status, 200);
    for other in [&phone, &tablet] {
        assert_eq!(app.get_auth("/v1/account", &tok(other)).await.status, 401);
    }
    let old = app.login("alice@example.org", PW, json!({})).await;
    assert_eq!((old.status, old.code()), (401, "invalid_credentials"));
    assert_eq!(
        app.login("alice@example.org", NEW_PW, json!({}))
            .await
            .status,
        201
    );
    assert_eq!(app.mails_to("alice@example.org"), before + 1);
    assert!(app
        .last_mail("alice@example.org")
        .contains("password of your Vestnik account was changed"));

    // Without signing the others out, they stay.
    let other = app.login("alice@example.org", NEW_PW, json!({})).await.body;
    let r = app
        .post_auth(
            "/v1/account/password",
            &tok(&laptop),
            Some(json!({"current_password": NEW_PW, "new_password": PW})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(app.get_auth("/v1/account", &tok(&other)).await.status, 200);
    let audit = app.get_auth("/v1/account/audit", &tok(&laptop)).await;
    let events: Vec<&str> = audit.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(events.contains(&"password_changed"), "{events:?}");
    assert!(events.contains(&"password_check_failed"), "{events:?}");
}

async fn a_password_reset_by_mailed_code_asks_2fa_and_ends_every_session(app: TestApp) {
    let (token, secret, _) = registered_with_2fa(&app, "bob@example.org").await;
    let r = app
        .post(
            "/v1/auth/password-reset",
            json!({"email": "bob@example.org"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let code = app.mailed_code("bob@example.org").expect("a reset code");
    // A second request at once is throttled like registration codes.
    let again = app
        .post(
            "/v1/auth/password-reset",
            json!({"email": "bob@example.org"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (429, "resend_too_soon"));

    let confirm = |code: &str, extra: serde_json::Value| {
        let mut b = json!({"email": "bob@example.org", "code": code, "new_password": NEW_PW});
        if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        b
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app
        .post("/v1/auth/password-reset/confirm", confirm(wrong, json!({})))
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
    // 2FA is still asked: the mailbox alone does not take the account.
    let r = app
        .post("/v1/auth/password-reset/confirm", confirm(&code, json!({})))
        .await;
    assert_eq!((r.status, r.code()), (401, "totp_required"));
    // The session still works until the reset is done.
    assert_eq!(app.get_auth("/v1/account", &token).await.status, 200);
    // A fresh TOTP step (enabling 2FA used the current one).
    app.clock.advance_ms(31_000);
    let r = app
        .post(
            "/v1/auth/password-reset/confirm",
            confirm(&code, json!({"totp": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Every session ended; the new password (with 2FA) signs in.
    assert_eq!(app.get_auth("/v1/account", &token).await.status, 401);
    app.clock.advance_ms(31_000);
    let r = app
        .login(
            "bob@example.org",
            NEW_PW,
            json!({"totp": totp_now(&app, &secret)}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let old = app
        .login(
            "bob@example.org",
            PW,
            json!({"totp": totp_now(&app, &secret)}),
        )
        .await;
    assert_eq!(old.status, 401);
    // The code worked once.
    let r = app
        .post(
            "/v1/auth/password-reset/confirm",
            confirm(&code, json!({"totp": totp_now(&app, &secret)})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
    assert!(app.last_mail("bob@example.org").contains("was reset"));
}

async fn a_password_reset_for_an_unknown_address_looks_the_same_and_mails_nothing(app: TestApp) {
    let carol = app.register("carol@example.org", PW).await;
    let known = app
        .post(
            "/v1/auth/password-reset",
            json!({"email": "carol@example.org"}),
        )
        .await;
    let unknown = app
        .post(
            "/v1/auth/password-reset",
            json!({"email": "nobody@example.org"}),
        )
        .await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert_eq!(app.mails_to("nobody@example.org"), 0);
    let r = app
        .post(
            "/v1/auth/password-reset/confirm",
            json!({"email": "nobody@example.org", "code": "123456", "new_password": NEW_PW}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
    // Five wrong codes burn the real one.
    let code = app.mailed_code("carol@example.org").expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.post(
            "/v1/auth/password-reset/confirm",
            json!({"email": "carol@example.org", "code": wrong, "new_password": NEW_PW}),
        )
        .await;
    }
    let r = app
        .post(
            "/v1/auth/password-reset/confirm",
            json!({"email": "carol@example.org", "code": code, "new_password": NEW_PW}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "code_burned"));
    // The password is still the old one.
    let r = app
        .post_auth(
            "/v1/account/password",
            &tok(&carol),
            Some(json!({"current_password": PW, "new_password": NEW_PW})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn moving_to_a_new_address_is_confirmed_from_it_and_the_old_one_is_told(app: TestApp) {
    let dave = app.register("dave@example.org", PW).await;
    app.register("erin@example.org", PW).await;
    let ask = |password: &str, to: &str| json!({"password": password, "new_email": to});
    let r = app
        .post_auth(
            "/v1/account/email",
            &tok(&dave),
            Some(ask("wrong password here", "dave@new.example.org")),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "wrong_password"));
    assert_eq!(app.mails_to("dave@new.example.org"), 0);

    // An address another account has: the same answer; its owner is told.
    let erin_mails = app.mails_to("erin@example.org");
    let r = app
        .post_auth(
            "/v1/account/email",
            &tok(&dave),
            Some(ask(PW, "erin@example.org")),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(app.mails_to("erin@example.org"), erin_mails + 1);
    assert!(app
        .last_mail("erin@example.org")
        .contains("address change attempt"));
    let r = app
        .post_auth(
            "/v1/account/email/confirm",
            &tok(&dave),
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));

    let r = app
        .post_auth(
            "/v1/account/email",
            &tok(&dave),
            Some(ask(PW, "Dave@New.Example.org")),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let code = app
        .mailed_code("dave@new.example.org")
        .expect("a code at the new address");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app
        .post_auth(
            "/v1/account/email/confirm",
            &tok(&dave),
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_code"));
    let old_mails = app.mails_to("dave@example.org");
    let r = app
        .post_auth(
            "/v1/account/email/confirm",
            &tok(&dave),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["email"], "dave@new.example.org");
    assert_eq!(app.mails_to("dave@example.org"), old_mails + 1);
    assert!(app
        .last_mail("dave@example.org")
        .contains("now uses another e-mail address"));
    // The new address signs in; the old one is free.
    assert_eq!(
        app.login("dave@new.example.org", PW, json!({}))
            .await
            .status,
        201
    );
    assert_eq!(
        app.login("dave@example.org", PW, json!({})).await.status,
        401
    );
    let r = app
        .post_auth(
            "/v1/account/email/confirm",
            &tok(&dave),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "invalid_code"),
        "the code worked once"
    );
}

async fn an_account_nobody_may_find_by_address_looks_like_no_account(app: TestApp) {
    let finder = app.register("finder@example.org", PW).await;
    let hidden = app.register("hidden@example.org", PW).await;
    let lookup = |email: &str| json!({"email": email});
    let r = app
        .post_auth(
            "/v1/users/lookup",
            &tok(&finder),
            Some(lookup("hidden@example.org")),
        )
        .await;
    assert_eq!(r.body["user_id"], hidden["user_id"]);
    let r = app.get_auth("/v1/account", &tok(&hidden)).await;
    assert_eq!(r.body["find_by_email"], "everyone");

    let r = discovery(&app, &hidden, "nobody").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        app.get_auth("/v1/account", &tok(&hidden)).await.body["find_by_email"],
        "nobody"
    );
    let hidden_answer = app
        .post_auth(
            "/v1/users/lookup",
            &tok(&finder),
            Some(lookup("hidden@example.org")),
        )
        .await;
    let absent_answer = app
        .post_auth(
            "/v1/users/lookup",
            &tok(&finder),
            Some(lookup("absent@example.org")),
        )
        .await;
    assert_eq!(hidden_answer.status, 404);
    assert_eq!(
        (hidden_answer.status, &hidden_answer.body),
        (absent_answer.status, &absent_answer.body)
    );
    let r = discovery(&app, &hidden, "friends").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    discovery(&app, &hidden, "everyone").await;
    let r = app
        .post_auth(
            "/v1/users/lookup",
            &tok(&finder),
            Some(lookup("hidden@example.org")),
        )
        .await;
    assert_eq!(r.body["user_id"], hidden["user_id"]);
}

async fn discovery(app: &TestApp, who: &serde_json::Value, find_by_email: &str) -> common::Res {
    app.send(
        Method::PUT,
        "/v1/account/discovery",
        Some(&tok(who)),
        Some(&json!({ "find_by_email": find_by_email })),
    )
    .await
}
