//! Channels through the client library against the real server (SQLite,
//! and PostgreSQL + Redis): public posts in the clear, private posts under
//! the publishers' Megolm sessions, live pushes and the log by cursor.
mod common;

use std::time::Duration;

use anyhow::Context;
use common::{
    contains, eventually, messages, no_more_messages, synced, system_event, unique, Server,
};
use vestnik_client::{ClientError, Direction, MessageState};

both_backends!(
    public_posts_reach_live_subscribers_once_and_the_log_fills_what_an_offline_one_missed,
    private_posts_are_encrypted_and_a_removed_subscriber_never_gets_the_next_key,
);

async fn public_posts_reach_live_subscribers_once_and_the_log_fills_what_an_offline_one_missed(
    s: Server,
) -> anyhow::Result<()> {
    let owner = s.register("owner@example.com", "owner").await?;
    let owner_phone = s.login("owner@example.com", "owner-phone").await?;
    let online = s.register("online@example.com", "online").await?;
    let offline = s.register("offline@example.com", "offline").await?;
    let _ev_owner = synced(&owner).await?;
    let mut ev_phone = synced(&owner_phone).await?;
    let mut ev_online = synced(&online).await?;

    let channel = owner.create_channel("news", true, &[]).await?;
    assert_eq!(
        (channel.kind.as_str(), channel.visibility.as_deref()),
        ("channel", Some("public"))
    );
    for c in [&online, &offline] {
        let joined = c.subscribe_channel(&channel.id).await?;
        assert_eq!(joined.id, channel.id);
    }

    let texts: Vec<String> = (0..3).map(|i| unique(&format!("post {i}"))).collect();
    let mut seqs = Vec::new();
    let mut ids = Vec::new();
    for t in &texts {
        let sent = owner.post(&channel.id, t).await?;
        assert_eq!(sent.conversation_id, channel.id);
        seqs.push(sent.seq);
        ids.push(sent.message_id);
    }
    // Live: the online subscriber and the owner's other device, each post once, in order.
    let got = messages(&mut ev_online, 3).await.context("online")?;
    for ((m, t), seq) in got.iter().zip(&texts).zip(&seqs) {
        assert_eq!((&m.body, m.seq), (t, *seq));
        assert_eq!(m.sender_user_id, owner.user_id());
        assert_eq!(m.direction, Direction::Incoming);
        assert_eq!(m.megolm_session_id, None, "public: no Megolm");
    }
    let got = messages(&mut ev_phone, 3).await.context("owner's phone")?;
    assert!(got.iter().all(|m| m.direction == Direction::Outgoing));
    // Reading the log again finds nothing new: live posts are not doubled.
    assert_eq!(online.read_channel(&channel.id).await?, 0);
    no_more_messages(&mut ev_online, Duration::from_millis(300)).await?;

    // The subscriber who was away reads everything on connect, in order.
    let mut ev_offline = synced(&offline).await?;
    let got = messages(&mut ev_offline, 3).await.context("offline")?;
    let bodies: Vec<&String> = got.iter().map(|m| &m.body).collect();
    assert_eq!(bodies, texts.iter().collect::<Vec<_>>());
    let history = offline.history(&channel.id, 10).await?;
    assert_eq!(history.len(), 3);
    assert_eq!(offline.read_channel(&channel.id).await?, 0);

    // Deleted for everyone by the owner: the deletion record in the log
    // reaches both subscribers (live), and each erases the post.
    owner.delete_for_everyone(&channel.id, &ids[0]).await?;
    for (name, c) in [("online", &online), ("offline", &offline)] {
        eventually(&format!("{name} erases the post"), || async {
            let history = c.history(&channel.id, 10).await?;
            let entry = history
                .iter()
                .find(|h| h.message_id.as_deref() == Some(ids[0].as_str()))
                .context("the post")?;
            Ok(entry.state == MessageState::Deleted && entry.body.is_empty())
        })
        .await?;
    }
    // Reading the log again finds no post: the record is not one.
    assert_eq!(online.read_channel(&channel.id).await?, 0);
    no_more_messages(&mut ev_online, Duration::from_millis(300)).await?;

    // Subscribers read; they do not post.
    let e = online
        .post(&channel.id, "not mine to say")
        .await
        .expect_err("a subscriber may not post");
    assert_eq!(e.code(), Some("forbidden"), "{e}");
    // Nor is a group a channel.
    let group = owner.create_group(Some("g"), &[]).await?;
    let e = owner
        .read_channel(&group)
        .await
        .expect_err("a group has no channel log");
    assert!(matches!(e, ClientError::InvalidInput(_)), "{e}");
    Ok(())
}

