//! Group messages: every member device once and in order, removed members,
//! devices that appear later.
use super::*;

both_backends!(
    every_member_device_decrypts_every_group_message_once_in_order,
    a_removed_member_gets_nothing_new_cannot_send_and_never_holds_the_next_session,
    a_device_logged_in_later_reads_what_is_sent_after_it_appeared,
);

async fn every_member_device_decrypts_every_group_message_once_in_order(
    s: Server,
) -> anyhow::Result<()> {
    // Five users with two devices each.
    let mut clients: Vec<(String, Client)> = Vec::new();
    for u in 0..5 {
        let email = format!("user{u}@example.com");
        let laptop = format!("user{u}-laptop");
        let phone = format!("user{u}-phone");
        clients.push((laptop.clone(), s.register(&email, &laptop).await?));
        clients.push((phone.clone(), s.login(&email, &phone).await?));
    }
    let mut events = Vec::new();
    for (_, c) in &clients {
        events.push(synced(c).await?);
    }
    let owner = &clients[0].1;
    let others: Vec<String> = (1..5)
        .map(|u| clients[2 * u].1.user_id().to_owned())
        .collect();
    let group = owner.create_group(Some("five"), &others).await?;
    for (i, ev) in events.iter_mut().enumerate() {
        let e = system_event(ev, &group, "created")
            .await
            .context(clients[i].0.clone())?;
        assert_eq!(e.actor_user_id, owner.user_id());
    }
    let info = owner.group_info(&group).await?;
    assert_eq!(info.kind, "group");
    assert_eq!(info.title.as_deref(), Some("five"));
    assert_eq!(info.members.len(), 5);
    assert_eq!(owner.group_devices(&group).await?.len(), 10);

    // Every device writes once, in turn; then one device queues a burst
    // without waiting (the outbox keeps its order).
    let mut sent = Vec::new(); // (sender index, text, Sent)
    for (i, (_, c)) in clients.iter().enumerate() {
        let text = unique(&format!("hello from {i}"));
        let r = c.send_group_text(&group, &text).await?;
        assert_eq!(r.conversation_id, group);
        sent.push((i, text, r));
    }
    let burst_from = 3;
    let burst: Vec<String> = (0..5).map(|k| unique(&format!("burst {k}"))).collect();
    // A stream of its own: waiting on the device's main one would skip the
    // messages the assertions below look for.
    let mut burst_ev = clients[burst_from].1.events();
    let mut ids = Vec::new();
    for t in &burst {
        ids.push(clients[burst_from].1.queue_group_text(&group, t).await?);
    }
    for id in &ids {
        let e = wait_for(
            &mut burst_ev,
            "burst sent",
            |e| matches!(e, ClientEvent::Sent(s) if s.client_msg_id == *id),
        )
        .await?;
        let ClientEvent::Sent(r) = e else {
            anyhow::bail!("unexpected {e:?}");
        };
        let text = burst[ids.iter().position(|x| x == id).unwrap_or(0)].clone();
        sent.push((burst_from, text, r));
    }
    ensure!(
        sent.windows(2).all(|w| w[0].2.seq < w[1].2.seq),
        "seqs increase in sending order"
    );

    for (i, ev) in events.iter_mut().enumerate() {
        let (name, me) = (&clients[i].0, &clients[i].1);
        let expected: Vec<&(usize, String, vestnik_client::SentMessage)> =
            sent.iter().filter(|(from, _, _)| *from != i).collect();
        let got = messages(ev, expected.len()).await.context(name.clone())?;
        for (m, (from, text, r)) in got.iter().zip(&expected) {
            let sender = &clients[*from].1;
            assert_eq!(&m.body, text, "{name}");
            assert_eq!(m.message_id, r.message_id, "{name}");
            assert_eq!(m.seq, r.seq, "{name}");
            assert_eq!(m.client_msg_id, r.client_msg_id, "{name}");
            assert_eq!(m.conversation_id, group, "{name}");
            assert_eq!(m.sender_user_id, sender.user_id(), "{name}");
            assert_eq!(m.sender_device_id, sender.device_id(), "{name}");
            let direction = if sender.user_id() == me.user_id() {
                Direction::Outgoing
            } else {
                Direction::Incoming
            };
            assert_eq!(m.direction, direction, "{name}");
            assert!(m.megolm_session_id.is_some(), "{name}");
        }
        no_more_messages(ev, Duration::from_millis(300))
            .await
            .context(name.clone())?;
        // Its history: everything, in server order, its own as sent.
        let h = me.history(&group, 100).await?;
        assert_eq!(
            h.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
            sent.iter().map(|(_, t, _)| t.as_str()).collect::<Vec<_>>(),
            "{name}"
        );
        for (e, (from, _, _)) in h.iter().zip(&sent) {
            let state = if *from == i {
                MessageState::Sent
            } else {
                MessageState::Received
            };
            assert_eq!(e.state, state, "{name}");
        }
    }
    // Nothing changed in the group: one session per sending device, its key
    // sent once to each of the 9 other devices.
    for (name, c) in &clients {
        let st = c.stats();
        assert_eq!(st.group_sessions_started, 1, "{name}");
        assert_eq!(st.group_keys_shared, 9, "{name}");
        assert_eq!(st.key_requests_sent, 0, "{name}");
        assert_eq!(c.group_session_ids(&group).await?.len(), 10, "{name}");
    }
    // Plaintext reached neither the server nor a local store file.
    let db = s.database_bytes();
    for (_, t, _) in &sent {
        if s.backend == common::Backend::Sqlite {
            assert!(!contains(&db, t), "plaintext {t} in the server's database");
        }
        for (name, _) in &clients {
            assert!(
                !file_contains(&s.store_path(name), t),
                "plaintext {t} in {name}'s store"
            );
        }
    }
    for (_, c) in clients {
        c.close().await;
    }
    Ok(())
}

