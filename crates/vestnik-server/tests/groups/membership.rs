//! Sending to a group, roles and who may change what, removal.
use super::*;

both_backends!(
    a_group_message_is_sent_once_and_reaches_every_other_member_device,
    roles_decide_who_may_change_the_group,
    a_removed_member_is_told_and_can_no_longer_send_read_or_receive,
    two_concurrent_ownership_transfers_leave_exactly_one_owner,
);

async fn two_concurrent_ownership_transfers_leave_exactly_one_owner(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let b = user(&app, "b@example.org", 0).await;
    let c = user(&app, "c@example.org", 0).await;
    for round in 0..5 {
        let conv = create_group(&app, &owner, &[&b, &c]).await;
        let path = format!("/v1/conversations/{conv}/owner");
        let (to_b, to_c) = tokio::join!(
            app.post_auth(&path, owner.token(), Some(json!({"user_id": b.id}))),
            app.post_auth(&path, owner.token(), Some(json!({"user_id": c.id}))),
        );
        let mut statuses = [to_b.status, to_c.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [204, 403],
            "round {round}: one wins, one is refused"
        );
        let detail = app
            .get_auth(&format!("/v1/conversations/{conv}"), b.token())
            .await;
        let owners: Vec<&Value> = detail.body["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter(|m| m["role"] == "owner")
            .collect();
        assert_eq!(owners.len(), 1, "round {round}: {:?}", detail.body);
    }
}

async fn a_group_message_is_sent_once_and_reaches_every_other_member_device(app: TestApp) {
    let alice = user(&app, "alice@example.org", 1).await;
    let bob = user(&app, "bob@example.org", 1).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let outsider = user(&app, "dave@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob, &carol]).await;

    let r = app
        .get_auth(&format!("/v1/conversations/{conv}"), bob.token())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["kind"].as_str(), r.body["title"].as_str()),
        (Some("group"), Some("Team"))
    );
    let roles: Vec<(String, String)> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().expect("u").to_owned(),
                m["role"].as_str().expect("r").to_owned(),
            )
        })
        .collect();
    assert!(roles.contains(&(alice.id.clone(), "owner".into())));
    assert!(roles.contains(&(bob.id.clone(), "member".into())));
    assert_eq!(roles.len(), 3);
    let devices = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), carol.token())
        .await;
    assert_eq!(devices.body["devices"].as_array().expect("d").len(), 5);

    let r = group_send(&app, alice.token(), &conv, "g1").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["seq"], 1);
    // A retry is answered from the stored message, not stored twice.
    let again = group_send(&app, alice.token(), &conv, "g1").await;
    assert_eq!(again.body["message_id"], r.body["message_id"]);

    let recipients = [
        &alice.devices[1].1,
        &bob.devices[0].1,
        &bob.devices[1].1,
        &carol.devices[0].1,
    ];
    for token in recipients {
        let items = pending(&app, token).await;
        let messages = of_type(&items, "message");
        assert_eq!(messages.len(), 1, "{items:?}");
        assert_eq!(messages[0]["msg_type"], 2);
        assert_eq!(messages[0]["ciphertext"], "TWVnb2xtg1");
        assert_eq!(messages[0]["sender_user_id"], alice.id.as_str());
        assert_eq!(of_type(&items, "system")[0]["event"], "created");
    }
    assert!(of_type(&pending(&app, alice.token()).await, "message").is_empty());
    assert!(pending(&app, outsider.token()).await.is_empty());

    // Acks turn into delivery receipts for the sender's devices.
    ack_all(&app, &bob.devices[0].1).await;
    let receipts = of_type(&pending(&app, alice.token()).await, "receipt")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["device_id"], bob.devices[0].0.as_str());

    // The group shows up in the member's list with its title.
    let list = app.get_auth("/v1/conversations", carol.token()).await;
    let listed = list.body["conversations"].as_array().expect("list");
    assert!(listed
        .iter()
        .any(|c| c["id"] == conv.as_str() && c["title"] == "Team"));
}

