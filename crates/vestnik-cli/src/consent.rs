//! Blocks, contacts and group invitations.
use clap::Subcommand;

use crate::profile::Profile;
use crate::*;

#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Block someone: no direct messages from them, they cannot add you to
    /// groups, and neither sees the other's presence, typing or reading
    Block {
        /// E-mail address or user id
        who: String,
    },
    /// Lift a block
    Unblock {
        /// E-mail address or user id
        who: String,
    },
    /// Your contacts (whom you opened a chat with, or added): list them, or
    /// add or remove one
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
    },
    /// Invitations to groups and channels: list them, or accept or decline
    /// one
    Invitations {
        #[command(subcommand)]
        command: Option<InvitationsCommand>,
    },
}

#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Add a contact (e-mail address or user id)
    Add { who: String },
    /// Remove a contact (e-mail address or user id)
    Remove { who: String },
}

#[derive(Subcommand)]
pub enum InvitationsCommand {
    /// Join the group or channel
    Accept { conversation_id: String },
    /// Say no (nobody is told)
    Decline { conversation_id: String },
}

pub async fn run(profile: &Profile, cmd: ConsentCommand) -> anyhow::Result<()> {
    match cmd {
        ConsentCommand::Block { who } => {
            let client = open(profile).await?;
            let user = peer(&client, &who).await?;
            client.block(&user).await?;
            println!("blocked {who}");
            client.close().await;
        }
        ConsentCommand::Unblock { who } => {
            let client = open(profile).await?;
            let user = peer(&client, &who).await?;
            client.unblock(&user).await?;
            println!("unblocked {who}");
            client.close().await;
        }
        ConsentCommand::Contacts { command } => {
            let client = open(profile).await?;
            match command {
                None => {
                    let ids = client.contacts().await?;
                    let names = client.display_names(&ids).await?;
                    for id in &ids {
                        match names.get(id) {
                            Some(n) => println!("{n} ({id})"),
                            None => println!("{id}"),
                        }
                    }
                    println!("{} contact(s)", ids.len());
                }
                Some(ContactsCommand::Add { who }) => {
                    let user = peer(&client, &who).await?;
                    client.set_contact(&user, true).await?;
                    println!("{who} is a contact");
                }
                Some(ContactsCommand::Remove { who }) => {
                    let user = peer(&client, &who).await?;
                    client.set_contact(&user, false).await?;
                    println!("{who} is no longer a contact");
                }
            }
            client.close().await;
        }
        ConsentCommand::Invitations { command } => {
            let client = open(profile).await?;
            match command {
                None => {
                    let list = client.invitations().await?;
                    for i in &list {
                        let by = match &i.invited_by {
                            Some(u) => name_of(&client, u).await?,
                            None => "a deleted account".into(),
                        };
                        println!(
                            "{} {} \"{}\" from {by}",
                            i.conversation_id,
                            i.kind,
                            i.title.as_deref().unwrap_or("")
                        );
                    }
                    println!("{} invitation(s)", list.len());
                }
                Some(InvitationsCommand::Accept { conversation_id }) => {
                    let c = client.accept_invitation(&conversation_id).await?;
                    println!("joined {} {}", c.kind, c.title.as_deref().unwrap_or(&c.id));
                }
                Some(InvitationsCommand::Decline { conversation_id }) => {
                    client.decline_invitation(&conversation_id).await?;
                    println!("declined");
                }
            }
            client.close().await;
        }
    }
    Ok(())
}
