//! Direct messages: send, files, sync, history, safety numbers, the
//! interactive chat, edits and deletions.
use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::PathBuf;
use vestnik_client::FileOptions;

use crate::profile::Profile;
use crate::*;

#[derive(Subcommand)]
pub enum MessageCommand {
    /// Send a text message
    Send {
        /// E-mail address or user id
        #[arg(long)]
        to: String,
        message: String,
    },
    /// Encrypt a file on this device, upload it and send it
    SendFile {
        /// E-mail address or user id
        #[arg(long)]
        to: String,
        path: PathBuf,
        /// Message text (default: the file name)
        #[arg(long)]
        caption: Option<String>,
        /// Seconds until the server deletes the file (default: the server's maximum)
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
    /// Download, verify and decrypt a file received from (or sent to) someone
    GetFile {
        #[arg(long)]
        with: String,
        /// The message carrying it (default: the newest file in the conversation)
        #[arg(long)]
        message: Option<String>,
        /// Where to write it (default: the sender's file name in the current directory)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fetch and decrypt what is waiting, print it
    Sync,
    /// The conversation with someone, oldest first
    History {
        #[arg(long)]
        with: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Show each message's id (for `delete`)
        #[arg(long)]
        ids: bool,
    },
    /// The safety number to compare with someone (in person or by call)
    VerifySafetyNumber {
        #[arg(long)]
        with: String,
    },
    /// Interactive chat in the terminal: your conversations on the left
    /// (Tab moves between them), the open one on the right
    Chat {
        /// Open the chat with this person (e-mail address or user id) first
        #[arg(long)]
        with: Option<String>,
    },
    /// Edit one of your messages (within two days): every device that has it
    /// shows the new text, marked edited
    Edit {
        /// The conversation partner: e-mail address or user id
        #[arg(long)]
        with: String,
        /// The message's id (`history --ids` shows them)
        message_id: String,
        /// The new text
        text: String,
    },
    /// Delete one of your messages for everyone (within the server's window)
    Delete {
        /// The conversation partner: e-mail address or user id
        #[arg(long)]
        with: String,
        /// The message's id (`history --ids` shows them)
        message_id: String,
    },
}

pub async fn run(profile: &Profile, cmd: MessageCommand) -> anyhow::Result<()> {
    match cmd {
        MessageCommand::Send { to, message } => {
            let client = open(profile).await?;
            let peer = peer(&client, &to).await?;
            let sent = client.send_text(&peer, &message).await?;
            println!("sent #{} {}", sent.seq, sent.message_id);
            client.close().await;
        }
        MessageCommand::SendFile {
            to,
            path,
            caption,
            ttl_secs,
        } => {
            let client = open(profile).await?;
            let peer = peer(&client, &to).await?;
            let options = FileOptions {
                caption,
                ttl_secs,
                mime: None,
            };
            let (sent, a) = client
                .send_file(&peer, &path, &options)
                .await
                .with_context(|| format!("sending {}", path.display()))?;
            println!(
                "sent #{} {} file {} ({} bytes, media {})",
                sent.seq, sent.message_id, a.name, a.size, a.media_id
            );
            client.close().await;
        }
        MessageCommand::GetFile { with, message, out } => {
            let client = open(profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.sync().await?;
            let history = client.history(&conv, 10_000).await?;
            let found = history.iter().rev().find(|m| {
                m.attachment.is_some()
                    && message
                        .as_deref()
                        .is_none_or(|id| m.message_id.as_deref() == Some(id))
            });
            let Some(a) = found.and_then(|m| m.attachment.as_ref()) else {
                bail!(
                    "no file in the conversation with {with}{}",
                    message
                        .map(|m| format!(" in message {m}"))
                        .unwrap_or_default()
                );
            };
            let out = out.unwrap_or_else(|| PathBuf::from(safe_file_name(&a.name)));
            let n = client
                .download_attachment(a, &out)
                .await
                .with_context(|| format!("fetching {}", a.name))?;
            println!("saved {} ({n} bytes)", out.display());
            client.close().await;
        }
        MessageCommand::Sync => {
            let client = open(profile).await?;
            let mut events = client.events();
            let n = client.sync().await?;
            for _ in 0..n {
                match tokio::time::timeout(std::time::Duration::from_millis(200), events.recv())
                    .await
                {
                    Ok(Some(vestnik_client::ClientEvent::Message(m))) => {
                        let file = m
                            .attachment
                            .as_ref()
                            .map(|a| format!(" [file {} {} bytes]", a.name, a.size))
                            .unwrap_or_default();
                        println!(
                            "[{}] {} #{}: {}{file}",
                            time(m.sent_at),
                            name_of(&client, &m.sender_user_id).await?,
                            m.seq,
                            m.body
                        )
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            println!("{n} item(s) synced");
            client.close().await;
        }
        MessageCommand::History { with, limit, ids } => {
            let client = open(profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.sync().await?;
            let history = client.history(&conv, limit.clamp(1, 10_000)).await?;
            let senders: Vec<String> = history.iter().map(|m| m.sender_user_id.clone()).collect();
            let names = client.display_names(&senders).await?;
            for m in history {
                let who = if m.sender_user_id == client.user_id() {
                    "me".to_owned()
                } else {
                    names
                        .get(&m.sender_user_id)
                        .cloned()
                        .unwrap_or_else(|| m.sender_user_id.clone())
                };
                let when = m.sent_at.map(time).unwrap_or_else(|| "pending".into());
                let ticks = if m.sender_user_id != client.user_id() {
                    ""
                } else if !m.delivered_to.is_empty() {
                    " ✓✓"
                } else if m.seq.is_some() {
                    " ✓"
                } else {
                    " …"
                };
                let file = m
                    .attachment
                    .as_ref()
                    .map(|a| format!(" [file {} {} bytes]", a.name, a.size))
                    .unwrap_or_default();
                let body = if m.state == vestnik_client::MessageState::Deleted {
                    "(deleted)".to_owned()
                } else if m.edited_at.is_some() {
                    format!("{} (edited)", m.body)
                } else {
                    m.body.clone()
                };
                let id = match (&m.message_id, ids) {
                    (Some(id), true) => format!(" #{id}"),
                    _ => String::new(),
                };
                println!("[{when}]{id} {who}: {body}{file}{ticks}");
            }
            client.close().await;
        }
        MessageCommand::VerifySafetyNumber { with } => {
            let client = open(profile).await?;
            let peer = peer(&client, &with).await?;
            let number = client.safety_number(&peer).await?;
            println!("safety number with {with}:\n{number}");
            println!("Compare it with theirs in person or on a call; it changes when a device is added or replaced.");
            client.close().await;
        }
        MessageCommand::Chat { with } => {
            let client = open(profile).await?;
            let mut list = Vec::new();
            for c in client.conversations().await? {
                let other = (c.kind == "direct")
                    .then(|| {
                        c.member_user_ids
                            .iter()
                            .find(|u| u.as_str() != client.user_id())
                            .cloned()
                    })
                    .flatten();
                let label = match (&c.title, &other) {
                    (Some(t), _) => t.clone(),
                    (None, Some(p)) => name_of(&client, p).await?,
                    _ => c.id.clone(),
                };
                list.push(tui::Entry {
                    id: c.id,
                    kind: c.kind,
                    label,
                    peer: other,
                });
            }
            let current = match with {
                Some(who) => {
                    let peer_id = peer(&client, &who).await?;
                    let conv = client.conversation_with(&peer_id).await?;
                    match list.iter().position(|e| e.id == conv) {
                        Some(i) => i,
                        None => {
                            let label = name_of(&client, &peer_id).await?;
                            list.insert(
                                0,
                                tui::Entry {
                                    id: conv,
                                    kind: "direct".into(),
                                    label,
                                    peer: Some(peer_id),
                                },
                            );
                            0
                        }
                    }
                }
                None => list.iter().position(tui::Entry::writable).ok_or_else(|| {
                    anyhow::anyhow!("no conversation yet: start one with --with <who>")
                })?,
            };
            tui::run(client, list, current).await?;
        }
        MessageCommand::Edit {
            with,
            message_id,
            text,
        } => {
            let client = open(profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.edit_message(&conv, &message_id, &text).await?;
            println!("edited");
            client.close().await;
        }
        MessageCommand::Delete { with, message_id } => {
            let client = open(profile).await?;
            let peer = peer(&client, &with).await?;
            let conv = client.conversation_with(&peer).await?;
            client.delete_for_everyone(&conv, &message_id).await?;
            println!("deleted for everyone");
            client.close().await;
        }
    }
    Ok(())
}
