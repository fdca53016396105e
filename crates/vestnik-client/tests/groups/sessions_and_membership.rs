//! Megolm sessions: lost keys requested, restarts, rotation after 100
//! messages; membership events and roles.
use super::*;

both_backends!(
    a_group_message_whose_key_was_lost_waits_and_is_read_after_a_key_request,
    membership_changes_arrive_as_system_events_and_roles_are_enforced,
    group_sessions_survive_a_restart_of_sender_and_receiver,
    a_sender_starts_a_new_session_after_100_messages,
);

async fn a_group_message_whose_key_was_lost_waits_and_is_read_after_a_key_request(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let mut ev_alice = synced(&alice).await?;
    let group = alice
        .create_group(None, &[bob.user_id().to_owned()])
        .await?;
    let texts = [unique("first"), unique("second")];
    for t in &texts {
        alice.send_group_text(&group, t).await?;
    }
    // Bob is offline; his copy of the key share vanishes from the server
    // (as if lost), leaving him the two Megolm messages only.
    let rows = s.gw.store.outbox(bob.device_id(), 0, 1000).await?;
    let keys: Vec<i64> = rows
        .iter()
        .filter(|r| r.kind == "message" && r.msg_type < 2)
        .map(|r| r.id)
        .collect();
    ensure!(keys.len() == 1, "one key share for bob, got {rows:?}");
    ensure!(
        rows.iter().filter(|r| r.msg_type == 2).count() == 2,
        "two group messages for bob"
    );
    let now = s.clock.now_ms();
    s.gw.store
        .ack(
            &[vestnik_store::AckBatchItem {
                device_id: bob.device_id().to_owned(),
                user_id: bob.user_id().to_owned(),
                cursors: keys.clone(),
            }],
            now,
            now + 86_400_000,
        )
        .await?;

    // Bob connects: both wait, he asks Alice, she shares again, he reads both.
    let mut ev_bob = bob.events();
    bob.connect();
    let got = messages(&mut ev_bob, 2).await?;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        texts.iter().map(String::as_str).collect::<Vec<_>>()
    );
    common::eventually("the key request is counted", || async {
        Ok(bob.stats().key_requests_sent == 1)
    })
    .await?;
    no_more_messages(&mut ev_bob, Duration::from_millis(300)).await?;
    no_more_messages(&mut ev_alice, Duration::from_millis(100)).await?;
    // After a restart too: the late session is in Bob's sealed store.
    bob.close().await;
    let bob = Client::open(s.config(&s.base, "bob")).await?;
    let mut ev_bob = synced(&bob).await?;
    let third = unique("third");
    alice.send_group_text(&group, &third).await?;
    assert_eq!(messages(&mut ev_bob, 1).await?[0].body, third);
    for c in [alice, bob] {
        c.close().await;
    }
    Ok(())
}

