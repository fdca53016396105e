//! The account's data, exported: everything the server holds about it and
//! nothing about anyone else's choices.
use super::*;

both_backends!(the_export_holds_the_account_devices_conversations_blocks_and_audit);

fn tok(v: &serde_json::Value) -> String {
    v["access_token"].as_str().expect("token").to_owned()
}

fn id(v: &serde_json::Value) -> String {
    v["user_id"].as_str().expect("user").to_owned()
}

async fn the_export_holds_the_account_devices_conversations_blocks_and_audit(app: TestApp) {
    let alice = app.register("alice@example.org", PW).await;
    let phone = app.login("alice@example.org", PW, json!({})).await.body;
    let bob = app.register("bob@example.org", PW).await;
    let carol = app.register("carol@example.org", PW).await;
    let r = app
        .post_auth(
            "/v1/conversations",
            &tok(&alice),
            Some(json!({"kind": "group", "title": "Team", "member_user_ids": [id(&bob)]})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let group = r.body["id"].as_str().expect("id").to_owned();
    for who in [&carol, &bob] {
        let r = app
            .send(
                Method::PUT,
                &format!("/v1/blocks/{}", id(who)),
                Some(&tok(&alice)),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", id(&alice)),
            Some(&tok(&carol)),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    let r = app.get_auth("/v1/blocks", &tok(&alice)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut want = vec![id(&bob), id(&carol)];
    want.sort();
    assert_eq!(r.body["blocked_user_ids"], json!(want));

    let r = app.get_auth("/v1/account/export", &tok(&phone)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let x = &r.body;
    assert_eq!(x["account"]["email"], "alice@example.org");
    assert_eq!(x["account"]["user_id"], id(&alice).as_str());
    assert_eq!(x["devices"].as_array().map(Vec::len), Some(2));
    let conv = x["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .find(|c| c["id"] == group.as_str())
        .cloned()
        .expect("the group");
    let mine = conv["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user_id"] == id(&alice).as_str())
        .cloned()
        .expect("own membership");
    assert_eq!(mine["role"], "owner");
    assert_eq!(x["blocked_user_ids"], json!(want));
    let events: Vec<&str> = x["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        events.contains(&"registered") && events.contains(&"login_ok"),
        "{events:?}"
    );
    assert!(x["exported_at"].as_i64().is_some());
    // Carol's block of alice is carol's: in carol's export, not alice's.
    let r = app.get_auth("/v1/account/export", &tok(&carol)).await;
    assert_eq!(r.body["blocked_user_ids"], json!([id(&alice)]));
    let r = app.get_auth("/v1/account/export", &tok(&bob)).await;
    assert_eq!(r.body["blocked_user_ids"], json!([]));
    let r = app.get_auth("/v1/account/export", "not-a-token").await;
    assert_eq!(r.status, 401);
}
