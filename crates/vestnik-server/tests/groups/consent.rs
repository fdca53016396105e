//! Who may add whom: `group_adds` (everyone, contacts, nobody) turns an add
//! into an invitation the user accepts or declines; contacts are whom one
//! opened a chat with (or added), and they alone see presence set to
//! `contacts`.
use super::*;

both_backends!(
    adds_become_invitations_unless_the_settings_allow_them,
    presence_set_to_contacts_is_seen_by_contacts_only,
);

async fn set_group_adds(app: &TestApp, who: &User, value: &str) {
    let r = app
        .send(
            Method::PUT,
            "/v1/account/group-adds",
            Some(who.token()),
            Some(&json!({ "who": value })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn open_direct(app: &TestApp, from: &User, to: &User) {
    let r = app
        .post_auth(
            "/v1/conversations",
            from.token(),
            Some(json!({"kind": "direct", "peer_user_id": to.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn add(app: &TestApp, by: &User, conv: &str, who: &User) -> common::Res {
    app.post_auth(
        &format!("/v1/conversations/{conv}/members"),
        by.token(),
        Some(json!({"user_id": who.id})),
    )
    .await
}

fn is_member(c: &Value, who: &User) -> bool {
    c["member_user_ids"]
        .as_array()
        .expect("members")
        .contains(&json!(who.id))
}

async fn invitations(app: &TestApp, who: &User) -> Vec<Value> {
    let r = app.get_auth("/v1/invitations", who.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["invitations"].as_array().expect("list").clone()
}

async fn adds_become_invitations_unless_the_settings_allow_them(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    set_group_adds(&app, &alice, "contacts").await;
    let r = app.get_auth("/v1/account", alice.token()).await;
    assert_eq!(r.body["group_adds"], "contacts");
    // Opening a chat makes a contact, of the one who opened it.
    open_direct(&app, &alice, &bob).await;
    let r = app.get_auth("/v1/contacts", alice.token()).await;
    assert_eq!(r.body["user_ids"], json!([bob.id]));
    let r = app.get_auth("/v1/contacts", bob.token()).await;
    assert_eq!(r.body["user_ids"], json!([]));

    // A contact adds her at once.
    let r = app
        .post_auth(
            "/v1/conversations",
            bob.token(),
            Some(
                json!({"kind": "group", "title": "Bob's", "member_user_ids": [alice.id, carol.id]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(is_member(&r.body, &alice));
    assert!(r.body.get("invited_user_ids").is_none(), "{:?}", r.body);

    // Anyone else invites her; she accepts and is in.
    let carols = create_group(&app, &carol, &[]).await;
    for d in &alice.devices {
        ack_all(&app, &d.1).await;
    }
    let r = add(&app, &carol, &carols, &alice).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["invited_user_ids"], json!([alice.id]));
    assert!(!is_member(&r.body, &alice));
    let waiting = invitations(&app, &alice).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (
            waiting[0]["conversation_id"].as_str(),
            waiting[0]["invited_by"].as_str(),
            waiting[0]["title"].as_str()
        ),
        (Some(carols.as_str()), Some(carol.id.as_str()), Some("Team"))
    );
    let told = pending(&app, alice.token()).await;
    assert!(
        of_type(&told, "system")
            .iter()
            .any(|e| e["event"] == "invited" && e["conversation_id"] == carols.as_str()),
        "{told:?}"
    );
    let r = app
        .post_auth(
            &format!("/v1/invitations/{carols}/accept"),
            alice.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(is_member(&r.body, &alice));
    assert!(invitations(&app, &alice).await.is_empty());

    // Nobody: even a contact invites; a declined invitation is gone.
    set_group_adds(&app, &alice, "nobody").await;
    let bobs2 = create_group(&app, &bob, &[]).await;
    let r = add(&app, &bob, &bobs2, &alice).await;
    assert_eq!(r.body["invited_user_ids"], json!([alice.id]));
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/invitations/{bobs2}"),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .post_auth(
            &format!("/v1/invitations/{bobs2}/accept"),
            alice.token(),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    // A banned user is told so, not invited.
    let r = app
        .post_auth(
            &format!("/v1/conversations/{bobs2}/bans"),
            bob.token(),
            Some(json!({"user_id": alice.id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = add(&app, &bob, &bobs2, &alice).await;
    assert_eq!((r.status, r.code()), (403, "banned"));

    // Everyone: added at once by anyone.
    set_group_adds(&app, &alice, "everyone").await;
    let daves = create_group(&app, &dave, &[&alice]).await;
    let r = app
        .get_auth(&format!("/v1/conversations/{daves}"), alice.token())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Invitations lapse after 7 days.
    set_group_adds(&app, &alice, "nobody").await;
    let late = create_group(&app, &dave, &[&alice]).await;
    assert_eq!(invitations(&app, &alice).await.len(), 1);
    app.clock.advance_ms(7 * 86_400_000 + 1_000);
    let token = app.login("alice@example.org", PW, json!({})).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let r = app.get_auth("/v1/invitations", &token).await;
    assert_eq!(r.body["invitations"], json!([]));
    let r = app
        .post_auth(&format!("/v1/invitations/{late}/accept"), &token, None)
        .await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let r = app
        .send(
            Method::PUT,
            "/v1/account/group-adds",
            Some(&token),
            Some(&json!({ "who": "friends" })),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
}

async fn presence_set_to_contacts_is_seen_by_contacts_only(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    // All three share a group; alice opened a chat with bob only.
    create_group(&app, &carol, &[&alice, &bob]).await;
    open_direct(&app, &alice, &bob).await;
    let r = app
        .send(
            Method::PUT,
            "/v1/account/presence",
            Some(alice.token()),
            Some(&json!({"visibility": "contacts"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let mut a = ws(&app, alice.token()).await;
    next_where(&mut a, |v| v["type"] == "synced").await;
    for (who, seen) in [(&bob, true), (&carol, false)] {
        let mut w = ws(&app, who.token()).await;
        w.send(Message::Text(
            json!({"type": "subscribe_presence", "user_ids": [alice.id]})
                .to_string()
                .into(),
        ))
        .await
        .expect("subscribe");
        let p = next_where(&mut w, |v| {
            v["type"] == "presence" && v["user_id"] == alice.id.as_str()
        })
        .await;
        assert_eq!(
            p["online"].as_bool(),
            seen.then_some(true),
            "{}: {p}",
            if seen { "a contact" } else { "not a contact" }
        );
    }
    // Pushed too: when alice goes away, bob hears of it, carol does not.
    let mut b = ws(&app, bob.token()).await;
    let mut c = ws(&app, carol.token()).await;
    next_where(&mut b, |v| v["type"] == "synced").await;
    next_where(&mut c, |v| v["type"] == "synced").await;
    drop(a);
    let p = next_where(&mut b, |v| {
        v["type"] == "presence" && v["user_id"] == alice.id.as_str() && v["online"] == false
    })
    .await;
    assert!(p["last_seen"].as_i64().is_some());
    let heard = tokio::time::timeout(
        Duration::from_secs(2),
        next_where(&mut c, |v| {
            v["type"] == "presence" && v["user_id"] == alice.id.as_str() && v["online"].is_boolean()
        }),
    )
    .await;
    assert!(heard.is_err(), "carol is not alice's contact: {heard:?}");
}
