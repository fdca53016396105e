//! A reopened store, 2FA and expired tokens, sync over REST, fallback-key
//! rotation.
use super::*;

both_backends!(
    a_client_reopened_from_its_store_keeps_its_sessions_and_history,
    two_factor_login_and_expired_access_tokens_are_handled,
    sync_over_rest_pages_through_the_backlog,
    the_fallback_key_is_replaced_once_old_and_the_one_before_still_decrypts,
);

async fn a_client_reopened_from_its_store_keeps_its_sessions_and_history(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let (alice_id, bob_id) = (alice.user_id().to_owned(), bob.user_id().to_owned());
    let mut ev_alice = synced(&alice).await?;
    let mut ev_bob = synced(&bob).await?;
    let a1 = alice.send_text(&bob_id, "a1").await?;
    assert!(messages(&mut ev_bob, 1).await?[0].prekey);
    bob.send_text(&alice_id, "b1").await?;
    assert!(
        !messages(&mut ev_alice, 1).await?[0].prekey,
        "Bob answers on Alice's session"
    );
    alice.send_text(&bob_id, "a2").await?;
    messages(&mut ev_bob, 1).await?;

    // Both stop; Alice writes while Bob is gone.
    bob.close().await;
    alice.send_text(&bob_id, "a3 while bob is closed").await?;
    alice.close().await;

    let wrong = Client::open(vestnik_client::ClientConfig::new(
        &s.base,
        s.store_path("alice-laptop"),
        StoreKey::secret(vec![9u8; 32]),
    ))
    .await;
    assert!(
        matches!(wrong, Err(ClientError::WrongStoreKey)),
        "{wrong:?}"
    );
    let again = Client::register(
        s.config(&s.base, "alice-laptop"),
        "alice@example.com",
        "000000",
        "x",
    )
    .await;
    assert!(
        matches!(again, Err(ClientError::AlreadyRegistered(_))),
        "{again:?}"
    );

    let alice = Client::open(s.config(&s.base, "alice-laptop")).await?;
    let bob = Client::open(s.config(&s.base, "bob-laptop")).await?;
    assert_eq!(alice.user_id(), alice_id);
    assert_eq!(bob.user_id(), bob_id);
    let twice = Client::open(s.config(&s.base, "bob-laptop")).await;
    assert!(
        matches!(twice, Err(ClientError::StoreInUse(_))),
        "{twice:?}"
    );
    let mut ev_bob = bob.events();
    bob.connect();
    let got = messages(&mut ev_bob, 1).await?;
    assert_eq!(got[0].body, "a3 while bob is closed");
    assert!(!got[0].prekey, "the Olm session survived the restart");
    let mut ev_alice = synced(&alice).await?;
    alice.send_text(&bob_id, "a4").await?;
    let got = messages(&mut ev_bob, 1).await?;
    assert_eq!(got[0].body, "a4");
    assert!(!got[0].prekey);
    bob.send_text(&alice_id, "b2").await?;
    let got = messages(&mut ev_alice, 1).await?;
    assert_eq!(got[0].body, "b2");
    assert!(!got[0].prekey);

    for (name, c) in [("alice", &alice), ("bob", &bob)] {
        let h = c.history(&a1.conversation_id, 100).await?;
        let bodies: Vec<&str> = h.iter().map(|e| e.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["a1", "b1", "a2", "a3 while bob is closed", "a4", "b2"],
            "{name}"
        );
    }
    let last_two = alice.history(&a1.conversation_id, 2).await?;
    assert_eq!(
        last_two.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["a4", "b2"]
    );
    alice.close().await;
    bob.close().await;
    Ok(())
}

