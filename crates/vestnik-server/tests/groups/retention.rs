//! A channel's posts are its history: `message_retention_days` expires
//! undelivered envelopes and group bodies, never posts; posts follow
//! `channel_retention_days` (kept until deleted by default).
use super::*;

const DAY_MS: i64 = 86_400_000;

both_backends!(channel_posts_outlive_the_message_retention_but_group_messages_do_not);

async fn fresh_token(app: &TestApp, email: &str) -> String {
    let r = app.login(email, PW, json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["access_token"].as_str().expect("token").to_owned()
}

async fn post_seqs(app: &TestApp, token: &str, conv: &str) -> Vec<i64> {
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), token)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["posts"]
        .as_array()
        .expect("posts")
        .iter()
        .filter_map(|p| p["seq"].as_i64())
        .collect()
}

async fn channel_posts_outlive_the_message_retention_but_group_messages_do_not(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let member = user(&app, "member@example.org", 0).await;
    let news = channel(&app, &owner, "public").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{news}/subscribe"),
            member.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let team = create_group(&app, &owner, &[&member]).await;
    for i in 1..=3 {
        assert_eq!(
            post(&app, owner.token(), &news, &format!("p{i}"))
                .await
                .status,
            200
        );
    }
    let r = group_send(&app, owner.token(), &team, "g1").await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Past the 30 days of `message_retention_days`.
    app.clock.advance_ms(31 * DAY_MS);
    assert!(app.gw.realtime.expire_now().await.expect("reap") >= 1);
    let token = fresh_token(&app, "member@example.org").await;
    assert_eq!(post_seqs(&app, &token, &news).await, [1, 2, 3]);
    // The group message went with its envelopes.
    let log = app.gw.store.log(&team, 0, 10).await.expect("log");
    assert!(log.is_empty(), "group bodies expire: {log:?}");
    assert!(app.gw.store.log(&news, 0, 10).await.expect("log").len() == 3);

    // Years later, still there.
    app.clock.advance_ms(3 * 365 * DAY_MS);
    app.gw.realtime.expire_now().await.expect("reap");
    let token = fresh_token(&app, "member@example.org").await;
    assert_eq!(post_seqs(&app, &token, &news).await, [1, 2, 3]);
}

async fn posts_older_than_channel_retention_days_are_deleted(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| c.channel_retention_days = 60).await else {
        return;
    };
    let owner = user(&app, "owner@example.org", 0).await;
    let news = channel(&app, &owner, "public").await;
    assert_eq!(post(&app, owner.token(), &news, "old").await.status, 200);
    app.clock.advance_ms(45 * DAY_MS);
    let token = fresh_token(&app, "owner@example.org").await;
    assert_eq!(post(&app, &token, &news, "newer").await.status, 200);
    app.gw.realtime.expire_now().await.expect("reap");
    assert_eq!(post_seqs(&app, &token, &news).await, [1, 2]);
    // 61 days after the first post, 16 after the second.
    app.clock.advance_ms(16 * DAY_MS);
    app.gw.realtime.expire_now().await.expect("reap");
    let token = fresh_token(&app, "owner@example.org").await;
    assert_eq!(post_seqs(&app, &token, &news).await, [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_older_than_channel_retention_days_are_deleted_sqlite() {
    posts_older_than_channel_retention_days_are_deleted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_older_than_channel_retention_days_are_deleted_postgres_redis() {
    posts_older_than_channel_retention_days_are_deleted(Backend::PostgresRedis).await;
}