async fn roles_decide_who_may_change_the_group(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let admin = user(&app, "admin@example.org", 0).await;
    let m1 = user(&app, "m1@example.org", 0).await;
    let m2 = user(&app, "m2@example.org", 0).await;
    let newcomer = user(&app, "new@example.org", 0).await;
    let conv = create_group(&app, &owner, &[&admin, &m1, &m2]).await;
    let base = format!("/v1/conversations/{conv}");

    // Only the owner hands out roles.
    let role = |who: &str| format!("{base}/members/{who}/role");
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(m1.token()),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(owner.token()),
            Some(&json!({"role": "owner"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(owner.token()),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Members may not add, rename or invite; admins may.
    let add = json!({"user_id": newcomer.id});
    let r = app
        .post_auth(&format!("{base}/members"), m1.token(), Some(add.clone()))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(m1.token()),
            Some(&json!({"title": "mine"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&format!("{base}/invites"), m1.token(), Some(json!({})))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&format!("{base}/members"), admin.token(), Some(add))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["member_user_ids"].as_array().expect("m").len(), 5);
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(admin.token()),
            Some(&json!({"title": "Renamed", "avatar_ref": "media:abc"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["title"].as_str(), r.body["topic"].as_str()),
        (Some("Renamed"), Some("plans"))
    );
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(admin.token()),
            Some(&json!({"title": "x\u{7}"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));

    // Admins remove plain members only; members remove no one but themselves.
    let member = |who: &str| format!("{base}/members/{who}");
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(admin.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(Method::DELETE, &member(&m2.id), Some(m1.token()), None)
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(Method::DELETE, &member(&m2.id), Some(admin.token()), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .send(Method::DELETE, &member(&m1.id), Some(m1.token()), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // The owner cannot just leave; after a transfer the old owner is an admin.
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "owner_must_transfer"));
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            admin.token(),
            Some(json!({"user_id": admin.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            owner.token(),
            Some(json!({"user_id": m2.id})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "user_not_found"),
        "not a member"
    );
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            owner.token(),
            Some(json!({"user_id": admin.id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let detail = app.get_auth(&base, newcomer.token()).await;
    let role_of = |id: &str| {
        detail.body["members"]
            .as_array()
            .expect("m")
            .iter()
            .find(|m| m["user_id"] == id)
            .map(|m| m["role"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(role_of(&admin.id).as_deref(), Some("owner"));
    assert_eq!(role_of(&owner.id).as_deref(), Some("admin"));
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Direct conversations have no roles to change.
    let d = app
        .post_auth(
            "/v1/conversations",
            m1.token(),
            Some(json!({"kind": "direct", "peer_user_id": m2.id})),
        )
        .await;
    let direct = d.body["id"].as_str().expect("id");
    let r = app
        .post_auth(
            &format!("/v1/conversations/{direct}/members"),
            m1.token(),
            Some(json!({"user_id": newcomer.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // Bad input: unknown fields, bad ids, an unknown kind.
    let r = app
        .post_auth(
            &format!("{base}/members"),
            admin.token(),
            Some(json!({"user_id": "../x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .post_auth(
            "/v1/conversations",
            m1.token(),
            Some(json!({"kind": "salon", "title": "x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .get_auth("/v1/conversations/not-an-id", m1.token())
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
}

async fn a_removed_member_is_told_and_can_no_longer_send_read_or_receive(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 1).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob, &carol]).await;
    for d in &bob.devices {
        ack_all(&app, &d.1).await;
    }
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}", bob.id),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Both of Bob's devices learn it.
    for d in &bob.devices {
        let items = pending(&app, &d.1).await;
        let events = of_type(&items, "system");
        assert_eq!(events.len(), 1, "{items:?}");
        assert_eq!(events[0]["event"], "member_removed");
        assert_eq!(events[0]["target_user_id"], bob.id.as_str());
        assert_eq!(events[0]["actor_user_id"], alice.id.as_str());
        ack_all(&app, &d.1).await;
    }
    let r = group_send(&app, bob.token(), &conv, "late").await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .post_auth(
            "/v1/messages",
            bob.token(),
            Some(json!({"client_msg_id": "k", "conversation_id": conv, "kind": "keys",
                "envelopes": [{"device_id": carol.devices[0].0, "msg_type": 0, "ciphertext": "QUJD"}]})),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    for path in [
        format!("/v1/conversations/{conv}"),
        format!("/v1/conversations/{conv}/devices"),
        format!("/v1/conversations/{conv}/read"),
    ] {
        let r = app.get_auth(&path, bob.token()).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "conversation_not_found"),
            "{path}"
        );
    }
    // New messages reach the remaining members only.
    assert_eq!(
        group_send(&app, carol.token(), &conv, "after").await.status,
        200
    );
    for d in &bob.devices {
        assert!(pending(&app, &d.1).await.is_empty());
    }
    let items = pending(&app, alice.token()).await;
    assert_eq!(of_type(&items, "message").len(), 1, "{items:?}");
}