async fn a_removed_member_gets_nothing_new_cannot_send_and_never_holds_the_next_session(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob").await?;
    let carol = s.register("carol@example.com", "carol-laptop").await?;
    let carol_phone = s.login("carol@example.com", "carol-phone").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let mut ev_carol = synced(&carol).await?;
    let mut ev_carol_phone = synced(&carol_phone).await?;
    let group = alice
        .create_group(
            Some("three"),
            &[bob.user_id().to_owned(), carol.user_id().to_owned()],
        )
        .await?;

    // Before: everyone reads everyone.
    let before = unique("before");
    alice.send_group_text(&group, &before).await?;
    let mut alice_old = None;
    for (name, ev) in [
        ("bob", &mut ev_bob),
        ("carol", &mut ev_carol),
        ("carol-phone", &mut ev_carol_phone),
    ] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, before, "{name}");
        alice_old = Some(session_of(&m[0])?);
    }
    let alice_old = alice_old.context("alice's first session")?;
    let bob_before = unique("bob before");
    bob.send_group_text(&group, &bob_before).await?;
    let mut bob_old = None;
    for (name, ev) in [
        ("alice", &mut ev_alice),
        ("carol", &mut ev_carol),
        ("carol-phone", &mut ev_carol_phone),
    ] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, bob_before, "{name}");
        bob_old = Some(session_of(&m[0])?);
    }
    let bob_old = bob_old.context("bob's first session")?;
    // Carol's phone has a session of its own, shared with everyone.
    carol_phone
        .send_group_text(&group, &unique("carol before"))
        .await?;
    for ev in [&mut ev_alice, &mut ev_bob, &mut ev_carol] {
        messages(ev, 1).await?;
    }
    // The phone goes offline and so never learns it was removed.
    carol_phone.disconnect().await;

    alice.remove_member(&group, carol.user_id()).await?;
    for (name, ev) in [
        ("alice", &mut ev_alice),
        ("bob", &mut ev_bob),
        ("carol", &mut ev_carol),
    ] {
        let e = system_event(ev, &group, "member_removed")
            .await
            .context(name)?;
        assert_eq!(e.target_user_id.as_deref(), Some(carol.user_id()), "{name}");
        assert_eq!(e.actor_user_id, alice.user_id(), "{name}");
    }

    // After: Alice's next message is in a new session, and so is Bob's (he
    // saw the event); Bob reads Alice and Alice reads Bob.
    let after = unique("after");
    alice.send_group_text(&group, &after).await?;
    let m = messages(&mut ev_bob, 1).await?;
    assert_eq!(m[0].body, after);
    let alice_new = session_of(&m[0])?;
    assert_ne!(alice_new, alice_old);
    assert_eq!(
        alice.outbound_group_session(&group).await?.as_deref(),
        Some(alice_new.as_str())
    );
    let bob_after = unique("bob after");
    bob.send_group_text(&group, &bob_after).await?;
    let m = messages(&mut ev_alice, 1).await?;
    assert_eq!(m[0].body, bob_after);
    let bob_new = session_of(&m[0])?;
    assert_ne!(bob_new, bob_old);
    for (name, c) in [("alice", &alice), ("bob", &bob)] {
        assert_eq!(c.stats().group_sessions_started, 2, "{name}");
    }

    // Carol got no new message and holds neither new session.
    no_more_messages(&mut ev_carol, Duration::from_millis(500)).await?;
    for (name, c) in [("carol", &carol), ("carol-phone", &carol_phone)] {
        let held = c.group_session_ids(&group).await?;
        assert!(held.contains(&alice_old), "{name} had the old session");
        assert!(
            !held.contains(&alice_new),
            "{name} holds alice's new session"
        );
        assert!(!held.contains(&bob_new), "{name} holds bob's new session");
    }
    // The server refuses her: the laptop (which saw the event) is refused the
    // group's devices; the offline phone, still trusting its cache and
    // session, is refused the group message itself.
    for (name, c) in [("carol", &carol), ("carol-phone", &carol_phone)] {
        let err = c
            .send_group_text(&group, &unique("let me in"))
            .await
            .err()
            .with_context(|| format!("{name}'s send was accepted"))?;
        assert!(refused_as_non_member(&err), "{name}: {err}");
    }
    let err = carol.group_info(&group).await.err().context("group info")?;
    assert!(refused_as_non_member(&err), "{err}");
    no_more_messages(&mut ev_alice, Duration::from_millis(300)).await?;
    no_more_messages(&mut ev_bob, Duration::from_millis(100)).await?;
    for c in [alice, bob, carol, carol_phone] {
        c.close().await;
    }
    Ok(())
}