async fn private_posts_are_encrypted_and_a_removed_subscriber_never_gets_the_next_key(
    s: Server,
) -> anyhow::Result<()> {
    let owner = s.register("owner@example.com", "owner").await?;
    let kept = s.register("kept@example.com", "kept-laptop").await?;
    let kept_phone = s.login("kept@example.com", "kept-phone").await?;
    let removed = s.register("removed@example.com", "removed").await?;
    let mut ev_owner = synced(&owner).await?;
    let mut ev_kept = synced(&kept).await?;
    let mut ev_kept_phone = synced(&kept_phone).await?;
    let mut ev_removed = synced(&removed).await?;

    let channel = owner
        .create_channel(
            "inner circle",
            false,
            &[kept.user_id().to_owned(), removed.user_id().to_owned()],
        )
        .await?;
    assert_eq!(channel.visibility.as_deref(), Some("private"));
    // A subscriber learns of the channel when asked (it gets no system events).
    for c in [&kept, &kept_phone, &removed] {
        c.group_info(&channel.id).await?;
    }

    let first = unique("first secret");
    owner.post(&channel.id, &first).await?;
    let mut first_session = None;
    for (name, ev) in [
        ("kept", &mut ev_kept),
        ("kept-phone", &mut ev_kept_phone),
        ("removed", &mut ev_removed),
    ] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, first, "{name}");
        first_session = Some(m[0].megolm_session_id.clone().context("a Megolm post")?);
    }
    let first_session = first_session.context("first session")?;
    let db = s.database_bytes();
    if !db.is_empty() {
        assert!(!contains(&db, &first), "the server stores no plaintext");
    }

    owner.remove_member(&channel.id, removed.user_id()).await?;
    let e = system_event(&mut ev_owner, &channel.id, "member_removed").await?;
    assert_eq!(e.target_user_id.as_deref(), Some(removed.user_id()));

    let second = unique("second secret");
    owner.post(&channel.id, &second).await?;
    let mut second_session = None;
    for (name, ev) in [("kept", &mut ev_kept), ("kept-phone", &mut ev_kept_phone)] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, second, "{name}");
        second_session = Some(m[0].megolm_session_id.clone().context("a Megolm post")?);
    }
    let second_session = second_session.context("second session")?;
    assert_ne!(second_session, first_session, "the channel key was rotated");
    // The removed subscriber got neither the post nor its key, and the log is closed to it.
    no_more_messages(&mut ev_removed, Duration::from_millis(500)).await?;
    let held = removed.group_session_ids(&channel.id).await?;
    assert!(held.contains(&first_session));
    assert!(!held.contains(&second_session), "{held:?}");
    let e = removed
        .read_channel(&channel.id)
        .await
        .expect_err("a removed subscriber may not read the log");
    assert_eq!(e.code(), Some("conversation_not_found"), "{e}");

    // A promoted publisher posts under a session of its own, shared with
    // every member device (its view of the devices grows with the role).
    owner
        .set_role(&channel.id, kept.user_id(), "publisher")
        .await?;
    let from_kept = unique("from a publisher");
    kept.post(&channel.id, &from_kept).await?;
    for (name, ev) in [("owner", &mut ev_owner), ("kept-phone", &mut ev_kept_phone)] {
        let m = messages(ev, 1).await.context(name)?;
        assert_eq!(m[0].body, from_kept, "{name}");
        assert_eq!(m[0].sender_user_id, kept.user_id());
    }
    Ok(())
}
