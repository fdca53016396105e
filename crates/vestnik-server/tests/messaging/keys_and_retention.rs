//! One-time key claims, retention of undelivered envelopes, and device
//! changes told to partners.
use super::*;

both_backends!(
    concurrent_claims_get_distinct_one_time_keys_then_the_fallback_key,
    undelivered_envelopes_expire_after_the_retention_period,
    partners_hear_when_a_device_is_added_or_removed,
);

async fn concurrent_claims_get_distinct_one_time_keys_then_the_fallback_key(app: TestApp) {
    let bob = user(&app, "bob@example.org", 0).await;
    let alice = user(&app, "alice@example.org", 0).await;
    // Bob has 5 keys from registration; top up to 100.
    let more: Vec<Value> = (5..100)
        .map(|i| json!({"key_id": format!("otk{i}"), "public_key": base64_32(i as u8)}))
        .collect();
    let r = app
        .send(
            Method::PUT,
            "/v1/keys",
            Some(&bob.devices[0].1),
            Some(&json!({"one_time_keys": more})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["one_time_keys"].as_i64()),
        (200, Some(100)),
        "{:?}",
        r.body
    );
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (app, token, bob_id) = (app.clone(), alice.devices[0].1.clone(), bob.id.clone());
            tokio::spawn(async move {
                app.post_auth("/v1/keys/claim", &token, Some(json!({"user_id": bob_id})))
                    .await
                    .body
            })
        })
        .collect();
    let mut keys = HashSet::new();
    for t in tasks {
        let body = t.await.expect("task");
        let b = &body["bundles"][0];
        assert_eq!(b["device_id"], bob.devices[0].0.as_str());
        keys.insert(
            b["one_time_key"]["key_id"]
                .as_str()
                .expect("a one-time key")
                .to_owned(),
        );
    }
    assert_eq!(keys.len(), 100, "100 claims, 100 distinct keys");
    let r = app
        .post_auth(
            "/v1/keys/claim",
            &alice.devices[0].1,
            Some(json!({"user_id": bob.id})),
        )
        .await;
    assert!(r.body["bundles"][0]["one_time_key"].is_null());
    assert_eq!(r.body["bundles"][0]["fallback_key"]["key_id"], "fb1");
    let c = app.get_auth("/v1/keys/count", &bob.devices[0].1).await;
    assert_eq!(
        (
            c.body["one_time_keys"].as_i64(),
            c.body["low_watermark"].as_i64()
        ),
        (Some(0), Some(20))
    );
    let r = app
        .post_auth(
            "/v1/keys/claim",
            &alice.devices[0].1,
            Some(json!({"user_id": "0123456789abcdef0123456789abcdef"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    let r = app
        .post_auth(
            "/v1/users/lookup",
            &alice.devices[0].1,
            Some(json!({"email": "BOB@example.org"})),
        )
        .await;
    assert_eq!(r.body["user_id"], bob.id.as_str());
    let r = app
        .get_auth(
            &format!("/v1/users/{}/devices", bob.id),
            &alice.devices[0].1,
        )
        .await;
    assert_eq!(r.body["devices"].as_array().map(Vec::len), Some(1));
}

async fn undelivered_envelopes_expire_after_the_retention_period(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    send(&app, &alice.devices[0].1, &conv, "old", &targets).await;
    app.gw.realtime.expire_now().await.expect("reap");
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 10).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    app.clock.advance_ms(31 * 86_400_000);
    // Tokens expired with the jump: log in again to look.
    let fresh = app.login("bob@example.org", PW, json!({})).await.body["access_token"]
        .as_str()
        .expect("t")
        .to_owned();
    let _ = fresh;
    assert!(app.gw.realtime.expire_now().await.expect("reap") >= 3);
    let count = app
        .gw
        .store
        .outbox(&bob.devices[0].0, 0, 10)
        .await
        .expect("outbox")
        .len();
    assert_eq!(count, 0);
}

async fn partners_hear_when_a_device_is_added_or_removed(app: TestApp) {
    let (alice, bob, _conv) = two_users(&app).await;
    let carol = user(&app, "carol@example.org", 0).await; // shares no conversation
    let mut alice_ws = ws_bearer(&app, &alice.devices[0].1).await;
    let mut carol_ws = ws_bearer(&app, &carol.devices[0].1).await;
    assert_eq!(next_json(&mut alice_ws).await["type"], "synced");
    assert_eq!(next_json(&mut carol_ws).await["type"], "synced");
    let l = app.login("bob@example.org", PW, json!({})).await;
    assert_eq!(
        next_json(&mut alice_ws).await,
        json!({"type": "devices_changed", "user_id": bob.id})
    );
    let d = l.body["device_id"].as_str().expect("id");
    app.send(
        Method::DELETE,
        &format!("/v1/devices/{d}"),
        Some(&bob.devices[0].1),
        None,
    )
    .await;
    assert_eq!(
        next_json(&mut alice_ws).await,
        json!({"type": "devices_changed", "user_id": bob.id})
    );
    // Carol heard nothing: ping shows the next frame is the pong.
    carol_ws
        .send(Message::Text(
            json!({"type": "ping", "nonce": null}).to_string().into(),
        ))
        .await
        .expect("ping");
    assert_eq!(next_json(&mut carol_ws).await["type"], "pong");
}
