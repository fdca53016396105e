//! Delivery between devices: order and dedup, the offline backlog and
//! receipts, the local outbox across a disconnect, stale device lists.
use super::*;

both_backends!(
    every_other_device_gets_each_message_once_in_order_and_the_server_sees_only_ciphertext,
    an_offline_device_gets_the_whole_backlog_once_and_the_sender_gets_receipts,
    messages_written_while_disconnected_leave_from_the_outbox_after_reconnect_exactly_once,
    a_stale_device_list_is_reencrypted_for_the_current_devices,
);

async fn every_other_device_gets_each_message_once_in_order_and_the_server_sees_only_ciphertext(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let alice_phone = s.login("alice@example.com", "alice-phone").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let bob_phone = s.login("bob@example.com", "bob-phone").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_alice_phone = synced(&alice_phone).await?;
    let mut ev_bob = synced(&bob).await?;
    let mut ev_bob_phone = synced(&bob_phone).await?;

    let bob_id = alice.lookup_user("bob@example.com").await?;
    assert_eq!(bob_id, bob.user_id());
    let texts: Vec<String> = (0..6).map(|i| unique(&format!("plaintext-{i}"))).collect();
    let mut sent = Vec::new();
    for t in &texts {
        sent.push(alice.send_text(&bob_id, t).await?);
    }
    let conversation = sent[0].conversation_id.clone();
    ensure!(
        sent.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs increase: {sent:?}"
    );

    for (name, ev, direction) in [
        ("bob-laptop", &mut ev_bob, Direction::Incoming),
        ("bob-phone", &mut ev_bob_phone, Direction::Incoming),
        ("alice-phone", &mut ev_alice_phone, Direction::Outgoing),
    ] {
        let got = messages(ev, texts.len()).await.context(name)?;
        let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(
            bodies,
            texts.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
        for (m, s) in got.iter().zip(&sent) {
            assert_eq!(m.message_id, s.message_id, "{name}");
            assert_eq!(m.seq, s.seq, "{name}");
            assert_eq!(m.conversation_id, conversation, "{name}");
            assert_eq!(m.client_msg_id, s.client_msg_id, "{name}");
            assert_eq!(m.sender_user_id, alice.user_id(), "{name}");
            assert_eq!(m.sender_device_id, alice.device_id(), "{name}");
            assert_eq!(m.direction, direction, "{name}");
        }
        // The first one opened the Olm session; the rest reused it.
        assert!(got[0].prekey, "{name}");
        no_more_messages(ev, Duration::from_millis(300))
            .await
            .context(name)?;
    }

    // A reply reaches both of Alice's devices and Bob's other one.
    let reply = unique("reply");
    let r = bob.send_text(alice.user_id(), &reply).await?;
    assert_eq!(r.conversation_id, conversation);
    for (name, ev) in [
        ("alice-laptop", &mut ev_alice),
        ("alice-phone", &mut ev_alice_phone),
        ("bob-phone", &mut ev_bob_phone),
    ] {
        let got = messages(ev, 1).await.context(name)?;
        assert_eq!(got[0].body, reply, "{name}");
        assert_eq!(got[0].message_id, r.message_id, "{name}");
    }

    // Every device has the same history, in server order.
    let mut expected: Vec<String> = texts.clone();
    expected.push(reply.clone());
    for (name, c) in [
        ("alice-laptop", &alice),
        ("alice-phone", &alice_phone),
        ("bob-laptop", &bob),
        ("bob-phone", &bob_phone),
    ] {
        let h = c.history(&conversation, 100).await?;
        let bodies: Vec<&str> = h.iter().map(|e| e.body.as_str()).collect();
        assert_eq!(
            bodies,
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
        assert!(
            h.iter().all(|e| e.message_id.is_some() && e.seq.is_some()),
            "{name}"
        );
    }
    let h = alice.history(&conversation, 100).await?;
    assert!(h[..texts.len()]
        .iter()
        .all(|e| e.state == MessageState::Sent && e.direction == Direction::Outgoing));
    assert_eq!(h[texts.len()].state, MessageState::Received);
    assert_eq!(h[texts.len()].direction, Direction::Incoming);

    // Plaintext never reached the server, nor any local store file.
    let db = s.database_bytes();
    for t in &expected {
        if s.backend == common::Backend::Sqlite {
            assert!(!db.is_empty());
            assert!(!contains(&db, t), "plaintext {t} in the server's database");
        }
        for name in ["alice-laptop", "alice-phone", "bob-laptop", "bob-phone"] {
            assert!(
                !file_contains(&s.store_path(name), t),
                "plaintext {t} in {name}'s local store"
            );
        }
    }
    for c in [alice, alice_phone, bob, bob_phone] {
        c.close().await;
    }
    Ok(())
}

async fn an_offline_device_gets_the_whole_backlog_once_and_the_sender_gets_receipts(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let bob_phone = s.login("bob@example.com", "bob-phone").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;

    let texts: Vec<String> = (0..30)
        .map(|i| unique(&format!("offline-{i:02}")))
        .collect();
    let mut sent = Vec::new();
    for t in &texts {
        sent.push(alice.send_text(bob.user_id(), t).await?);
    }
    let got = messages(&mut ev_bob, 30).await?;
    assert_eq!(
        got.iter().map(|m| &m.body).collect::<Vec<_>>(),
        texts.iter().collect::<Vec<_>>()
    );

    // The phone's copies wait on the server, as ciphertext only.
    let waiting = s.outbox_bodies(bob_phone.device_id()).await?;
    assert_eq!(waiting.len(), 30);
    for body in &waiting {
        for t in &texts {
            assert!(!body.contains(t.as_str()));
        }
    }
    if s.backend == common::Backend::Sqlite {
        let db = s.database_bytes();
        for t in &texts {
            assert!(!contains(&db, t), "plaintext in the server's database");
        }
    }

    // The phone comes online: all 30, in order, once, then `synced`.
    let mut ev_phone = bob_phone.events();
    bob_phone.connect();
    let got = messages(&mut ev_phone, 30).await?;
    assert_eq!(
        got.iter().map(|m| &m.body).collect::<Vec<_>>(),
        texts.iter().collect::<Vec<_>>()
    );
    assert_eq!(
        got.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>(),
        sent.iter()
            .map(|s| s.message_id.clone())
            .collect::<Vec<_>>()
    );
    wait_for(&mut ev_phone, "synced", |e| {
        matches!(e, ClientEvent::Synced)
    })
    .await?;
    no_more_messages(&mut ev_phone, Duration::from_millis(300)).await?;
    eventually("the phone's outbox on the server is empty", || async {
        Ok(s.outbox_bodies(bob_phone.device_id()).await?.is_empty())
    })
    .await?;

    // Alice hears from both of Bob's devices about every message.
    let mut delivered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let want: BTreeSet<String> =
        [bob.device_id().to_owned(), bob_phone.device_id().to_owned()].into();
    while sent
        .iter()
        .any(|m| delivered.get(&m.message_id) != Some(&want))
    {
        if let ClientEvent::Receipt(r) = wait_for(&mut ev_alice, "receipts", |e| {
            matches!(e, ClientEvent::Receipt(_))
        })
        .await?
        {
            assert_eq!(r.user_id, bob.user_id());
            let new = delivered
                .entry(r.message_id)
                .or_default()
                .insert(r.device_id);
            assert!(new, "a receipt came twice");
        }
    }
    let h = alice.history(&sent[0].conversation_id, 100).await?;
    assert_eq!(h.len(), 30);
    let want_sorted: Vec<String> = want.iter().cloned().collect();
    for e in &h {
        assert_eq!(e.delivered_to, want_sorted);
    }
    // Receipts were acknowledged too.
    eventually("alice's outbox on the server is empty", || async {
        Ok(s.outbox_bodies(alice.device_id()).await?.is_empty())
    })
    .await?;
    assert_eq!(alice.outbox_len().await?, 0);
    for c in [alice, bob, bob_phone] {
        c.close().await;
    }
    Ok(())
}

async fn messages_written_while_disconnected_leave_from_the_outbox_after_reconnect_exactly_once(
    s: Server,
) -> anyhow::Result<()> {
    let proxy = Proxy::start(s.addr).await;
    let alice = s
        .register_via(&proxy.url, "alice@example.com", "alice-laptop")
        .await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let bob_id = bob.user_id().to_owned();

    let mut texts = Vec::new();
    for i in 0..3 {
        let t = unique(&format!("before-{i}"));
        alice.send_text(&bob_id, &t).await?;
        texts.push(t);
    }
    let got = messages(&mut ev_bob, 3).await?;
    assert_eq!(
        got.iter().map(|m| &m.body).collect::<Vec<_>>(),
        texts.iter().collect::<Vec<_>>()
    );

    // The network goes away.
    proxy.set_down(true);
    wait_for(&mut ev_alice, "disconnected", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    })
    .await?;
    assert!(!alice.is_connected());
    let mut queued = Vec::new();
    let mut offline_texts = Vec::new();
    for i in 0..3 {
        let t = unique(&format!("offline-{i}"));
        queued.push(alice.queue_text(&bob_id, &t).await?);
        offline_texts.push(t);
    }
    assert_eq!(alice.outbox_len().await?, 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    no_more_messages(&mut ev_bob, Duration::from_millis(100)).await?;
    let conversation = got[0].conversation_id.clone();
    let pending = alice.history(&conversation, 100).await?;
    assert_eq!(
        pending
            .iter()
            .filter(|e| e.state == MessageState::Pending)
            .count(),
        3
    );

    // It comes back: the client reconnects by itself and empties its outbox.
    proxy.set_down(false);
    let mut confirmed = Vec::new();
    while confirmed.len() < 3 {
        if let ClientEvent::Sent(m) = wait_for(&mut ev_alice, "sent after reconnect", |e| {
            matches!(e, ClientEvent::Sent(_))
        })
        .await?
        {
            confirmed.push(m.client_msg_id);
        }
    }
    assert_eq!(confirmed, queued);
    let got = messages(&mut ev_bob, 3).await?;
    assert_eq!(
        got.iter().map(|m| &m.body).collect::<Vec<_>>(),
        offline_texts.iter().collect::<Vec<_>>()
    );
    assert_eq!(alice.outbox_len().await?, 0);

    // The answer to a send is lost: the client sends again with the same
    // client_msg_id, and the message still arrives once.
    // (The outbox may have beaten the socket to it over REST.)
    eventually("alice is connected again", || async {
        Ok(alice.is_connected())
    })
    .await?;
    assert!(alice.stats().connections >= 2);
    proxy.set_deaf(true);
    let lost = unique("lost-answer");
    let lost_id = alice.queue_text(&bob_id, &lost).await?;
    let arrived = messages(&mut ev_bob, 1).await?;
    assert_eq!(arrived[0].body, lost);
    proxy.kill_all();
    proxy.set_deaf(false);
    let sent = loop {
        if let ClientEvent::Sent(m) = wait_for(&mut ev_alice, "sent of the resent message", |e| {
            matches!(e, ClientEvent::Sent(_))
        })
        .await?
        {
            break m;
        }
    };
    assert_eq!(sent.client_msg_id, lost_id);
    assert_eq!(
        sent.message_id, arrived[0].message_id,
        "the server recognised the repeat"
    );
    assert!(alice.stats().resends >= 1, "{:?}", alice.stats());
    let last = unique("after");
    alice.send_text(&bob_id, &last).await?;
    let got = messages(&mut ev_bob, 1).await?;
    assert_eq!(got[0].body, last, "the repeat was not delivered again");
    no_more_messages(&mut ev_bob, Duration::from_millis(300)).await?;

    let h = alice.history(&conversation, 100).await?;
    assert_eq!(h.len(), 8);
    assert!(h.iter().all(|e| e.state == MessageState::Sent));
    let ids: BTreeSet<_> = h.iter().filter_map(|e| e.message_id.clone()).collect();
    assert_eq!(ids.len(), 8);
    alice.close().await;
    bob.close().await;
    Ok(())
}

async fn a_stale_device_list_is_reencrypted_for_the_current_devices(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let bob_id = bob.user_id().to_owned();

    alice.send_text(&bob_id, "first").await?;
    messages(&mut ev_bob, 1).await?;
    let number = alice.safety_number(&bob_id).await?;
    assert_eq!(number, bob.safety_number(alice.user_id()).await?);
    assert_eq!(number.len(), 71);

    // Bob adds a phone while Alice is away (she misses `devices_changed`).
    alice.disconnect().await;
    let bob_phone = s.login("bob@example.com", "bob-phone").await?;
    let mut ev_phone = synced(&bob_phone).await?;
    alice.connect();
    wait_for(&mut ev_alice, "synced again", |e| {
        matches!(e, ClientEvent::Synced)
    })
    .await?;
    assert_eq!(alice.stats().stale_resends, 0);
    let second = alice.send_text(&bob_id, "second").await?;
    assert_eq!(
        alice.stats().stale_resends,
        1,
        "the send was refused once as stale"
    );
    let got = messages(&mut ev_phone, 1).await?;
    assert_eq!(got[0].body, "second");
    assert_eq!(got[0].message_id, second.message_id);
    assert_eq!(messages(&mut ev_bob, 1).await?[0].body, "second");
    let changed = alice.safety_number(&bob_id).await?;
    assert_ne!(changed, number, "a new device changes the safety number");
    assert_eq!(changed, bob_phone.safety_number(alice.user_id()).await?);

    // Online, Alice hears of the next device and needs no second try.
    let bob_tablet = s.login("bob@example.com", "bob-tablet").await?;
    wait_for(
        &mut ev_alice,
        "devices_changed",
        |e| matches!(e, ClientEvent::DevicesChanged { user_id } if *user_id == bob_id),
    )
    .await?;
    let mut ev_tablet = synced(&bob_tablet).await?;
    alice.send_text(&bob_id, "third").await?;
    assert_eq!(alice.stats().stale_resends, 1);
    assert_eq!(messages(&mut ev_tablet, 1).await?[0].body, "third");

    // A removed device, noticed over REST (no socket): re-encrypted without it.
    alice.disconnect().await;
    let tablet_id = bob_tablet.device_id().to_owned();
    bob_tablet.close().await;
    bob.revoke_device(&tablet_id).await?;
    alice.send_text(&bob_id, "fourth").await?;
    assert_eq!(alice.stats().stale_resends, 2);
    assert_eq!(messages(&mut ev_phone, 2).await?[1].body, "fourth");
    let devices: Vec<String> = bob.devices().await?.into_iter().map(|d| d.id).collect();
    assert_eq!(devices.len(), 2);
    for c in [alice, bob, bob_phone] {
        c.close().await;
    }
    Ok(())
}
