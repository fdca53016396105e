//! Presence within groups and the member limit under concurrent joins.
use super::*;

/// Members of a group above `presence_push_max_group` are not pushed each
/// other's presence (a large group coming online would be members² frames),
/// but can still ask for it; a small group's members are pushed it.
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| c.presence_push_max_group = 3).await else {
        return;
    };
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    let erin = user(&app, "erin@example.org", 0).await;
    // Seen by everyone they share a group with, not only contacts.
    for u in [&alice, &bob, &carol, &dave, &erin] {
        let r = app
            .send(
                Method::PUT,
                "/v1/account/presence",
                Some(u.token()),
                Some(&json!({"visibility": "everyone"})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    create_group(&app, &alice, &[&bob, &dave]).await;
    create_group(&app, &alice, &[&carol, &dave, &erin]).await;
    let mut a = ws(&app, alice.token()).await;
    while next(&mut a).await["type"] != "synced" {}

    // Carol shares only the group of 4 with alice: her connect is not pushed.
    let mut c = ws(&app, carol.token()).await;
    while next(&mut c).await["type"] != "synced" {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = ws(&app, bob.token()).await;
    while next(&mut b).await["type"] != "synced" {}
    let p = next_presence(&mut a).await;
    assert_eq!(
        (p["user_id"].as_str(), p["online"].as_bool()),
        (Some(bob.id.as_str()), Some(true)),
        "the first presence alice hears of is bob's (group of 3), not carol's"
    );

    a.send(Message::Text(
        json!({"type": "subscribe_presence", "user_ids": [carol.id]})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    let p = next_presence(&mut a).await;
    assert_eq!(
        (p["user_id"].as_str(), p["online"].as_bool()),
        (Some(carol.id.as_str()), Some(true)),
        "asked for, carol's presence is known"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones_sqlite() {
    presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones_postgres_redis() {
    presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(Backend::PostgresRedis)
        .await;
}

/// The size limit holds when many join through one invite at once.
async fn the_size_limit_holds_under_concurrent_joins(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| c.group_max_members = 5).await else {
        return;
    };
    let owner = user(&app, "owner@example.org", 0).await;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(user(&app, &format!("u{i}@example.org"), 0).await);
    }
    let too_many: Vec<&User> = others.iter().take(5).collect();
    let ids: Vec<&str> = too_many.iter().map(|u| u.id.as_str()).collect();
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "group", "title": "t", "member_user_ids": ids})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "group_full"));
    let conv = create_group(&app, &owner, &[&others[0], &others[1]]).await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/invites"),
            owner.token(),
            Some(json!({})),
        )
        .await;
    let token = r.body["token"].as_str().expect("token").to_owned();
    let joins = others[2..].iter().map(|u| {
        let (app, token, t) = (&app, token.clone(), u.token().to_owned());
        async move {
            app.post_auth(&format!("/v1/invites/{token}/join"), &t, None)
                .await
        }
    });
    let results = futures::future::join_all(joins).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let full = results
        .iter()
        .filter(|r| (r.status, r.code()) == (409, "group_full"))
        .count();
    assert_eq!(
        (ok, full),
        (2, 4),
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let detail = app
        .get_auth(&format!("/v1/conversations/{conv}"), owner.token())
        .await;
    assert_eq!(detail.body["members"].as_array().expect("m").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_holds_under_concurrent_joins_sqlite() {
    the_size_limit_holds_under_concurrent_joins(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_holds_under_concurrent_joins_postgres_redis() {
    the_size_limit_holds_under_concurrent_joins(Backend::PostgresRedis).await;
}
