//! The socket follows the session: tokens that expire are renewed on the
//! socket without reconnecting (so many expiring at once cause no storm),
//! and a session that ends elsewhere ends the client's socket for good.
use super::*;

both_backends!(
    sockets_whose_tokens_expire_together_reauthenticate_in_place_without_reconnecting,
    a_device_revoked_elsewhere_hears_its_session_ended_and_stops_reconnecting,
);

/// A crowd whose tokens all expire at the same moment.
const CROWD: usize = 12;

async fn sockets_whose_tokens_expire_together_reauthenticate_in_place_without_reconnecting(
    default: Server,
) -> anyhow::Result<()> {
    // This test needs short tokens: a server of its own, on the same backend.
    let backend = default.backend;
    drop(default);
    let Some(s) = common::spawn_server_with(backend, |c| {
        c.access_token_ttl_secs = 5;
        c.ws_reauth_grace_secs = 5;
    })
    .await
    else {
        return Ok(());
    };
    let mut crowd = Vec::new();
    for i in 0..CROWD {
        let c = s
            .register(&format!("crowd{i}@example.org"), &format!("c{i}"))
            .await?;
        let events = synced(&c).await?;
        crowd.push((c, events));
    }
    // Every token is expired by the server's clock; every socket's timer
    // runs out within the next 5 s. Each client refreshes once: on the
    // server's `reauth_required`, or earlier when an HTTP call of its own
    // met the expired token (then the socket is not even asked).
    s.clock.advance_ms(6_000);
    for (c, _) in &crowd {
        eventually("the client refreshed", || async {
            Ok(c.stats().refreshes >= 1)
        })
        .await?;
    }
    // Past the grace: nobody was cut off, nobody reconnected or refreshed twice.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut in_place = 0;
    for (i, (c, _)) in crowd.iter().enumerate() {
        let st = c.stats();
        ensure!(
            st.connections == 1 && st.refreshes == 1,
            "client {i}: {st:?}"
        );
        in_place += st.reauths;
    }
    ensure!(in_place >= 1, "no socket was re-authenticated in place");
    // And they still talk, over the same sockets.
    let to = crowd[1].0.user_id().to_owned();
    crowd[0].0.send_text(&to, "still here").await?;
    let got = messages(&mut crowd[1].1, 1).await?;
    ensure!(got[0].body == "still here", "{:?}", got[0].body);
    ensure!(crowd[1].0.stats().connections == 1);
    Ok(())
}

async fn a_device_revoked_elsewhere_hears_its_session_ended_and_stops_reconnecting(
    s: Server,
) -> anyhow::Result<()> {
    let email = format!("{}@example.org", unique("alice"));
    let laptop = s.register(&email, "laptop").await?;
    let phone = s.login(&email, "phone").await?;
    let mut on_phone = synced(&phone).await?;
    laptop.revoke_device(phone.device_id()).await?;
    wait_for(&mut on_phone, "session ended", |e| {
        matches!(e, ClientEvent::SessionEnded { .. })
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        phone.stats().connections == 1,
        "no reconnect after the session ended: {:?}",
        phone.stats()
    );
    ensure!(!phone.is_connected());
    Ok(())
}
