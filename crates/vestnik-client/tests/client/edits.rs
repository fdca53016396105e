//! Editing and deleting one's messages: edits travel end to end encrypted
//! and replace the text on every device that holds the original; a delete
//! for everyone erases it.
use super::*;

both_backends!(an_edit_replaces_the_text_everywhere_and_a_delete_erases_it);

async fn body_of(
    c: &Client,
    conversation: &str,
    message_id: &str,
) -> anyhow::Result<(String, Option<i64>, MessageState)> {
    let h = c.history(conversation, 100).await?;
    let m = h
        .iter()
        .find(|m| m.message_id.as_deref() == Some(message_id))
        .ok_or_else(|| anyhow::anyhow!("no {message_id} in {h:?}"))?;
    Ok((m.body.clone(), m.edited_at, m.state))
}

async fn an_edit_replaces_the_text_everywhere_and_a_delete_erases_it(
    s: Server,
) -> anyhow::Result<()> {
    let alice = s.register("alice@example.com", "alice-laptop").await?;
    let alice_phone = s.login("alice@example.com", "alice-phone").await?;
    let bob = s.register("bob@example.com", "bob-laptop").await?;
    let mut ev_phone = synced(&alice_phone).await?;
    let mut ev_bob = synced(&bob).await?;
    let _ev_alice = synced(&alice).await?;

    let sent = alice.send_text(bob.user_id(), "see you at 5").await?;
    let conv = sent.conversation_id.clone();
    messages(&mut ev_bob, 1).await?;
    messages(&mut ev_phone, 1).await?;

    alice
        .edit_message(&conv, &sent.message_id, "see you at 6")
        .await?;
    // At once on the device that edited, with no extra row.
    let (body, edited, _) = body_of(&alice, &conv, &sent.message_id).await?;
    ensure!(
        body == "see you at 6" && edited.is_some(),
        "{body} {edited:?}"
    );
    for (name, c, ev) in [
        ("bob", &bob, &mut ev_bob),
        ("alice-phone", &alice_phone, &mut ev_phone),
    ] {
        let e = wait_for(ev, "the edit", |e| matches!(e, ClientEvent::Edited { .. })).await?;
        match e {
            ClientEvent::Edited {
                message_id, body, ..
            } => {
                ensure!(
                    message_id == sent.message_id && body == "see you at 6",
                    "{name}"
                );
            }
            other => anyhow::bail!("{name}: {other:?}"),
        }
        let (body, edited, _) = body_of(c, &conv, &sent.message_id).await?;
        ensure!(body == "see you at 6" && edited.is_some(), "{name}: {body}");
        ensure!(
            c.history(&conv, 100).await?.len() == 1,
            "{name}: the edit is no message"
        );
        no_more_messages(ev, Duration::from_millis(200)).await?;
    }
    // Only one's own messages.
    let e = bob.edit_message(&conv, &sent.message_id, "hijacked").await;
    ensure!(matches!(e, Err(ClientError::InvalidInput(_))), "{e:?}");

    // Deleted for everyone: erased on every device, shown as deleted.
    alice.delete_for_everyone(&conv, &sent.message_id).await?;
    for (name, c) in [
        ("bob", &bob),
        ("alice-phone", &alice_phone),
        ("alice", &alice),
    ] {
        eventually(&format!("{name} erases it"), || async {
            let (body, _, state) = body_of(c, &conv, &sent.message_id).await?;
            Ok(state == MessageState::Deleted && body.is_empty())
        })
        .await?;
    }
    let e = alice.edit_message(&conv, &sent.message_id, "back").await;
    ensure!(e.is_err(), "a deleted message is not edited: {e:?}");
    Ok(())
}
