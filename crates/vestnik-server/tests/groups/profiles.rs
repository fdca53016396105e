//! Display names: seen by conversation partners only (in a channel, the
//! staff and subscribers see each other, subscribers not each other), pushed
//! live, bounded and free of spoofing characters.
use super::*;

both_backends!(display_names_reach_conversation_partners_only_and_arrive_live);

async fn set_name(app: &TestApp, token: &str, name: &str) -> common::Res {
    app.send(
        Method::PUT,
        "/v1/account/profile",
        Some(token),
        Some(&json!({ "display_name": name })),
    )
    .await
}

async fn names_seen(app: &TestApp, token: &str, ids: &[&str]) -> Vec<(String, Option<String>)> {
    let r = app
        .get_auth(&format!("/v1/profiles?ids={}", ids.join(",")), token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| {
            (
                p["user_id"].as_str().expect("id").to_owned(),
                p["display_name"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn display_names_reach_conversation_partners_only_and_arrive_live(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    let eve = user(&app, "eve@example.org", 0).await;
    let r = app
        .post_auth(
            "/v1/conversations",
            alice.token(),
            Some(json!({"kind": "direct", "peer_user_id": bob.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let news = channel(&app, &carol, "public").await;
    for s in [&alice, &dave] {
        let r = app
            .post_auth(
                &format!("/v1/conversations/{news}/subscribe"),
                s.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let mut bobs_socket = ws(&app, bob.token()).await;
    assert_eq!(next(&mut bobs_socket).await["type"], "synced");

    let r = set_name(&app, alice.token(), "  Alice Liddell ").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["display_name"], "Alice Liddell");
    let f = next_where(&mut bobs_socket, |v| v["type"] == "profile_changed").await;
    assert_eq!(
        (f["user_id"].as_str(), f["display_name"].as_str()),
        (Some(alice.id.as_str()), Some("Alice Liddell"))
    );
    for (who, name) in [(&carol, "Carol"), (&dave, "Dave"), (&eve, "Eve")] {
        assert_eq!(set_name(&app, who.token(), name).await.status, 200);
    }

    let all = [
        alice.id.as_str(),
        carol.id.as_str(),
        dave.id.as_str(),
        eve.id.as_str(),
    ];
    let sorted = |mut v: Vec<(String, Option<String>)>| {
        v.sort();
        v
    };
    // Bob shares a chat with alice only.
    assert_eq!(
        names_seen(&app, bob.token(), &all).await,
        vec![(alice.id.clone(), Some("Alice Liddell".to_owned()))]
    );
    // A subscriber sees the channel's owner, not the other subscriber.
    assert_eq!(
        names_seen(&app, dave.token(), &all).await,
        sorted(vec![
            (carol.id.clone(), Some("Carol".to_owned())),
            (dave.id.clone(), Some("Dave".to_owned())),
        ])
    );
    // The owner sees its subscribers.
    assert_eq!(names_seen(&app, carol.token(), &all).await.len(), 3);
    // A stranger sees only themself.
    assert_eq!(
        names_seen(&app, eve.token(), &all).await,
        vec![(eve.id.clone(), Some("Eve".to_owned()))]
    );

    // Cleared: no name, and the push says so.
    assert_eq!(set_name(&app, alice.token(), "").await.status, 200);
    let f = next_where(&mut bobs_socket, |v| v["type"] == "profile_changed").await;
    assert!(f.get("display_name").is_none(), "{f}");
    assert_eq!(
        names_seen(&app, bob.token(), &[alice.id.as_str()]).await,
        vec![(alice.id.clone(), None)]
    );

    // Bad names and bad queries.
    for bad in [
        "x".repeat(65),
        "evil\u{202E}gpj.exe".to_owned(),
        "a\tb".to_owned(),
    ] {
        let r = set_name(&app, alice.token(), &bad).await;
        assert_eq!((r.status, r.code()), (422, "invalid_input"), "{bad:?}");
    }
    let r = app.get_auth("/v1/profiles?ids=nope", bob.token()).await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
    let many = vec![alice.id.as_str(); 101].join(",");
    let r = app
        .get_auth(&format!("/v1/profiles?ids={many}"), bob.token())
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
}
