//! Channels: posts written once and read by seq, private channels by
//! invite, what subscribers see.
use super::*;

both_backends!(
    a_channel_post_is_written_once_read_by_seq_and_pushed_live,
    a_private_channel_is_joined_by_invite_and_hidden_from_outsiders,
    channel_subscribers_see_and_address_only_the_owner_and_publishers,
);

async fn a_channel_post_is_written_once_read_by_seq_and_pushed_live(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let subs = [
        user(&app, "s1@example.org", 1).await,
        user(&app, "s2@example.org", 0).await,
        user(&app, "s3@example.org", 0).await,
    ];
    let conv = channel(&app, &owner, "public").await;
    for s in &subs {
        let r = app
            .post_auth(
                &format!("/v1/conversations/{conv}/subscribe"),
                s.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for d in &subs[0].devices {
        ack_all(&app, &d.1).await;
    }
    let mut live = ws(&app, &subs[0].devices[1].1).await;
    assert_eq!(next(&mut live).await["type"], "synced");
    for i in 1..=3 {
        let r = post(&app, owner.token(), &conv, &format!("p{i}")).await;
        assert_eq!(
            (r.status, r.body["seq"].as_i64()),
            (200, Some(i)),
            "{:?}",
            r.body
        );
        let f = next(&mut live).await;
        assert_eq!(
            (
                f["type"].as_str(),
                f["seq"].as_i64(),
                f["msg_type"].as_i64()
            ),
            (Some("channel_post"), Some(i), Some(3))
        );
    }
    // Fan-out on read: no per-subscriber rows were written.
    for s in &subs {
        assert!(of_type(&pending(&app, s.token()).await, "message").is_empty());
    }
    let page = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=0&limit=2"),
            subs[1].token(),
        )
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let posts = page.body["posts"].as_array().expect("posts");
    assert_eq!((posts.len(), page.body["more"].as_bool()), (2, Some(true)));
    assert_eq!(posts[0]["ciphertext"], "UE9TVAp1");
    let page = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=2"),
            subs[1].token(),
        )
        .await;
    assert_eq!(page.body["posts"][0]["seq"], 3);
    assert_eq!(page.body["more"], false);
    let r = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=-1"),
            subs[1].token(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));

    // Subscribers read but do not post, type or see each other.
    let r = post(&app, subs[1].token(), &conv, "nope").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/read"),
            subs[1].token(),
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));
    let detail = app
        .get_auth(&format!("/v1/conversations/{conv}"), subs[1].token())
        .await;
    let seen: Vec<&str> = detail.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    assert_eq!(seen.len(), 2, "owner and self only: {seen:?}");
    // A publisher may post; a direct-style send into a channel is refused.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{conv}/members/{}/role", subs[1].id),
            Some(owner.token()),
            Some(&json!({"role": "publisher"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(post(&app, subs[1].token(), &conv, "pub").await.status, 200);
    let r = group_send(&app, owner.token(), &conv, "g").await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));

    // A subscriber who leaves can no longer read the log.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}", subs[2].id),
            Some(subs[2].token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), subs[2].token())
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
}

async fn a_private_channel_is_joined_by_invite_and_hidden_from_outsiders(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let sub = user(&app, "sub@example.org", 0).await;
    let conv = channel(&app, &owner, "private").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/subscribe"),
            sub.token(),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), sub.token())
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/invites"),
            owner.token(),
            Some(json!({"max_uses": 5})),
        )
        .await;
    let token = r.body["token"].as_str().expect("token").to_owned();
    let r = app
        .post_auth(&format!("/v1/invites/{token}/join"), sub.token(), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let me = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user_id"] == sub.id.as_str())
        .cloned()
        .expect("self listed");
    assert_eq!(me["role"], "subscriber");
    assert_eq!(post(&app, owner.token(), &conv, "secret").await.status, 200);
    let page = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), sub.token())
        .await;
    assert_eq!(page.body["posts"][0]["msg_type"], 2, "{:?}", page.body);
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "channel", "title": "x", "visibility": "secret"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "group", "title": "x", "visibility": "public"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
}

async fn channel_subscribers_see_and_address_only_the_owner_and_publishers(app: TestApp) {
    let owner = user(&app, "owner@example.org", 1).await;
    let s1 = user(&app, "s1@example.org", 0).await;
    let s2 = user(&app, "s2@example.org", 0).await;
    let conv = channel(&app, &owner, "public").await;
    for s in [&s1, &s2] {
        let r = app
            .post_auth(
                &format!("/v1/conversations/{conv}/subscribe"),
                s.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let device_ids = |v: &Value| {
        let mut ids: Vec<String> = v["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["device_id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut staff_and_s1 = vec![
        owner.devices[0].0.clone(),
        owner.devices[1].0.clone(),
        s1.devices[0].0.clone(),
    ];
    staff_and_s1.sort();
    let seen = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), s1.token())
        .await;
    assert_eq!(device_ids(&seen.body), staff_and_s1, "no other subscriber");
    let all = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), owner.token())
        .await;
    assert_eq!(
        device_ids(&all.body).len(),
        4,
        "the owner sees every device"
    );

    let keys = |device: &str, id: &str| {
        json!({"client_msg_id": id, "conversation_id": conv, "kind": "keys",
            "envelopes": [{"device_id": device, "msg_type": 0, "ciphertext": "S2V5"}]})
    };
    let r = app
        .post_auth(
            "/v1/messages",
            s1.token(),
            Some(keys(&owner.devices[1].0, "k1")),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "a key request to a publisher device: {:?}",
        r.body
    );
    let r = app
        .post_auth(
            "/v1/messages",
            s1.token(),
            Some(keys(&s2.devices[0].0, "k2")),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "device_list_stale"));
    let mut listed: Vec<String> = r.body["error"]["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["device_id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed, staff_and_s1,
        "the error does not reveal subscribers"
    );
    assert!(of_type(&pending(&app, s2.token()).await, "message").is_empty());
}