async fn two_factor_login_and_expired_access_tokens_are_handled(s: Server) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let setup = alice.setup_totp().await?;
    let codes = alice
        .enable_totp(&totp_now(&s, setup.secret.expose())?)
        .await?;
    assert_eq!(codes.recovery_codes.len(), 10);

    let refused = s.login("alice@example.com", "alice-phone").await;
    let code = refused
        .err()
        .and_then(|e| e.downcast::<ClientError>().ok())
        .and_then(|e| e.code().map(str::to_owned));
    assert_eq!(code.as_deref(), Some("totp_required"));
    s.clock.advance_ms(30_000);
    let phone = s
        .login_2fa(
            "alice@example.com",
            "alice-phone2",
            SecondFactor::Totp(totp_now(&s, setup.secret.expose())?),
        )
        .await?;
    let tablet = s
        .login_2fa(
            "alice@example.com",
            "alice-tablet",
            SecondFactor::RecoveryCode(codes.recovery_codes[0].expose().to_owned()),
        )
        .await?;
    assert_eq!(alice.devices().await?.len(), 3);

    // The access token expires: calls refresh it once and go on.
    s.clock.advance_ms(901_000);
    assert_eq!(alice.stats().refreshes, 0);
    assert_eq!(alice.devices().await?.len(), 3);
    assert_eq!(alice.stats().refreshes, 1);
    // So does the socket's handshake.
    s.clock.advance_ms(901_000);
    let _ev = synced(&alice).await?;
    assert_eq!(alice.stats().refreshes, 2);
    // And sends over the socket reach the other devices.
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let mut ev_phone = synced(&phone).await?;
    alice.send_text(bob.user_id(), "hi").await?;
    assert_eq!(messages(&mut ev_phone, 1).await?[0].body, "hi");
    for c in [alice, phone, tablet, bob] {
        c.close().await;
    }
    Ok(())
}

async fn sync_over_rest_pages_through_the_backlog(s: Server) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let mut config = s.config(&s.base, "bob-laptop");
    config.sync_page = 5;
    // Exactly the server's low watermark: the first claim takes Bob below it.
    config.one_time_keys = 20;
    Client::request_registration_code(&s.base, "bob@example.com").await?;
    let code = s.mailed_code("bob@example.com").context("code")?;
    let bob = Client::register(config, "bob@example.com", &code, common::PASSWORD).await?;
    let texts: Vec<String> = (0..12).map(|i| unique(&format!("rest-{i}"))).collect();
    // Alice has no socket either: her sends go over REST.
    for t in &texts {
        alice.send_text(bob.user_id(), t).await?;
    }
    let mut ev = bob.events();
    assert_eq!(bob.sync().await?, 12);
    let got = messages(&mut ev, 12).await?;
    assert_eq!(
        got.iter().map(|m| &m.body).collect::<Vec<_>>(),
        texts.iter().collect::<Vec<_>>()
    );
    assert!(s.outbox_bodies(bob.device_id()).await?.is_empty());
    assert_eq!(bob.sync().await?, 0);
    // The pre-key message used one of Bob's one-time keys: the pool is topped up.
    eventually("bob uploaded one-time keys", || async {
        Ok(bob.stats().one_time_keys_uploaded > 0)
    })
    .await?;
    assert_eq!(
        bob.replenish_one_time_keys().await?,
        0,
        "the pool is full again"
    );
    // Alice collects the receipts the same way: a receipt covers what one
    // ack of Bob's covered, and yields one event per message.
    let mut ev_alice = alice.events();
    let items = alice.sync().await?;
    assert!((1..=12).contains(&items), "{items} receipt items");
    let mut covered = BTreeSet::new();
    while let Some(e) = ev_alice.try_recv() {
        if let ClientEvent::Receipt(r) = e {
            assert_eq!(r.device_id, bob.device_id());
            covered.insert(r.message_id);
        }
    }
    assert_eq!(covered.len(), 12);
    alice.close().await;
    bob.close().await;
    Ok(())
}

async fn the_fallback_key_is_replaced_once_old_and_the_one_before_still_decrypts(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let mut config = s.config(&s.base, "bob-laptop");
    config.fallback_key_max_age = Duration::from_millis(1500);
    Client::request_registration_code(&s.base, "bob@example.com").await?;
    let code = s.mailed_code("bob@example.com").context("code")?;
    let bob = Client::register(config, "bob@example.com", &code, common::PASSWORD).await?;
    let f0 = bobs_fallback(&s, &bob, false).await?;
    bob.replenish_one_time_keys().await?;
    assert_eq!(bobs_fallback(&s, &bob, false).await?, f0, "young: kept");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    bob.replenish_one_time_keys().await?;
    let f1 = bobs_fallback(&s, &bob, true).await?;
    assert_ne!(f1, f0, "old: replaced (and the server took its signature)");

    // Alice's first message can only use f1; Bob replaces it before reading.
    let text = unique("via-fallback");
    alice.send_text(bob.user_id(), &text).await?;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    bob.replenish_one_time_keys().await?;
    let f2 = bobs_fallback(&s, &bob, false).await?;
    assert_ne!(f2, f1);
    let mut ev = bob.events();
    assert_eq!(bob.sync().await?, 1);
    let got = messages(&mut ev, 1).await?;
    assert_eq!(got[0].body, text, "made with the previous fallback key");
    alice.close().await;
    bob.close().await;
    Ok(())
}
