//! A block holds everywhere, not only in direct chats: the blocked user
//! cannot add the blocker to groups or channels, the blocker gets none of
//! their typing, read markers or presence, and neither learns the other's
//! presence; the refusal of an add does not tell a block from a setting.
use super::*;

both_backends!(a_block_holds_in_groups_typing_read_markers_and_presence);

async fn block(app: &TestApp, by: &User, whom: &User) {
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", whom.id),
            Some(by.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn group(app: &TestApp, owner: &User, members: &[&User]) -> common::Res {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    app.post_auth(
        "/v1/conversations",
        owner.token(),
        Some(json!({"kind": "group", "title": "team", "member_user_ids": ids})),
    )
    .await
}

async fn a_block_holds_in_groups_typing_read_markers_and_presence(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    // Carol's group has all three; Alice and Bob share a direct chat too.
    let team = group(&app, &carol, &[&alice, &bob]).await;
    assert_eq!(team.status, 201, "{:?}", team.body);
    let team = team.body["id"].as_str().expect("id").to_owned();
    direct(&app, alice.token(), &bob.id).await;
    // Carol is a contact of both: their presence (visible to contacts) is
    // hers to see, so only the block can hide it.
    for u in [&alice, &bob] {
        let r = app
            .send(
                Method::PUT,
                &format!("/v1/contacts/{}", carol.id),
                Some(u.token()),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    block(&app, &alice, &bob).await;

    // Bob cannot put Alice in a group or channel, at creation or later; the
    // answer is the one a privacy setting gives ("invited"), not "blocked",
    // and Alice is sent nothing.
    let r = group(&app, &bob, &[&alice, &carol]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["invited_user_ids"], json!([alice.id]));
    assert!(!r.body["member_user_ids"]
        .as_array()
        .expect("members")
        .contains(&json!(alice.id)));
    let bobs = r.body["id"].as_str().expect("id").to_owned();
    let r = app
        .post_auth(
            &format!("/v1/conversations/{bobs}/members"),
            bob.token(),
            Some(json!({"user_id": alice.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["invited_user_ids"], json!([alice.id]));
    let r = app.get_auth("/v1/invitations", alice.token()).await;
    assert_eq!(r.body["invitations"], json!([]), "a block sends nothing");
    // Alice, who blocked, can still add Bob (a block is one-sided).
    let r = group(&app, &alice, &[&bob]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let mut a = ws_bearer(&app, alice.token()).await;
    let mut b = ws_bearer(&app, bob.token()).await;
    let mut c = ws_bearer(&app, carol.token()).await;
    // The backlog (group announcements) comes first.
    for ws in [&mut a, &mut b, &mut c] {
        next_of(ws, "synced").await;
    }
    // Bob types in the shared group: Carol sees it, Alice does not.
    let typing = json!({"type": "typing", "conversation_id": team, "typing": true});
    b.send(Message::Text(typing.to_string().into()))
        .await
        .expect("typing");
    assert_eq!(next_of(&mut c, "typing").await["user_id"], bob.id.as_str());
    nothing_but_pong(&mut a, &["typing"]).await;
    // Alice's typing still reaches Bob: she blocked him, not the reverse.
    a.send(Message::Text(
        json!({"type": "typing", "conversation_id": team, "typing": true})
            .to_string()
            .into(),
    ))
    .await
    .expect("typing");
    assert_eq!(
        next_of(&mut b, "typing").await["user_id"],
        alice.id.as_str()
    );

    // Bob's read marker: Carol hears it, Alice does not.
    let r = app
        .post_auth(
            "/v1/messages",
            carol.token(),
            Some(json!({"client_msg_id": "g1", "conversation_id": team, "kind": "group", "ciphertext": "R1JPVVA"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    b.send(Message::Text(
        json!({"type": "read", "conversation_id": team, "seq": r.body["seq"]})
            .to_string()
            .into(),
    ))
    .await
    .expect("read");
    assert_eq!(next_of(&mut c, "read").await["user_id"], bob.id.as_str());
    nothing_but_pong(&mut a, &["read"]).await;

    // Presence is hidden both ways; Carol still sees both.
    let ask = |of: &User| json!({"type": "subscribe_presence", "user_ids": [of.id]});
    b.send(Message::Text(ask(&alice).to_string().into()))
        .await
        .expect("subscribe");
    assert_eq!(presence_of(&mut b, &alice).await["online"], Value::Null);
    a.send(Message::Text(ask(&bob).to_string().into()))
        .await
        .expect("subscribe");
    assert_eq!(presence_of(&mut a, &bob).await["online"], Value::Null);
    c.send(Message::Text(ask(&alice).to_string().into()))
        .await
        .expect("subscribe");
    assert_eq!(presence_of(&mut c, &alice).await["online"], true);
    // Bob going away is pushed to Carol, not to Alice.
    drop(b);
    while presence_of(&mut c, &bob).await["online"] != json!(false) {}
    nothing_but_pong(&mut a, &["presence"]).await;
}

/// The next presence frame about `whom` (pushes about others interleave:
/// every connect in this test tells its partners).
async fn presence_of(ws: &mut Ws, whom: &User) -> Value {
    loop {
        let p = next_of(ws, "presence").await;
        if p["user_id"] == whom.id.as_str() {
            return p;
        }
    }
}