async fn membership_changes_arrive_as_system_events_and_roles_are_enforced(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let carol = s.register("carol@example.com", "carol").await?;
    let dave = s.register("dave@example.com", "dave").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let mut ev_carol = synced(&carol).await?;
    let mut ev_dave = synced(&dave).await?;
    let group = alice
        .create_group(Some("club"), &[bob.user_id().to_owned()])
        .await?;
    for ev in [&mut ev_alice, &mut ev_bob] {
        system_event(ev, &group, "created").await?;
    }

    // A plain member may not add people; the owner may.
    let err = bob
        .add_member(&group, carol.user_id())
        .await
        .err()
        .context("bob adds")?;
    assert_eq!(err.code(), Some("forbidden"), "{err}");
    let c = alice.add_member(&group, carol.user_id()).await?;
    assert_eq!(c.member_user_ids.len(), 3);
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol] {
        let e = system_event(ev, &group, "member_added").await?;
        assert_eq!(e.target_user_id.as_deref(), Some(carol.user_id()));
    }

    alice
        .update_group(
            &group,
            &UpdateConversation {
                title: Some("the club".into()),
                ..Default::default()
            },
        )
        .await?;
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol] {
        system_event(ev, &group, "updated").await?;
    }
    assert_eq!(
        carol.group_info(&group).await?.title.as_deref(),
        Some("the club")
    );

    alice.set_role(&group, bob.user_id(), "admin").await?;
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol] {
        let e = system_event(ev, &group, "role_changed").await?;
        assert_eq!(e.target_user_id.as_deref(), Some(bob.user_id()));
        assert_eq!(e.role.as_deref(), Some("admin"));
    }
    // An admin invites; Dave joins with the token.
    let invite = bob.create_invite(&group, Some(1), None).await?;
    assert_eq!(invite.conversation_id, group);
    let joined = dave.join_invite(invite.token.expose()).await?;
    assert_eq!(joined.id, group);
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol, &mut ev_dave] {
        system_event(ev, &group, "member_joined").await?;
    }

    // The owner must hand over before leaving.
    let err = alice.leave(&group).await.err().context("owner leaves")?;
    assert_eq!(err.code(), Some("owner_must_transfer"), "{err}");
    alice.transfer_ownership(&group, bob.user_id()).await?;
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol, &mut ev_dave] {
        system_event(ev, &group, "owner_changed").await?;
    }
    let roles: Vec<(String, String)> = bob
        .group_info(&group)
        .await?
        .members
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert!(
        roles.contains(&(bob.user_id().to_owned(), "owner".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(alice.user_id().to_owned(), "admin".into())),
        "{roles:?}"
    );
    alice.leave(&group).await?;
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol, &mut ev_dave] {
        let e = system_event(ev, &group, "member_left").await?;
        assert_eq!(e.actor_user_id, alice.user_id());
    }

    // The rest still talk; the one who left hears nothing.
    let text = unique("after alice left");
    carol.send_group_text(&group, &text).await?;
    for ev in [&mut ev_bob, &mut ev_dave] {
        assert_eq!(messages(ev, 1).await?[0].body, text);
    }
    no_more_messages(&mut ev_alice, Duration::from_millis(300)).await?;
    // Each event once, even across a reconnect (the backlog may repeat).
    dave.disconnect().await;
    let mut ev_dave = synced(&dave).await?;
    let quiet = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(e)) = tokio::time::timeout_at(quiet, ev_dave.recv()).await {
        assert!(!matches!(e, ClientEvent::System(_)), "repeated {e:?}");
    }
    let seen: BTreeSet<String> = dave.group_session_ids(&group).await?.into_iter().collect();
    assert_eq!(seen.len(), 1, "dave holds carol's session only");
    for c in [alice, bob, carol, dave] {
        c.close().await;
    }
    Ok(())
}

async fn group_sessions_survive_a_restart_of_sender_and_receiver(s: Server) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let group = alice
        .create_group(None, &[bob.user_id().to_owned()])
        .await?;
    let one = unique("one");
    alice.send_group_text(&group, &one).await?;
    let first = messages(&mut ev_bob, 1).await?;
    assert_eq!(first[0].body, one);

    alice.close().await;
    bob.close().await;
    let alice = Client::open(s.config(&s.base, "alice")).await?;
    let bob = Client::open(s.config(&s.base, "bob")).await?;
    synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let two = unique("two");
    alice.send_group_text(&group, &two).await?;
    let second = messages(&mut ev_bob, 1).await?;
    assert_eq!(second[0].body, two);
    // Same session, continued: no new session, no key sent again.
    assert_eq!(second[0].megolm_session_id, first[0].megolm_session_id);
    assert_eq!(alice.stats().group_sessions_started, 0);
    assert_eq!(alice.stats().group_keys_shared, 0);
    for c in [alice, bob] {
        c.close().await;
    }
    Ok(())
}

async fn a_sender_starts_a_new_session_after_100_messages(s: Server) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let group = alice
        .create_group(None, &[bob.user_id().to_owned()])
        .await?;
    let n = ROTATE_AFTER_MESSAGES as usize + 1;
    let mut last = String::new();
    for i in 0..n {
        last = alice.queue_group_text(&group, &format!("m{i:03}")).await?;
    }
    wait_for(
        &mut ev_alice,
        "the last one sent",
        |e| matches!(e, ClientEvent::Sent(s) if s.client_msg_id == last),
    )
    .await?;
    let got = messages(&mut ev_bob, n).await?;
    assert_eq!(
        got.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        (0..n).map(|i| format!("m{i:03}")).collect::<Vec<_>>()
    );
    let first = session_of(&got[0])?;
    assert!(got[..n - 1]
        .iter()
        .all(|m| m.megolm_session_id.as_deref() == Some(first.as_str())));
    assert_ne!(session_of(&got[n - 1])?, first);
    assert_eq!(alice.stats().group_sessions_started, 2);
    for c in [alice, bob] {
        c.close().await;
    }
    Ok(())
}
