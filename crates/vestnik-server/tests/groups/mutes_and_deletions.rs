//! Muting a member for a while, and deleting a message for everyone: the
//! sender within the window, a manager at any time.
use super::*;

both_backends!(
    a_muted_member_cannot_write_until_the_mute_ends_or_is_lifted,
    messages_are_deleted_for_everyone_by_their_sender_in_time_or_by_a_manager,
);

async fn mute(app: &TestApp, by: &User, conv: &str, who: &User, secs: i64) -> common::Res {
    app.send(
        Method::PUT,
        &format!("/v1/conversations/{conv}/members/{}/mute", who.id),
        Some(by.token()),
        Some(&json!({ "duration_secs": secs })),
    )
    .await
}

async fn delete(app: &TestApp, by: &str, conv: &str, message_id: &str) -> common::Res {
    app.send(
        Method::DELETE,
        &format!("/v1/conversations/{conv}/messages/{message_id}"),
        Some(by),
        None,
    )
    .await
}

async fn a_muted_member_cannot_write_until_the_mute_ends_or_is_lifted(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let admin = user(&app, "admin@example.org", 0).await;
    let loud = user(&app, "loud@example.org", 0).await;
    let quiet = user(&app, "quiet@example.org", 0).await;
    let conv = create_group(&app, &owner, &[&admin, &loud, &quiet]).await;
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{conv}/members/{}/role", admin.id),
            Some(owner.token()),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for d in &loud.devices {
        ack_all(&app, &d.1).await;
    }

    // Who may mute whom, and for how long.
    assert_eq!(
        mute(&app, &admin, &conv, &owner, 600).await.code(),
        "forbidden"
    );
    assert_eq!(
        mute(&app, &quiet, &conv, &loud, 600).await.code(),
        "forbidden"
    );
    let r = mute(&app, &admin, &conv, &loud, 10).await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));
    let r = mute(&app, &admin, &conv, &loud, 600).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let told = pending(&app, loud.token()).await;
    let muted = of_type(&told, "system")
        .into_iter()
        .find(|e| e["event"] == "member_muted")
        .cloned()
        .expect("told");
    assert!(muted["until"].as_i64().is_some(), "{muted}");

    let r = group_send(&app, loud.token(), &conv, "m1").await;
    assert_eq!((r.status, r.code()), (403, "muted"));
    assert_eq!(
        group_send(&app, quiet.token(), &conv, "q1").await.status,
        200
    );
    // It ends on its own.
    app.clock.advance_ms(601_000);
    assert_eq!(
        group_send(&app, loud.token(), &conv, "m2").await.status,
        200
    );
    // Or is lifted.
    assert_eq!(mute(&app, &owner, &conv, &loud, 3600).await.status, 204);
    assert_eq!(
        group_send(&app, loud.token(), &conv, "m3").await.code(),
        "muted"
    );
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}/mute", loud.id),
            Some(admin.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        group_send(&app, loud.token(), &conv, "m4").await.status,
        200
    );

    // A muted publisher cannot post to a channel.
    let news = channel(&app, &owner, "public").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/subscribe"),
            loud.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{news}/members/{}/role", loud.id),
            Some(owner.token()),
            Some(&json!({"role": "publisher"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(post(&app, loud.token(), &news, "p1").await.status, 200);
    assert_eq!(mute(&app, &owner, &news, &loud, 600).await.status, 204);
    assert_eq!(post(&app, loud.token(), &news, "p2").await.code(), "muted");
}

async fn messages_are_deleted_for_everyone_by_their_sender_in_time_or_by_a_manager(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let conv = create_group(&app, &owner, &[&alice, &bob]).await;
    for d in [&owner, &alice, &bob] {
        ack_all(&app, d.token()).await;
    }
    let oops = group_send(&app, alice.token(), &conv, "oops").await;
    assert_eq!(oops.status, 200, "{:?}", oops.body);
    let oops = oops.body["message_id"].as_str().expect("id").to_owned();
    let mine = group_send(&app, bob.token(), &conv, "bobs").await;
    let bobs = mine.body["message_id"].as_str().expect("id").to_owned();

    // Someone else's message, as a plain member: no.
    assert_eq!(
        delete(&app, bob.token(), &conv, &oops).await.code(),
        "forbidden"
    );
    // The sender, in time: gone from the queue, and everyone is told.
    let r = delete(&app, alice.token(), &conv, &oops).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let items = pending(&app, bob.token()).await;
    assert!(
        of_type(&items, "message")
            .iter()
            .all(|m| m["message_id"] != oops.as_str()),
        "the envelope is gone: {items:?}"
    );
    let ev = of_type(&items, "system")
        .into_iter()
        .find(|e| e["event"] == "message_deleted")
        .cloned()
        .expect("told");
    assert_eq!(
        (ev["message_id"].as_str(), ev["target_user_id"].as_str()),
        (Some(oops.as_str()), Some(alice.id.as_str()))
    );
    // Past the window (two days), only a manager may.
    app.clock.advance_ms(2 * 86_400_000 + 1_000);
    let bob_now = fresh(&app, "bob@example.org").await;
    let r = delete(&app, &bob_now, &conv, &bobs).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let owner_now = fresh(&app, "owner@example.org").await;
    assert_eq!(delete(&app, &owner_now, &conv, &bobs).await.status, 204);
    // Unknown, or from another conversation.
    let r = delete(&app, &owner_now, &conv, "0123456789abcdef0123456789abcdef").await;
    assert_eq!((r.status, r.code()), (404, "message_not_found"));
    let owner = User {
        id: owner.id.clone(),
        devices: vec![(String::new(), owner_now.clone())],
    };
    let other = create_group(&app, &owner, &[]).await;
    let r = delete(&app, &owner_now, &other, &bobs).await;
    assert_eq!((r.status, r.code()), (404, "message_not_found"));

    // A channel post deleted by its owner leaves the channel's log, and a
    // deletion record takes its place at the end of it: subscribers learn
    // of it by reading on (or live), not through a queued event each.
    let news = channel(&app, &owner, "public").await;
    let reader = fresh(&app, "alice@example.org").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/subscribe"),
            &reader,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    ack_all(&app, &reader).await;
    let p = post(&app, &owner_now, &news, "p1").await;
    let post_id = p.body["message_id"].as_str().expect("id").to_owned();
    assert_eq!(post(&app, &owner_now, &news, "p2").await.status, 200);
    let mut readers_socket = ws(&app, &reader).await;
    assert_eq!(next(&mut readers_socket).await["type"], "synced");
    assert_eq!(delete(&app, &owner_now, &news, &post_id).await.status, 204);
    let live = next_where(&mut readers_socket, |v| v["type"] == "channel_post").await;
    assert_eq!(
        (
            live["msg_type"].as_i64(),
            live["ciphertext"].as_str(),
            live["seq"].as_i64()
        ),
        (Some(4), Some(post_id.as_str()), Some(3)),
        "{live:?}"
    );
    let log = app
        .get_auth(&format!("/v1/conversations/{news}/posts"), &reader)
        .await;
    let entries: Vec<(i64, i64)> = log.body["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .map(|p| {
            (
                p["seq"].as_i64().expect("seq"),
                p["msg_type"].as_i64().expect("type"),
            )
        })
        .collect();
    assert_eq!(entries, [(2, 3), (3, 4)]);
    assert!(
        of_type(&pending(&app, &reader).await, "system").is_empty(),
        "nothing queued per subscriber"
    );
    // The record is not a post to delete; deleting again changes nothing.
    let record = log.body["posts"][1]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = delete(&app, &owner_now, &news, &record).await;
    assert_eq!((r.status, r.code()), (404, "message_not_found"));
    assert_eq!(delete(&app, &owner_now, &news, &post_id).await.status, 204);
    let log = app
        .get_auth(&format!("/v1/conversations/{news}/posts"), &reader)
        .await;
    assert_eq!(log.body["posts"].as_array().map(Vec::len), Some(2));
}

async fn fresh(app: &TestApp, email: &str) -> String {
    app.login(email, PW, json!({})).await.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}
