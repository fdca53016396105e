//! `vestnik-chat group …` and `channel …`: groups and channels from the
//! terminal, over the same client core as direct chats.
use anyhow::bail;
use clap::Subcommand;
use vestnik_client::{Client, MessageState};

use crate::{name_of, open, peer, time, Profile};

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Every conversation of the account: kind, title or partner, id
    List,
    /// Create a group with you as its owner
    Create {
        #[arg(long)]
        title: String,
        /// E-mail address or user id (repeat for more)
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Members and their roles
    Members { group: String },
    /// Add a member (owner or admin); their settings may make it an invitation
    Add { group: String, who: String },
    /// Remove a member (owner or admin)
    Remove { group: String, who: String },
    /// Leave the group
    Leave { group: String },
    /// Give a member a role: admin or member (publisher or subscriber in a channel)
    Role {
        group: String,
        who: String,
        role: String,
    },
    /// Create an invite link token (owner or admin)
    Invite {
        group: String,
        #[arg(long)]
        uses: Option<i64>,
    },
    /// Join with an invite token
    Join { token: String },
    /// Ban someone: removed and kept out until unbanned
    Ban { group: String, who: String },
    /// Mute a member for some minutes
    Mute {
        group: String,
        who: String,
        #[arg(long, default_value_t = 60)]
        minutes: i64,
    },
    /// Send a message to the group
    Send { group: String, text: String },
    /// The group's history on this device
    History {
        group: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Create a channel with you as its owner
    Create {
        #[arg(long)]
        title: String,
        /// Anyone may subscribe and posts are not encrypted; else by invite
        #[arg(long)]
        public: bool,
    },
    /// Subscribe to a public channel
    Subscribe { channel: String },
    /// Post (owner or publisher)
    Post { channel: String, text: String },
    /// Read what is new, then print the latest posts
    Read {
        channel: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

async fn print_history(client: &Client, conversation: &str, limit: i64) -> anyhow::Result<()> {
    for m in client.history(conversation, limit.clamp(1, 10_000)).await? {
        let who = if m.sender_user_id == client.user_id() {
            "me".to_owned()
        } else {
            name_of(client, &m.sender_user_id).await?
        };
        let when = m.sent_at.map(time).unwrap_or_else(|| "pending".into());
        let body = match m.state {
            MessageState::Deleted => "(deleted)".to_owned(),
            _ if m.edited_at.is_some() => format!("{} (edited)", m.body),
            _ => m.body.clone(),
        };
        println!("[{when}] {who}: {body}");
    }
    Ok(())
}

pub async fn group(profile: &Profile, cmd: GroupCommand) -> anyhow::Result<()> {
    let client = open(profile).await?;
    match cmd {
        GroupCommand::List => {
            for c in client.conversations().await? {
                let label = match (c.kind.as_str(), &c.title) {
                    (_, Some(t)) => t.clone(),
                    ("direct", None) => {
                        let other = c
                            .member_user_ids
                            .iter()
                            .find(|u| u.as_str() != client.user_id())
                            .cloned()
                            .unwrap_or_default();
                        name_of(&client, &other).await?
                    }
                    _ => String::new(),
                };
                println!("{} {:<7} {label}", c.id, c.kind);
            }
        }
        GroupCommand::Create { title, members } => {
            let mut ids = Vec::with_capacity(members.len());
            for m in &members {
                ids.push(peer(&client, m).await?);
            }
            let id = client.create_group(Some(&title), &ids).await?;
            let c = client.group_info(&id).await?;
            println!(
                "created group {id} with {} member(s)",
                c.member_user_ids.len()
            );
        }
        GroupCommand::Members { group } => {
            let c = client.group_info(&group).await?;
            for m in &c.members {
                println!("{:<10} {}", m.role, name_of(&client, &m.user_id).await?);
            }
        }
        GroupCommand::Add { group, who } => {
            let user = peer(&client, &who).await?;
            let c = client.add_member(&group, &user).await?;
            if c.invited_user_ids.contains(&user) {
                println!("{who} was sent an invitation");
            } else {
                println!("added {who}");
            }
        }
        GroupCommand::Remove { group, who } => {
            let user = peer(&client, &who).await?;
            client.remove_member(&group, &user).await?;
            println!("removed {who}");
        }
        GroupCommand::Leave { group } => {
            client.leave(&group).await?;
            println!("left");
        }
        GroupCommand::Role { group, who, role } => {
            let user = peer(&client, &who).await?;
            client.set_role(&group, &user, &role).await?;
            println!("{who} is now {role}");
        }
        GroupCommand::Invite { group, uses } => {
            let invite = client.create_invite(&group, uses, None).await?;
            println!("{}", invite.token.expose());
        }
        GroupCommand::Join { token } => {
            let c = client.join_invite(&token).await?;
            println!(
                "joined {} {} ({})",
                c.kind,
                c.title.as_deref().unwrap_or(""),
                c.id
            );
        }
        GroupCommand::Ban { group, who } => {
            let user = peer(&client, &who).await?;
            client.ban(&group, &user).await?;
            println!("banned {who}");
        }
        GroupCommand::Mute {
            group,
            who,
            minutes,
        } => {
            if minutes < 1 {
                bail!("--minutes: expected at least 1");
            }
            let user = peer(&client, &who).await?;
            client.mute(&group, &user, minutes * 60).await?;
            println!("muted {who} for {minutes} min");
        }
        GroupCommand::Send { group, text } => {
            let sent = client.send_group_text(&group, &text).await?;
            println!("sent #{} ({})", sent.seq, sent.message_id);
        }
        GroupCommand::History { group, limit } => {
            client.sync().await?;
            print_history(&client, &group, limit).await?;
        }
    }
    client.close().await;
    Ok(())
}

pub async fn channel(profile: &Profile, cmd: ChannelCommand) -> anyhow::Result<()> {
    let client = open(profile).await?;
    match cmd {
        ChannelCommand::Create { title, public } => {
            let c = client.create_channel(&title, public, &[]).await?;
            println!(
                "created {} channel {}",
                if public { "public" } else { "private" },
                c.id
            );
        }
        ChannelCommand::Subscribe { channel } => {
            let c = client.subscribe_channel(&channel).await?;
            println!("subscribed to {}", c.title.as_deref().unwrap_or(&c.id));
        }
        ChannelCommand::Post { channel, text } => {
            let sent = client.post(&channel, &text).await?;
            println!("posted #{}", sent.seq);
        }
        ChannelCommand::Read { channel, limit } => {
            client.sync().await?;
            let n = client.read_channel(&channel).await?;
            print_history(&client, &channel, limit).await?;
            println!("{n} new post(s)");
        }
    }
    client.close().await;
    Ok(())
}