async fn a_device_logged_in_later_reads_what_is_sent_after_it_appeared(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let group = alice
        .create_group(None, &[bob.user_id().to_owned()])
        .await?;
    let old = unique("old");
    alice.send_group_text(&group, &old).await?;
    let m = messages(&mut ev_bob, 1).await?;
    let old_session = session_of(&m[0])?;

    let bob_tablet = s.login("bob@example.com", "bob-tablet").await?;
    let mut ev_tablet = synced(&bob_tablet).await?;
    wait_for(
        &mut ev_alice,
        "bob's new device",
        |e| matches!(e, ClientEvent::DevicesChanged { user_id } if user_id == bob.user_id()),
    )
    .await?;

    let new = unique("new");
    alice.send_group_text(&group, &new).await?;
    for (name, ev) in [("bob-laptop", &mut ev_bob), ("bob-tablet", &mut ev_tablet)] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, new, "{name}");
        assert_ne!(
            session_of(&m[0])?,
            old_session,
            "{name}: a new device means a new session"
        );
        no_more_messages(ev, Duration::from_millis(200))
            .await
            .context(name)?;
    }
    let h = bob_tablet.history(&group, 10).await?;
    assert_eq!(
        h.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        vec![new.as_str()],
        "the tablet has what came after it, not before"
    );
    assert!(!bob_tablet
        .group_session_ids(&group)
        .await?
        .contains(&old_session));

    // And it writes: both others read it.
    let from_tablet = unique("from the tablet");
    bob_tablet.send_group_text(&group, &from_tablet).await?;
    for (name, ev, direction) in [
        ("alice", &mut ev_alice, Direction::Incoming),
        ("bob-laptop", &mut ev_bob, Direction::Outgoing),
    ] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, from_tablet, "{name}");
        assert_eq!(m[0].direction, direction, "{name}");
    }
    for c in [alice, bob, bob_tablet] {
        c.close().await;
    }
    Ok(())
}
